"""Lite engine speed: a 1080x1350 product ad from skimage `coffee` (placement + inpaint).

Prints per-style warm medians (same seed: noise fields cached) and a new-seed figure (cold noise),
then ONE line of JSON. Target: the engine itself <= 0.5 s warm on the 2-core dev CPU.
Run: python benchmarks/lite_engine.py
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import skimage.data  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from studio.config import REPO_ROOT  # noqa: E402
from studio.engines.base import InpaintJob  # noqa: E402
from studio.engines.lite import LiteEngine, place_subject  # noqa: E402
from studio.presets import Presets  # noqa: E402

W, H = 1080, 1350
TARGET_S = 0.5


def main() -> None:
    engine = LiteEngine(Presets(REPO_ROOT / "presets"))
    img = Image.fromarray(skimage.data.coffee())
    mask = Image.new("L", img.size, 255)
    ImageDraw.Draw(mask).ellipse((73, 57, 483, 393), fill=0)
    t0 = time.perf_counter()
    placed = place_subject(img, mask, (W, H))
    place_ms = (time.perf_counter() - t0) * 1000
    warm: dict[str, float] = {}
    for style in ("studio", "natural", "premium", "warm", "pop", "dreamy"):
        job = InpaintJob(image=placed.image, mask=placed.mask, prompt="", width=W, height=H, seed=0,
                         industry="cafe", style=style, subject="product")
        engine.inpaint(job)                                  # warm-up: fills the noise caches
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            engine.inpaint(job)
            times.append(time.perf_counter() - t0)
        warm[style] = statistics.median(times)
        print(f"{style:8s} warm median {warm[style] * 1000:6.0f} ms")
    cold = []
    for seed in range(100, 104):
        job = InpaintJob(image=placed.image, mask=placed.mask, prompt="", width=W, height=H, seed=seed,
                         industry="cafe", style="premium", subject="product")
        t0 = time.perf_counter()
        engine.inpaint(job)
        cold.append(time.perf_counter() - t0)
    worst = max(warm.values())
    print(f"placement {place_ms:.0f} ms; new-seed (cold noise) marble median {statistics.median(cold) * 1000:.0f} ms")
    print(json.dumps({"bench": "lite_engine", "size": f"{W}x{H}",
                      "warm_median_s_worst_style": round(worst, 3),
                      "warm_median_s_studio": round(warm["studio"], 3),
                      "new_seed_median_s_marble": round(statistics.median(cold), 3),
                      "placement_ms": round(place_ms, 1),
                      "target_warm_s": TARGET_S, "ok": worst <= TARGET_S}))


if __name__ == "__main__":
    main()
