"""Lite ad quality on the labelled photo set (tests/data/photoset): does every photo give an ad a
shop owner would post?

    python benchmarks/lite_quality.py [--out DIR]

For each cut-out method available without downloads (GrabCut; plus any rembg model present in
models/rembg), every photo goes through the Person or Product workflow on the Lite engine at
1080x1350. Per method it prints the mean IoU of the cut-out against the drawn mask, the share of
photos whose cut-out passes the confidence gate, the share of gated-out photos that got a fallback
layout, seconds per ad, and "broken" composites (a cut-out layout whose IoU is below 0.85).
Also the warm time of a product ad (skimage coffee). Writes a contact sheet PNG of every ad.
Ends with ONE line of JSON. Targets: zero broken composites; product ad <= 2 s warm.
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
from PIL import Image, ImageDraw  # noqa: E402

from studio.config import REPO_ROOT, Settings  # noqa: E402
from studio.errors import StudioError  # noqa: E402
from studio.schema import GenerationOptions, PersonRequest, ProductRequest  # noqa: E402
from studio.services import build_services  # noqa: E402
from studio.workflows import person, product  # noqa: E402

IOU_MIN = 0.85
TARGET_PRODUCT_S = 2.0


def run_method(services, photos, sheet_rows: list, method: str) -> dict:
    from photoset import iou

    ious, passed, gated, fell_back, broken, secs = [], 0, 0, 0, [], []
    for p in photos:
        img = p.image()
        ref = p.mask(img.size)
        opts = GenerationOptions(seed=7, num_images=1)
        t0 = time.perf_counter()
        try:
            if p.mode == "person":
                res = person.run(PersonRequest(image=img, industry="fashion", sns_size="ig_portrait", options=opts), services)
            else:
                res = product.run(ProductRequest(image=img, product_box=p.box(img.size), industry="cafe",
                                                 sns_size="ig_portrait", options=opts), services)
        except StudioError as exc:
            secs.append(time.perf_counter() - t0)
            sheet_rows.append((p.name, None, f"refused: {exc.key}"))
            gated += 1
            fell_back += 1      # a clear message is not a broken ad
            continue
        secs.append(time.perf_counter() - t0)
        score = iou(res.source_keep, ref) if res.source_keep is not None else 0.0
        ious.append(score)
        if res.layout == "cutout":
            passed += 1
            if score < IOU_MIN:
                broken.append(p.name)
        else:
            gated += 1
            fell_back += 1
        conf = "-" if res.confidence is None else f"{res.confidence:.2f}"
        sheet_rows.append((p.name, res.images[0], f"{res.layout} conf {conf} IoU {score:.2f}"))
        print(f"  {method:8s} {p.name:16s} {res.layout:7s} conf {conf:5s} IoU {score:.2f} {secs[-1]:.2f}s")
    n = len(photos)
    return {"method": method, "photos": n, "mean_iou": round(float(np.mean(ious)), 3) if ious else None,
            "share_passing_gate": round(passed / n, 3), "share_gated_with_fallback": round(fell_back / gated, 3) if gated else 1.0,
            "seconds_per_ad": round(statistics.median(secs), 2), "broken": broken}


def contact_sheet(rows: list, path: Path, thumb: int = 260) -> None:
    cols = 6
    h = int(thumb * 1350 / 1080)
    sheet = Image.new("RGB", (cols * thumb, ((len(rows) + cols - 1) // cols) * (h + 28)), "white")
    d = ImageDraw.Draw(sheet)
    for i, (name, img, label) in enumerate(rows):
        x, y = (i % cols) * thumb, (i // cols) * (h + 28)
        if img is not None:
            sheet.paste(img.resize((thumb - 4, h - 4), Image.Resampling.LANCZOS), (x + 2, y + 2))
        d.text((x + 4, y + h), name, fill="black")
        d.text((x + 4, y + h + 12), label, fill="black")
    sheet.save(path)


def product_speed(services) -> float:
    from skimage import data

    cup = Image.fromarray(data.coffee())
    req = ProductRequest(image=cup, product_box=(70, 10, 490, 395), industry="cafe", style="warm",
                         sns_size="ig_portrait", options=GenerationOptions(seed=1))
    product.run(req, services)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        product.run(req, services)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(REPO_ROOT / "outputs" / "bench"))
    args = parser.parse_args()
    from photoset import load_set

    photos = [p for p in load_set() if p.available()]
    missing = [p.name for p in load_set() if not p.available()]
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    results, rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(models_dir=REPO_ROOT / "models", outputs_dir=Path(tmp) / "outputs",
                            presets_dir=REPO_ROOT / "presets", engine="lite", ollama_host="http://127.0.0.1:9")
        services = build_services(settings)
        method = services.vision.matter.choose("auto", "product")
        results.append(run_method(services, photos, rows, method))
        speed = product_speed(services)
        services.store.close()
    sheet = out_dir / "lite_quality_sheet.png"
    contact_sheet(rows, sheet)
    broken = sum(len(r["broken"]) for r in results)
    print(f"contact sheet: {sheet}")
    print(json.dumps({"bench": "lite_quality", "photos": len(photos), "missing": missing, "methods": results,
                      "product_ad_warm_s": round(speed, 3), "target_product_s": TARGET_PRODUCT_S,
                      "broken_composites": broken, "iou_min": IOU_MIN,
                      "ok": broken == 0 and speed <= TARGET_PRODUCT_S and len(photos) >= 16}, ensure_ascii=False))


if __name__ == "__main__":
    main()
