"""Video clip timings on this machine.

    python benchmarks/video.py [--runs 3]

- Motion clip: 5 s, 1080x1920, 30 fps, parallax (subject/background layers, inpainted hole) with
  the overlay text animating in, encoded to H.264 MP4 (faststart). Measured in a fresh subprocess
  (import + layers + frames + encode): wall seconds (target <= 12 s on 2 cores, with a music track) and peak RSS
  (target <= 1.5 GiB, `ru_maxrss` of the child). Its CPU seconds (user + system) are printed too:
  on a shared, loaded machine they show what the clip costs independently of the other processes.
- Tiny AI path: the LTX engine over the tiny LTX-Video set vs diffusers' own `LTXConditionPipeline`
  called with the same components and arguments, median of `--runs` (target ratio <= 1.10).

Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MOTION_TARGET_S = 12.0
RSS_TARGET_GIB = 1.5
OVERHEAD_TARGET = 1.10

_CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
sys.path.insert(0, sys.argv[1])
import cv2, numpy as np
from PIL import Image
from skimage import data
from studio.engines.base import Image2VideoJob
from studio.engines.motion import MotionEngine
from studio.render.overlay import OverlaySpec
from studio.render.video import clip_metadata, encode_frames, load_music, probe
import math, wave
rate = 44100
tone = (0.2 * np.sin(2 * math.pi * 220 * np.arange(rate * 6) / rate) * 32767).astype("<i2")
with wave.open(sys.argv[2] + ".wav", "wb") as wf:
    wf.setnchannels(1); wf.setsampwidth(2); wf.setframerate(rate); wf.writeframes(tone.tobytes())
img = Image.fromarray(data.coffee())
mask = np.zeros((img.height, img.width), np.uint8)
cv2.ellipse(mask, (300, 190), (190, 150), 0, 0, 360, 255, -1)   # the cup
spec = OverlaySpec(headline="오늘만 아메리카노 1+1", sub_copy="갓 볶은 원두로 내린 진한 한 잔",
                   cta="지금 방문하세요", layout="bottom_bar", badge_text="50%\n할인")
job = Image2VideoJob(image=img, width=1080, height=1920, seconds=5, fps=30, keep_mask=mask,
                     extras={"style": "parallax", "overlay": spec})
t1 = time.perf_counter()
audio = load_music(sys.argv[2] + ".wav", 5.0)
res = MotionEngine().image2video(job)
info = encode_frames(res.frames, sys.argv[2], 1080, 1920, 30, total=res.count, metadata=clip_metadata(True),
                     audio=audio)
t2 = time.perf_counter()
p = probe(sys.argv[2])
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": t2 - t0, "render_encode_s": t2 - t1, "frames": info.frames,
                  "cpu_s": ru.ru_utime + ru.ru_stime,
                  "rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024,
                  "faststart": p.faststart, "codec": p.codec, "pix_fmt": p.pix_fmt, "audio": p.audio_codec}))
"""


def motion(out: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(ROOT), str(out)], capture_output=True, text=True,
                          env=dict(os.environ, HF_HUB_OFFLINE="1"), check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def ai_overhead(runs: int) -> dict:
    from studio.runtime.compat import ensure_torchvision

    ensure_torchvision()
    from diffusers import LTXConditionPipeline
    from PIL import Image

    from studio.config import REPO_ROOT, Settings
    from studio.engines.base import Image2VideoJob
    from studio.engines.ltx_video import TINY_LTX, create_tiny, frame_count, work_size

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(models_dir=Path(tmp) / "models", outputs_dir=Path(tmp) / "out",
                            presets_dir=REPO_ROOT / "presets")
        settings.models_dir.mkdir()
        engine = create_tiny(settings)
        pipe = LTXConditionPipeline(**engine.pipeline.components)
        w, h = work_size(270, 480, TINY_LTX)
        n = frame_count(17 / 24, TINY_LTX)
        job = Image2VideoJob(image=Image.new("RGB", (600, 900), (200, 120, 40)), prompt="a cup of coffee",
                             width=w, height=h, seconds=n / 24, fps=24, seed=1, steps=4)
        ours, ref = [], []

        def run_ours() -> float:
            t0 = time.perf_counter()
            frames.extend(engine.image2video(job).frames)
            return time.perf_counter() - t0

        def run_ref() -> float:
            t0 = time.perf_counter()
            pipe(**engine.pipeline_kwargs(job))
            return time.perf_counter() - t0

        frames: list = []
        for i in range(runs + 1):  # the first pair warms up; the order alternates
            frames.clear()
            pair = (run_ours(), run_ref()) if i % 2 == 0 else tuple(reversed((run_ref(), run_ours())))
            if i:
                ours.append(pair[0])
                ref.append(pair[1])
        engine.close()
    o, r = statistics.median(ours), statistics.median(ref)
    return {"engine_s": round(o, 3), "diffusers_s": round(r, 3), "ratio": round(o / r, 3), "frames": len(frames),
            "size": [w, h]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--motion-only", action="store_true", help="skip the tiny AI path")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        m = motion(Path(tmp) / "motion.mp4")
    print(f"motion clip 5 s 1080x1920 30 fps parallax+text: {m['seconds']:.2f} s "
          f"(render+encode {m['render_encode_s']:.2f} s), peak RSS {m['rss_gib']:.2f} GiB")
    a = ai_overhead(args.runs) if not args.motion_only else {"engine_s": None, "diffusers_s": None, "ratio": 0.0}
    print(f"tiny AI path: engine {a['engine_s']} s vs LTXConditionPipeline {a['diffusers_s']} s -> {a['ratio']}x")
    load = os.getloadavg()[0]
    ok = (m["seconds"] <= MOTION_TARGET_S and m["rss_gib"] <= RSS_TARGET_GIB and a["ratio"] <= OVERHEAD_TARGET
          and bool(m["faststart"]) and m.get("audio") == "aac")
    print(json.dumps({"benchmark": "video", "motion_s": round(m["seconds"], 2),
                      "motion_render_encode_s": round(m["render_encode_s"], 2), "motion_target_s": MOTION_TARGET_S,
                      "motion_cpu_s": round(m["cpu_s"], 2),
                      "peak_rss_gib": round(m["rss_gib"], 3), "rss_target_gib": RSS_TARGET_GIB,
                      "faststart": m["faststart"], "audio": m.get("audio"), "ai_engine_s": a["engine_s"], "ai_diffusers_s": a["diffusers_s"],
                      "ai_overhead": a["ratio"], "overhead_target": OVERHEAD_TARGET, "load_avg_1m": round(load, 2),
                      "cpus": os.cpu_count(), "ok": ok}))


if __name__ == "__main__":
    main()
