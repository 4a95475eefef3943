"""`python launch.py stock ...`: a stock batch from the command line (same workflow as the tab).

    python launch.py stock --mode keyword --keywords "카페, 라떼아트" --count 20 --out DIR
    python launch.py stock --resume [BATCH] --out DIR          # finish an interrupted batch
    python launch.py stock ... --ray-address auto               # on a Ray cluster (one actor per GPU)

Prints one line per image and a summary; the images, one CSV per platform and a ZIP go to --out.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from studio.config import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mode", choices=("random", "keyword", "llm"), default="random", help="prompt mode")
    parser.add_argument("--keywords", default="", help="comma-separated keywords, Korean or English")
    parser.add_argument("--industry", default="background", help="template set (cafe, bakery, ..., background)")
    parser.add_argument("--count", type=int, default=20, help="images in the batch (1-500)")
    parser.add_argument("--chain", default="auto",
                        help="text2image engines tried in order, e.g. flux-schnell,flux-dev,lite (lite always closes it)")
    parser.add_argument("--size", default="1024x1024", help="generation size WxH (before upscaling)")
    parser.add_argument("--min-short", type=int, default=2500, help="upscale so the short side is at least this (0 = off)")
    parser.add_argument("--format", dest="fmt", choices=("jpeg", "png"), default="jpeg")
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality 1-100 (PNG: compress level 0-9)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--no-gate", action="store_true", help="skip the quality gate")
    parser.add_argument("--resume", nargs="?", const="latest", default=None,
                        help="resume a batch (its id or prefix; default: the latest unfinished one)")
    parser.add_argument("--out", type=Path, default=None, help="folder for the images, CSV files and ZIP")
    parser.add_argument("--ray-address", default=None, help="run on a Ray cluster ('auto' = the local one)")
    parser.add_argument("--ray-workers", type=int, default=None, help="Ray actors (default: one per GPU, else 2)")


def run(settings: Settings, args: argparse.Namespace) -> int:
    from studio.errors import InputError
    from studio.i18n import t
    from studio.services import build_services
    from studio.workflows import stock as W

    lang = settings.lang
    try:
        width, height = (int(v) for v in str(args.size).lower().split("x"))
    except ValueError as exc:
        raise InputError("stock.bad_size", size=args.size) from exc
    services = build_services(settings)
    try:
        if args.resume:
            with W.batch_store(services) as bs:
                batch = bs.latest(unfinished=True) if args.resume == "latest" else bs.get(args.resume)
            if batch is None:
                print(t("stock.nothing_to_resume", lang))
                return 0
        else:
            req = W.StockRequest(mode=args.mode, count=args.count, industry=args.industry, keywords=args.keywords,
                                 chain=tuple(c.strip() for c in args.chain.split(",") if c.strip()),
                                 width=width, height=height, seed=args.seed, steps=args.steps,
                                 min_short=args.min_short, fmt=args.fmt, quality=args.quality, gate=not args.no_gate)
            batch = W.plan_batch(req, services)
        print(f"batch {batch.id}", flush=True)

        def on_image(rec) -> None:
            print(f"#{rec.settings.get('batch_item')} {rec.engine} {rec.path}", flush=True)

        def progress(done: int, total: int, desc: str = "") -> None:
            print(t("stock.ui.progress", lang, done=done, total=total), flush=True)

        if args.ray_address:
            from studio.workflows.stock_ray import run_batch_ray

            summary = run_batch_ray(batch.id, services, address=args.ray_address, workers=args.ray_workers,
                                    progress=progress, on_image=on_image)
        else:
            summary = W.run_batch(batch.id, services, progress=progress, on_image=on_image)
        for n in summary.notices:
            print(n.text(lang))
        for r in summary.rejected:
            print(t("stock.rejected_item", lang, item=r["item"], reason=t(f"stock.reason.{r['reason']}", lang)))
        print(t("stock.summary", lang, batch=summary.batch_id[:8], done=summary.done, total=summary.total,
                rejected=len(summary.rejected), failed=summary.failed, status=summary.status))
        if args.out is not None:
            info = W.export_dir(services, summary.batch_id, args.out)
            print(f"{args.out / info['zip']}")
        return 0 if summary.status == "done" else 1
    finally:
        services.store.close()
