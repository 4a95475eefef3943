"""Vision stage timings at 1024 x 1024 (medians). Prints a table, then ONE line of JSON.

Stages (targets): Haar face detection + face mask build, feather and invert (<= 150 ms);
GrabCut cut-out with full-size refinement (<= 1.0 s); paste-back (<= 100 ms).
Run: python benchmarks/vision.py [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from skimage import data  # noqa: E402

from studio.vision import masks  # noqa: E402
from studio.vision.composite import paste_back  # noqa: E402
from studio.vision.toolkit import VisionKit  # noqa: E402

TARGETS_MS = {"face_mask_ms": 150.0, "grabcut_ms": 1000.0, "paste_back_ms": 100.0}


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up (cascade load, first allocations)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()

    person = Image.fromarray(data.astronaut()).resize((1024, 1024), Image.Resampling.BICUBIC)
    product = np.asarray(Image.fromarray(data.coffee()).resize((1024, 1024), Image.Resampling.BICUBIC))
    product_box = (120, 25, 836, 1012)  # the cup-and-saucer box of the coffee test, scaled
    generated = Image.new("RGB", (1024, 1024), (40, 120, 200))

    with tempfile.TemporaryDirectory() as models:
        kit = VisionKit(Path(models), device="cpu")   # no weights: Haar + GrabCut

        def face_mask() -> np.ndarray:
            faces = kit.detect_faces(person)
            if not faces:
                raise RuntimeError("benchmark photo lost its face")
            return masks.invert(kit.face_keep_mask(person.size, faces[0]))

        regen = face_mask()
        keep = masks.invert(regen)
        results = {
            "face_mask_ms": _median_ms(face_mask, args.repeats),
            "grabcut_ms": _median_ms(lambda: kit.cutout(product, box=product_box, prefer="grabcut"),
                                     max(3, args.repeats // 2)),
            "paste_back_ms": _median_ms(lambda: paste_back(generated, person, keep, feather_px=8), args.repeats),
        }
    ok = all(results[k] <= TARGETS_MS[k] for k in TARGETS_MS)
    print(f"{'stage':<16}{'median ms':>12}{'target ms':>12}")
    for k, v in results.items():
        print(f"{k:<16}{v:>12.1f}{TARGETS_MS[k]:>12.0f}")
    line: dict[str, object] = {"bench": "vision", "size": "1024x1024"}
    for k, v in results.items():
        line[k] = round(v, 1)
        line["target_" + k] = TARGETS_MS[k]
    line["ok"] = ok
    print(json.dumps(line))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
