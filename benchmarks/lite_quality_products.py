"""Products on the labelled photo set (tests/data/photoset, kinds product-plain / product-busy), and
a contact sheet of EVERY lite ad of the set (people and products) with a judgement per ad.

    python benchmarks/lite_quality_products.py [--out DIR] [--ads-only] [--only NAME ...]

`--ads-only`: only the product and animal/scene ads (no per-method IoU table, no people), each
ad also saved full size as DIR/ad_<name>.png: the quick loop for looking at the product ads.

`product_rows(services, sheet_rows)` (imported by benchmarks/lite_quality.py): per cut-out method
(GrabCut always; every rembg / learned model present in models/rembg) the product-mask IoU against
the drawn polygons WITH the owner's box and WITHOUT it, and seconds per cut-out; then one Lite
product ad per photo (the owner's box, the studio's own choice of method), appended to
`sheet_rows` as (name, image, label).

Judgement of an ad (`judge`): "postable" = a cut-out layout whose keep mask matches the drawn
subject (IoU >= 0.85 on the upload); "fallback" = an honest fallback (a framed card / the whole
photo on a designed backdrop, with a notice saying why), or a clear refusal; "broken" = a cut-out
layout whose mask misses the subject (IoU < 0.85): a ragged or wrong cut-out pasted into an ad.
Ends with ONE line of JSON. Targets: 0 broken, >= 70 % postable.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import numpy as np  # noqa: E402

from studio.config import REPO_ROOT, Settings  # noqa: E402
from studio.errors import StudioError  # noqa: E402
from studio.schema import GenerationOptions, PersonRequest, ProductRequest  # noqa: E402
from studio.services import build_services  # noqa: E402
from studio.workflows import common, person, product  # noqa: E402

IOU_POSTABLE = 0.85
TARGET_POSTABLE = 0.70
PRODUCT_KINDS = ("product-plain", "product-busy", "product-plant", "product-sweets", "product-food")


def judge(layout: str | None, score: float | None) -> str:
    if layout is None:
        return "fallback"           # a clear refusal, not a broken ad
    if layout in common.FALLBACKS:
        return "fallback"
    return "postable" if (score or 0.0) >= IOU_POSTABLE else "broken"


def methods(services) -> list[str]:
    from studio.vision.matting import find_weights

    return ["grabcut"] + sorted(find_weights(services.settings.models_dir))


def _products():
    from photoset import load_set

    return [p for p in load_set() if p.available() and p.kind in PRODUCT_KINDS]


def product_rows(services, sheet_rows: list) -> dict:
    """Product-mask IoU with/without the owner's box per method, seconds, and one lite ad per photo."""
    from photoset import iou

    photos = _products()
    per_method = {}
    for m in methods(services):
        with_box, without_box, secs = [], [], []
        for p in photos:
            img = p.image()
            ref = p.mask(img.size)
            t0 = time.perf_counter()
            boxed = services.vision.cutout(img, box=p.box(img.size), prefer=m, subject="product").mask
            secs.append(time.perf_counter() - t0)
            free = services.vision.cutout(img, box=None, prefer=m, subject="product").mask
            with_box.append(iou(boxed, ref))
            without_box.append(iou(free, ref))
            print(f"  {m:16s} {p.name:14s} IoU box {with_box[-1]:.2f}  no box {without_box[-1]:.2f}  {secs[-1]:.2f}s")
        per_method[m] = {"median_iou_box": round(statistics.median(with_box), 3),
                         "median_iou_no_box": round(statistics.median(without_box), 3),
                         "mean_iou_box": round(float(np.mean(with_box)), 3),
                         "seconds_per_cutout": round(statistics.median(secs), 3)}
    ads = _ads(services, photos, sheet_rows, "product")
    return {"photos": len(photos), "methods": per_method, **ads}


def people_rows(services, sheet_rows: list) -> dict:
    from photoset import load_set

    photos = [p for p in load_set() if p.available() and p.mode == "person"]
    return {"photos": len(photos), **_ads(services, photos, sheet_rows, "person")}


def other_rows(services, sheet_rows: list) -> dict:
    """Animals and scenes labelled as products (the rest of the set)."""
    from photoset import load_set

    photos = [p for p in load_set() if p.available() and p.mode == "product" and p.kind not in PRODUCT_KINDS]
    return {"photos": len(photos), **_ads(services, photos, sheet_rows, "product")}


