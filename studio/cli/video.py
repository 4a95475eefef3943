"""`python launch.py video --image X --style zoom --seconds 5 --out clip.mp4`: a clip, headless.

The clip is also stored in the history (with its settings and the AI disclosure), like one made in
the Video tab; `--out` receives a copy.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from studio.config import Settings

STYLE_CHOICES = ("auto", "zoom", "zoom_out", "pan", "parallax")  # studio.engines.motion.STYLES
SIZE_CHOICES = ("9:16", "1:1", "4:5")                            # studio.workflows.video.SIZES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--image", type=Path, required=True, help="the ad image (PNG/JPEG/WebP)")
    parser.add_argument("--more", type=Path, nargs="*", default=[], help="showcase: more images, in order")
    parser.add_argument("--style", choices=STYLE_CHOICES, default="auto", help="camera motion (default auto)")
    parser.add_argument("--strength", choices=("gentle", "normal", "strong"), default="normal",
                        help="how much the camera moves (default normal: a 1.22x push-in)")
    parser.add_argument("--seconds", type=float, default=5.0, help="clip length, 1-15 s (default 5)")
    parser.add_argument("--size", choices=SIZE_CHOICES, default="9:16", help="clip size (default 9:16, 1080x1920)")
    parser.add_argument("--video-engine", default=None,
                        help="image2video engine: motion (no weights), ltx, wan (default: the auto choice)")
    parser.add_argument("--prompt", default="", help="AI engines: what should move (Korean is fine)")
    parser.add_argument("--headline", default="", help="animated headline")
    parser.add_argument("--sub-copy", default="", help="animated second line")
    parser.add_argument("--cta", default="", help="animated call to action")
    parser.add_argument("--badge", default="", help="price badge text (\\n for a line break)")
    parser.add_argument("--layout", default="bottom_bar", help="overlay layout id (presets/overlay_layouts.json)")
    parser.add_argument("--shop", default="", help="end card: shop name (empty = no end card)")
    parser.add_argument("--tagline", default="", help="end card: one more line")
    parser.add_argument("--logo", type=Path, default=None, help="end card: logo image")
    parser.add_argument("--music", type=Path, default=None, help="background music file (trimmed and faded)")
    parser.add_argument("--seed", type=int, default=-1)
    parser.add_argument("--scale", type=float, default=1.0, help="< 1 for a smaller preview clip")
    parser.add_argument("--out", type=Path, default=None, help="also copy the clip here")


def run(settings: Settings, args: argparse.Namespace) -> int:
    from studio.services import build_services
    from studio.workflows.registry import workflow

    services = build_services(settings)
    try:
        spec = workflow("video")
        req = spec.make_request(services=services, upload=args.image, more_paths=list(args.more), engine=args.video_engine,
                                style=args.style, strength=args.strength, seconds=args.seconds, size=args.size,
                                prompt_ko=args.prompt, headline=args.headline, sub_copy=args.sub_copy, cta=args.cta,
                                badge=args.badge, layout=args.layout, shop=args.shop, tagline=args.tagline,
                                logo=args.logo, music=args.music, seed=args.seed, scale=args.scale)
        outcome = spec.runner()(req, services)
        if args.out is not None:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(outcome.path, args.out)
        p = outcome.probe
        print(f"#{outcome.record.id} {outcome.path} {p.width}x{p.height} {p.fps:g} fps {p.duration:.2f} s "
              f"{p.codec}/{p.pix_fmt}{' + ' + p.audio_codec if p.audio_codec else ''} engine={outcome.engine}")
        if args.out is not None:
            print(args.out)
        for notice in outcome.notices:
            print("-", notice.text(settings.lang))
    finally:
        services.store.close()
    return 0
