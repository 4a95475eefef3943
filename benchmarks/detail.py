"""The detail pass's own cost, outside the engine (issue 24): target <= 300 ms per region on 2 cores.

A real photo with hands (opencv-doc's basketball1.png, two players) is laid on a 1080x1350 ad with
a second person (scikit-image's astronaut, 540 px) below; the two clearly visible hands (boxes
labelled by eye, 21 outline points each, as a landmarker gives) are injected, and the real face
detector finds the faces on the ad, which count as generated faces (nothing is kept but a block
in the corner). The engine is a counting stand-in
that returns its input at once, so everything timed is the pass's own work: face detection, the
masks, the crops resized up to the engine's native 1024 x 1024 and back, the feathered paste and
the kept pixels restored. The engine's calls are counted (and must equal the regions).

    python benchmarks/detail.py [--runs 5]

Ends with ONE JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_MS_PER_REGION = 300.0
PHOTO = Path("/usr/share/doc/opencv-doc/examples/data/basketball1.png")
HAND_BOXES = [(122, 138, 162, 174), (434, 220, 480, 270)]   # in the 640x480 photo


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--cores", type=int, default=2)
    args = p.parse_args(argv)
    try:
        os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[: args.cores]))
    except (AttributeError, OSError):
        pass
    import cv2
    import numpy as np
    from PIL import Image

    cv2.setNumThreads(args.cores)
    from studio.engines.base import EngineCaps, EngineResult
    from studio.vision import detail
    from studio.vision.hands import Hand
    from studio.vision.toolkit import VisionKit

    photo = Image.open(PHOTO).convert("RGB")
    scale = 1080 / photo.width
    ad = Image.new("RGB", (1080, 1350), (200, 200, 200))
    top = 200
    ad.paste(photo.resize((1080, round(photo.height * scale)), Image.Resampling.LANCZOS), (0, top))
    from skimage import data

    ad.paste(Image.fromarray(data.astronaut()).resize((540, 540), Image.Resampling.LANCZOS), (540, 810))
    keep = np.zeros((1350, 1080), np.uint8)
    keep[1200:, 900:] = 255   # a kept block (the pass must restore it)

    def hands(_rgb):
        out = []
        for x0, y0, x1, y1 in HAND_BOXES:
            b = (x0 * scale, y0 * scale + top, x1 * scale, y1 * scale + top)
            a = np.linspace(np.pi / 2, np.pi / 2 + 2 * np.pi, 21, endpoint=False)
            pts = np.stack([(b[0] + b[2]) / 2 + (b[2] - b[0]) / 2 * np.cos(a),
                            (b[1] + b[3]) / 2 + (b[3] - b[1]) / 2 * np.sin(a)], 1)
            out.append(Hand(box=tuple(int(v) for v in b), points=pts, score=0.9, handedness="Right"))
        return out

    class Instant:
        name = "instant"
        caps = EngineCaps(changes_outfit=True, work_megapixels=1.0, size_multiple=16)
        calls = 0

        def inpaint(self, job, progress=None, cancel=None):
            Instant.calls += 1
            return EngineResult(images=[job.image])

    engine = Instant()
    vision = VisionKit(Path(tempfile.mkdtemp()), device="cpu")
    vision.detect_faces(ad)  # load the detector once (not part of a pass)
    totals, overheads, regions, calls = [], [], 0, 0
    for _ in range(args.runs):
        Instant.calls = 0
        t0 = time.perf_counter()
        res = detail.run_pass(ad, keep, engine, find_hands=hands, find_faces=vision.detect_faces, prompt="ad",
                              steps=28, strength=0.6, seed=1,
                              call=lambda job: engine.inpaint(job).images[0])
        totals.append(time.perf_counter() - t0)
        overheads.append(res.overhead_s)
        regions, calls = res.hands + res.faces, Instant.calls
        assert np.array_equal(np.asarray(res.image)[keep > 0], np.asarray(ad)[keep > 0])
    per_region_ms = statistics.median(overheads) / max(1, regions) * 1000
    out = {"bench": "detail", "cores": args.cores, "runs": args.runs, "ad": [1080, 1350],
           "regions": regions, "hands": res.hands, "faces": res.faces, "engine_calls": calls,
           "engine_size": [list(s) for _, s in res.crops][:1],
           "pass_s_median": round(statistics.median(totals), 3),
           "overhead_ms_per_region": round(per_region_ms, 1), "target_ms_per_region": TARGET_MS_PER_REGION,
           "face_detector": vision.faces.backend,
           "ok": regions >= 3 and calls == regions and per_region_ms <= TARGET_MS_PER_REGION}
    print(json.dumps(out))
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
