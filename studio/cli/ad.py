"""`python launch.py ad --mode product|person|advanced --image PATH ...`: one ad without the browser.

Prints ONE line of JSON: the ad's path, the layout used ("cutout" or the fallback's name), the
cut-out's confidence, the faces found and the notices (in the chosen language). `--save-mask`
also writes the keep mask, in the upload's coordinates, beside the ad. Bad input: a clear message
on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from studio.config import Settings


def _preset_ids() -> tuple[list[str], list[str]]:
    """The valid --industry and --style values, from presets/ (empty lists if they cannot be read)."""
    try:
        from studio.config import REPO_ROOT
        from studio.presets import Presets

        presets = Presets(REPO_ROOT / "presets")
        return [i.id for i in presets.industries], [s.id for s in presets.styles]
    except Exception:  # --help must still work; the run itself reports a bad value
        return [], []


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mode", choices=("product", "person", "advanced"), required=True,
                        help="product, person or advanced (both)")
    parser.add_argument("--image", required=True, help="the photo to use")
    parser.add_argument("--box", default=None, help="product box x0,y0,x1,y1 in the photo's pixels")
    parser.add_argument("--strokes", default=None, metavar="PNG",
                        help="touch-up brush for the product's cut-out (product and advanced modes): a PNG "
                             "painted GREEN (#00ff00) where the product must stay and RED (#ff0000) where "
                             "the background must go; every other pixel (transparent, white, black, the "
                             "photo itself) means 'decide automatically'. Any size: it is stretched to the photo")
    parser.add_argument("--face", type=int, default=1, help="which face (1 = the largest)")
    parser.add_argument("--all-people", action="store_true",
                        help="keep every person whose face was found (default: only the chosen face's person)")
    parser.add_argument("--scene", default="", help="the owner's words, e.g. \"따뜻한 우드 테이블\"")
    industries, styles = _preset_ids()
    parser.add_argument("--industry", default="cafe", choices=industries or None,
                        help="the shop's trade: " + ", ".join(industries) + " (default cafe)")
    parser.add_argument("--style", default="studio", choices=styles or None,
                        help="the look: " + ", ".join(styles) + " (default studio)")
    parser.add_argument("--size", default="1080x1350", help="WIDTHxHEIGHT of the ad, 64..4096 each (default 1080x1350)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", required=True, help="folder for the ad (created if missing)")
    parser.add_argument("--detail", action=argparse.BooleanOptionalAction, default=True,
                        help="person/advanced with an AI engine: redraw hands and generated faces after (default on)")
    parser.add_argument("--detail-strength", type=float, default=0.6,
                        help="how much of each hand/face the detail pass redraws, 0.1..1.0 (default 0.6)")
    parser.add_argument("--save-mask", action="store_true", help="also write the keep mask beside the ad")


def _size(text: str) -> tuple[int, int]:
    from studio.errors import InputError

    try:
        w, h = (int(v) for v in text.lower().replace("×", "x").split("x"))
    except ValueError as exc:
        raise InputError("cli.ad.bad_size", value=text) from exc
    if not (64 <= w <= 4096 and 64 <= h <= 4096):
        raise InputError("cli.ad.bad_size", value=text)
    return w, h


def _box(text: str | None) -> tuple[int, int, int, int] | None:
    from studio.errors import InputError

    if not text:
        return None
    try:
        x0, y0, x1, y1 = (int(round(float(v))) for v in text.split(","))
    except ValueError as exc:
        raise InputError("cli.ad.bad_box", value=text) from exc
    if x1 - x0 < 4 or y1 - y0 < 4:
        raise InputError("cli.ad.bad_box", value=text)
    return (x0, y0, x1, y1)


def _strokes(path: str | None, size: tuple[int, int]):
    from PIL import Image, UnidentifiedImageError

    from studio.errors import InputError
    from studio.vision.matting import strokes_from_image

    if not path:
        return None
    try:
        with Image.open(path) as im:
            return strokes_from_image(im, size)
    except (OSError, UnidentifiedImageError) as exc:
        raise InputError("cli.ad.bad_strokes", path=path) from exc


def _strength(value: float) -> float:
    from studio.errors import InputError

    if not 0.1 <= float(value) <= 1.0:
        raise InputError("cli.ad.bad_strength", value=value)
    return float(value)


def make_ad(settings: Settings, args: argparse.Namespace) -> dict:
    from PIL import Image

    from studio.schema import GenerationOptions
    from studio.services import build_services
    from studio.vision.io import load_image
    from studio.workflows.registry import workflow

    size = _size(args.size)
    box = _box(args.box)
    loaded = load_image(Path(args.image))
    strokes = _strokes(getattr(args, "strokes", None), loaded.image.size)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    services = build_services(settings.with_(outputs_dir=out_dir))
    try:
        sns_id = _sns_for(services, size)
        detail = dict(detail=bool(getattr(args, "detail", True)),
                      detail_strength=_strength(getattr(args, "detail_strength", 0.6)))
        common = dict(image=loaded.image, industry=args.industry, style=args.style, prompt_ko=args.scene,
                      sns_size=sns_id, options=GenerationOptions(seed=args.seed, num_images=1))
        spec = workflow(args.mode)
        req = spec.make_request(**common, face_index=max(0, args.face - 1), keep_all_people=args.all_people,
                                product_box=box, alpha=loaded.alpha, strokes=strokes, **detail)
        res = spec.runner()(req, services)
        path = res.records[0].path
        out = {"ad": str(path), "layout": res.layout,
               "confidence": None if res.confidence is None else round(float(res.confidence), 3),
               "faces": len(res.faces), "size": list(res.images[0].size),
               "detail": {k: v for k, v in res.records[0].settings.items() if k.startswith("detail_")},
               "notices": [n.text(settings.lang) for n in loaded.notices + res.notices]}
        if args.save_mask and res.source_keep is not None:
            mask_path = path.with_name(path.stem + "_mask.png")
            Image.fromarray(res.source_keep, "L").save(mask_path)
            out["mask"] = str(mask_path)
        return out
    finally:
        services.store.close()


def _sns_for(services, size: tuple[int, int]) -> str:
    """The SNS preset of exactly that size (the ad is always one of the presets' sizes)."""
    from studio.errors import InputError

    for s in services.presets.sns_sizes:
        if (s.width, s.height) == size:
            return s.id
    sizes = sorted({f"{s.width}x{s.height}" for s in services.presets.sns_sizes})
    raise InputError("cli.ad.unknown_size", value=f"{size[0]}x{size[1]}", choices=", ".join(sizes))


def run(settings: Settings, args: argparse.Namespace) -> int:
    from studio.errors import StudioError

    try:
        out = make_ad(settings, args)
    except StudioError as exc:
        print(exc.message(settings.lang), file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"{exc}", file=sys.stderr)
        return 2
    print(json.dumps(out, ensure_ascii=False))
    return 0