def _ads(services, photos, sheet_rows: list, mode: str, save_dir: Path | None = None) -> dict:
    from photoset import iou

    counts = {"postable": 0, "fallback": 0, "broken": 0}
    secs, broken = [], []
    opts = GenerationOptions(seed=7, num_images=1)
    for p in photos:
        img = p.image()
        ref = p.mask(img.size)
        t0 = time.perf_counter()
        try:
            if mode == "person":
                res = person.run(PersonRequest(image=img, industry="fashion", sns_size="ig_portrait", options=opts),
                                 services)
            else:
                res = product.run(ProductRequest(image=img, product_box=p.box(img.size), industry="cafe",
                                                 sns_size="ig_portrait", options=opts), services)
        except StudioError as exc:
            secs.append(time.perf_counter() - t0)
            counts["fallback"] += 1
            sheet_rows.append((p.name, None, f"refused: {exc.key} [fallback]"))
            continue
        secs.append(time.perf_counter() - t0)
        score = iou(res.source_keep, ref) if res.source_keep is not None else 0.0
        verdict = judge(res.layout, score)
        counts[verdict] += 1
        if verdict == "broken":
            broken.append(p.name)
        conf = "-" if res.confidence is None else f"{res.confidence:.2f}"
        sheet_rows.append((p.name, res.images[0], f"{res.layout} c{conf} IoU {score:.2f} [{verdict}]"))
        if save_dir is not None:
            res.images[0].save(save_dir / f"ad_{p.name}.png")
            notes = " | ".join(n.text("ko") for n in res.notices)
            print(f"     notices: {notes}")
        print(f"  ad {p.name:16s} {res.layout:7s} conf {conf:5s} IoU {score:.2f} {secs[-1]:.2f}s {verdict}")
    return {"ads": counts, "broken_names": broken,
            "seconds_per_ad": round(statistics.median(secs), 2) if secs else None}


def contact_sheet(rows: list, path: Path, thumb: int = 240) -> None:
    """The same sheet as benchmarks/lite_quality.py writes (one layout for both)."""
    from contact_sheet import contact_sheet as sheet

    sheet(rows, path, thumb)


def ads_only(out_dir: Path, only: list[str] | None) -> None:
    from photoset import load_set

    photos = [p for p in load_set() if p.available() and p.mode == "product" and (not only or p.name in only)]
    rows: list = []
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(models_dir=REPO_ROOT / "models", outputs_dir=Path(tmp) / "outputs",
                            presets_dir=REPO_ROOT / "presets", engine="lite", ollama_host="http://127.0.0.1:9")
        services = build_services(settings)
        res = _ads(services, photos, rows, "product", save_dir=out_dir)
        services.store.close()
    sheet = out_dir / "lite_product_ads_sheet.png"
    contact_sheet(rows, sheet)
    n = sum(res["ads"].values())
    print(f"contact sheet: {sheet}")
    print(json.dumps({"bench": "lite_quality_products", "ads_only": True, "photos": n, **res,
                      "share_postable": round(res["ads"]["postable"] / n, 3) if n else 0.0,
                      "ok": res["ads"]["broken"] == 0}, ensure_ascii=False))


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(REPO_ROOT / "outputs" / "bench"))
    parser.add_argument("--ads-only", action="store_true",
                        help="only the product and animal/scene ads, each saved full size")
    parser.add_argument("--only", nargs="*", default=None, help="photo names (with --ads-only)")
    args = parser.parse_args()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list = []
    if args.ads_only:
        ads_only(out_dir, args.only)
        return
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(models_dir=REPO_ROOT / "models", outputs_dir=Path(tmp) / "outputs",
                            presets_dir=REPO_ROOT / "presets", engine="lite", ollama_host="http://127.0.0.1:9")
        services = build_services(settings)
        prod = product_rows(services, rows)
        people = people_rows(services, rows)
        other = other_rows(services, rows)
        services.store.close()
    sheet = out_dir / "lite_all_ads_sheet.png"
    contact_sheet(rows, sheet)
    total = {k: prod["ads"][k] + people["ads"][k] + other["ads"][k] for k in ("postable", "fallback", "broken")}
    n = sum(total.values())
    share = total["postable"] / n if n else 0.0
    print(f"contact sheet: {sheet}")
    print(json.dumps({"bench": "lite_quality_products", "products": prod, "people": people, "others": other,
                      "all_ads": total, "share_postable": round(share, 3), "target_postable": TARGET_POSTABLE,
                      "target_broken": 0, "product_photos_target": 12,
                      "ok": total["broken"] == 0 and share >= TARGET_POSTABLE and prod["photos"] >= 12},
                     ensure_ascii=False))


if __name__ == "__main__":
    main()
