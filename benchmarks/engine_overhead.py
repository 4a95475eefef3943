"""Engine overhead: our FLUX Fill (+ControlNet) engine vs plain diffusers FluxFillPipeline.

Same tiny components, 256x256, 4 steps, ControlNet at scale 0 (so both do the same work), runs
alternating between the two; prints the median time of each, the median of the per-pair ratios
(target <= 1.10), the largest pixel difference, then the memory plan chosen for 8..80 GB cards,
and ends with one JSON line.

    python benchmarks/engine_overhead.py [--runs 9] [--size 256] [--steps 4]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.WARNING)

    from studio.runtime.compat import ensure_torchvision

    ensure_torchvision()
    import numpy as np
    import torch
    from diffusers import FluxFillPipeline
    from diffusers.utils import logging as dlog
    from PIL import Image
    from skimage import data

    from studio.engines.base import InpaintJob
    from studio.engines.flux_fill import FluxFillEngine
    from studio.engines.tiny import MAX_SEQUENCE_LENGTH, build_tiny_components
    from studio.runtime.memory import plan_table

    dlog.set_verbosity_error()
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    size, steps = args.size, args.steps
    parts = build_tiny_components()
    engine = FluxFillEngine.from_parts(**parts, device="cpu", max_sequence_length=MAX_SEQUENCE_LENGTH,
                                       paste_back=False)
    plain = FluxFillPipeline(**{k: v for k, v in parts.items() if k != "controlnet"})
    plain.set_progress_bar_config(disable=True)

    image = Image.fromarray(data.astronaut()).resize((size, size), Image.Resampling.LANCZOS)
    m = np.zeros((size, size), np.uint8)
    m[size // 4:, :] = 255
    mask = Image.fromarray(m, "L")
    pose = Image.fromarray(data.coffee()).resize((size, size))
    job = InpaintJob(image=image, mask=mask, prompt="a cafe owner wearing an apron", width=size, height=size,
                     seed=0, steps=steps, control_image=pose, controlnet_scale=0.0)

    def run_engine() -> Image.Image:
        return engine.inpaint(job)[0]

    def run_plain() -> Image.Image:
        return plain(prompt=job.prompt, image=image, mask_image=mask, height=size, width=size,
                     num_inference_steps=steps, guidance_scale=job.guidance,
                     generator=torch.Generator("cpu").manual_seed(0),
                     max_sequence_length=MAX_SEQUENCE_LENGTH).images[0]

    a, b = run_engine(), run_plain()  # warm-up (loads, allocator)
    max_diff = int(np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).max())
    t_engine: list[float] = []
    t_plain: list[float] = []
    for i in range(args.runs):
        order = (("engine", run_engine), ("plain", run_plain)) if i % 2 == 0 else (("plain", run_plain), ("engine", run_engine))
        for name, fn in order:
            start = time.perf_counter()
            fn()
            (t_engine if name == "engine" else t_plain).append(time.perf_counter() - start)
    ratios = [e / p for e, p in zip(t_engine, t_plain)]
    ratio = statistics.median(ratios)
    med_e, med_p = statistics.median(t_engine), statistics.median(t_plain)
    print(f"tiny FLUX Fill, {size}x{size}, {steps} steps, {args.runs} alternating runs (CPU, {torch.get_num_threads()} threads)")
    print(f"  ours (engine.inpaint)   median {med_e * 1000:8.1f} ms")
    print(f"  diffusers FluxFill      median {med_p * 1000:8.1f} ms")
    print(f"  median ratio            {ratio:8.3f}  (target <= 1.10)")
    print(f"  max pixel difference    {max_diff:8d}  (ControlNet at scale 0)")

    # full size check of the tiny engine (another benchmark runs it at 1024^2)
    big = InpaintJob(image=image.resize((1024, 1024)), mask=mask.resize((1024, 1024)), prompt=job.prompt,
                     width=1024, height=1024, seed=0, steps=steps, control_image=pose.resize((1024, 1024)),
                     controlnet_scale=0.7)
    start = time.perf_counter()
    engine.inpaint(big)
    big_s = time.perf_counter() - start
    print(f"  tiny engine 1024x1024 with ControlNet: {big_s:.2f} s")

    print("\nMemory plan per card (bf16 FLUX.1 Fill + ControlNet, 1024x1024):")
    print(f"  {'VRAM':>6}  {'plan':<20} {'8bit':<16} {'4bit':<16} tiling")
    q8 = dict(plan_table(quantize="8bit"))
    q4 = dict(plan_table(quantize="4bit"))
    table = {}
    for gb, plan in plan_table():
        table[str(gb)] = plan.name
        print(f"  {gb:>4} GB  {plan.name:<20} {q8[gb].name:<16} {q4[gb].name:<16} {plan.vae_tiling}")

    print(json.dumps({"bench": "engine_overhead", "size": size, "steps": steps, "runs": args.runs,
                      "engine_ms": round(med_e * 1000, 1), "diffusers_ms": round(med_p * 1000, 1),
                      "median_ratio": round(ratio, 3), "target_ratio": 1.10, "max_pixel_diff": max_diff,
                      "tiny_1024_s": round(big_s, 2), "plans": table,
                      "ok": bool(ratio <= 1.10 and max_diff == 0)}))


if __name__ == "__main__":
    main()
