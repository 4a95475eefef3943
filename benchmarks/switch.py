"""Time to switch tasks on the tiny set: inpaint -> text2image -> inpaint through one model manager.

Each switch frees the resident pipeline and loads the other one (its own transformer from disk;
T5, CLIP and the VAE are shared, so they are not reloaded); a 1-step job then runs on it (timed
apart). Then the same switches with a manager that may park the idle pipeline in system RAM
(InvokeAI's habit): switching back places the parked weights again instead of loading them.
Ends with one JSON line. Targets: shared parts load once (5 loads in all), each switch frees the
previous pipeline, a switch costs less than the cold first load, and with parking every switch
back finds the pipeline parked (no reload).

    python benchmarks/switch.py [--rounds 3] [--size 64]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.WARNING)

    from studio.runtime.compat import ensure_torchvision

    ensure_torchvision()
    import numpy as np
    from diffusers.utils import logging as dlog
    from PIL import Image

    from studio.config import REPO_ROOT, Settings
    from studio.engines.base import InpaintJob, Text2ImageJob
    from studio.engines.registry import EngineProvider
    from studio.runtime.manager import ModelManager

    dlog.set_verbosity_error()
    size = args.size
    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp) / "models"
        models.mkdir()
        settings = Settings(models_dir=models, outputs_dir=Path(tmp) / "out", presets_dir=REPO_ROOT / "presets",
                            engine="tiny", task_engines=(("text2image", "tiny"),))
        provider = EngineProvider(settings, manager=ModelManager(vram_gb=24.0))
        start = time.perf_counter()
        fill, t2i = provider.get("inpaint"), provider.get("text2image")  # writes the tiny set once
        setup_s = time.perf_counter() - start

        image = Image.new("RGB", (size, size), (180, 140, 90))
        m = np.zeros((size, size), np.uint8)
        m[size // 2:, :] = 255
        ijob = InpaintJob(image=image, mask=Image.fromarray(m, "L"), prompt="a cafe owner", width=size,
                          height=size, steps=1)
        tjob = Text2ImageJob(prompt="coffee cup", width=size, height=size, steps=1)

        def timed(engine, run) -> tuple[float, float]:
            """(seconds to switch = free the resident pipeline + load this one, seconds of the job)"""
            t0 = time.perf_counter()
            engine.load()
            t1 = time.perf_counter()
            run()
            return t1 - t0, time.perf_counter() - t1

        cold_s, _ = timed(fill, lambda: fill.inpaint(ijob))
        to_t2i: list[float] = []
        to_inpaint: list[float] = []
        jobs: list[float] = []
        for _ in range(args.rounds):
            sw, job_s = timed(t2i, lambda: t2i.text2image(tjob))
            to_t2i.append(sw)
            jobs.append(job_s)
            sw, job_s = timed(fill, lambda: fill.inpaint(ijob))
            to_inpaint.append(sw)
            jobs.append(job_s)
        warm_s, _ = timed(fill, lambda: None)  # same engine again: nothing to switch
        manager = provider.manager
        loads = manager.components.loads
        frees = sum(1 for e in manager.events if e[0] == "free")

        parking = EngineProvider(settings, manager=ModelManager(vram_gb=24.0, ram_free_gb=lambda: 1024.0))
        pfill, pt2i = parking.get("inpaint"), parking.get("text2image")
        timed(pfill, lambda: pfill.inpaint(ijob))
        timed(pt2i, lambda: pt2i.text2image(tjob))
        parked_t2i: list[float] = []
        parked_inpaint: list[float] = []
        for _ in range(args.rounds):
            parked_inpaint.append(timed(pfill, lambda: pfill.inpaint(ijob))[0])
            parked_t2i.append(timed(pt2i, lambda: pt2i.text2image(tjob))[0])
        unparks = sum(1 for e in parking.manager.events if e[0] == "unpark")
        parked_frees = sum(1 for e in parking.manager.events if e[0] == "free")
    med_t, med_i = statistics.median(to_t2i), statistics.median(to_inpaint)
    print(f"tiny set, {size}x{size}, 1 step, {args.rounds} rounds (CPU)")
    print(f"  writing the tiny set        {setup_s * 1000:8.0f} ms")
    print(f"  cold first load (Fill)      {cold_s * 1000:8.0f} ms  (shared T5/CLIP/VAE + transformer + ControlNet)")
    print(f"  switch -> text2image        {med_t * 1000:8.0f} ms  (free Fill, load schnell's transformer; median)")
    print(f"  switch -> inpaint           {med_i * 1000:8.0f} ms  (free schnell, load Fill's own parts; median)")
    print(f"  same engine again           {warm_s * 1000:8.0f} ms")
    med_pi, med_pt = statistics.median(parked_inpaint), statistics.median(parked_t2i)
    print(f"  switch back, parked in RAM  {med_pi * 1000:8.0f} ms -> inpaint, {med_pt * 1000:.0f} ms -> text2image "
          f"({unparks} unparks, {parked_frees} frees)")
    print(f"  one 1-step job (median)     {statistics.median(jobs) * 1000:8.0f} ms  (not part of a switch)")
    print(f"  shared component loads      {loads:8d} (T5, CLIP, VAE, 2 tokenizers: once)")
    ok = (loads == 5 and frees == 2 * args.rounds and max(med_t, med_i) < cold_s
          and unparks == 2 * args.rounds and parked_frees == 0)
    print(json.dumps({"bench": "switch", "size": size, "rounds": args.rounds, "cold_load_ms": round(cold_s * 1000),
                      "switch_to_text2image_ms": round(med_t * 1000), "switch_to_inpaint_ms": round(med_i * 1000),
                      "same_engine_ms": round(warm_s * 1000, 2), "job_ms": round(statistics.median(jobs) * 1000),
                      "shared_loads": loads, "frees": frees,
                      "parked_switch_to_inpaint_ms": round(med_pi * 1000), "parked_switch_to_text2image_ms":
                      round(med_pt * 1000), "unparks": unparks, "parked_frees": parked_frees,
                      "target": "shared_loads == 5 and each switch < cold load; parked: every switch back unparks",
                      "ok": bool(ok)}))


if __name__ == "__main__":
    main()
