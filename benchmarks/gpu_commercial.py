"""GPU rows for the commercial engines (issue 23): FLUX.2 [klein] 4B and Qwen-Image-Edit-2511.

Called by `benchmarks/gpu.py --engine klein|qwen-edit` (or directly). Full size: every part is
built from the real configs (tests/real_layouts.py: klein transformer 5+20 blocks / joint 7680,
Qwen3-4B encoder; Qwen-Image transformer 60 layers / joint 3584) with random bf16 weights created
on CUDA (nothing downloaded), and run through OUR engine (`KleinEngine` / `QwenEditEngine` with
`parts=`) at 1024x1024: the plan the engine picks on this card ("plain"), then each emulated card
of `ENGINE_PLAN_SIZES` (8/12/16/24 GB via set_per_process_memory_fraction) with the plan
`memory.choose_plan_for` gives it. Tokenizers are the tiny byte-level ones (ids index the full
embedding tables; klein pads to 512 tokens, which is what costs time).

Qwen-Image-Edit: only its plan table is printed for now; its full-size rows need the
Qwen2.5-VL-7B text encoder config (vision tower included), which is not in this repo yet.

    python benchmarks/gpu.py --engine klein --tiny              # CPU check (tiny set)
    python benchmarks/gpu.py --engine klein --budget-s 300 --json-out $OUT/klein.json

Ends with ONE JSON line: per-method s/image, peak VRAM, plan used, and ok.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

GIB = 1024**3
TARGETS = {"klein_plain_s": 2.0}  # the klein card's "sub-second" claim, with margin for 1024x1024 / 4 steps


def klein_parts(tiny: bool, device: str, dtype: Any, workdir: Path) -> dict[str, Any]:
    from studio.engines.tiny_commercial import build_klein_parts, build_qwen_tokenizer

    if tiny:
        parts = build_klein_parts(workdir)
        return parts
    import torch
    from diffusers import AutoencoderKLFlux2, FlowMatchEulerDiscreteScheduler, Flux2Transformer2DModel
    from transformers import Qwen3Config, Qwen3ForCausalLM

    import real_layouts as RL

    with torch.device(device):
        transformer = Flux2Transformer2DModel(**{k: v for k, v in RL.KLEIN_TRANSFORMER.items()
                                                 if not k.startswith("_")}).to(dtype)
        vae = AutoencoderKLFlux2(**{k: v for k, v in RL.KLEIN_VAE.items() if not k.startswith("_")}).to(dtype)
        te = Qwen3ForCausalLM(Qwen3Config(**{k: v for k, v in RL.QWEN3_4B.items() if k != "architectures"})).to(dtype)
    sched = FlowMatchEulerDiscreteScheduler(**{k: v for k, v in RL.KLEIN_SCHEDULER.items() if not k.startswith("_")})
    return {"transformer": transformer.eval(), "vae": vae.eval(), "text_encoder": te.eval(),
            "tokenizer": build_qwen_tokenizer(workdir / "tok"), "scheduler": sched, "is_distilled": True}


def _job(size: int, steps: int) -> Any:
    import numpy as np
    from PIL import Image

    from studio.engines.base import InpaintJob

    rng = np.random.RandomState(0)
    img = Image.fromarray((rng.rand(size, size, 3) * 255).astype("uint8"), "RGB")
    m = np.zeros((size, size), "uint8")
    m[size // 4: 3 * size // 4, size // 4: 3 * size // 4] = 255
    return InpaintJob(image=img, mask=Image.fromarray(m, "L"), prompt="a linen summer dress, studio light",
                      width=size, height=size, steps=steps, guidance=1.0)


def run(engine_name: str, tiny: bool, size: int, steps: int, budget_s: float, runs: int = 2) -> dict[str, Any]:
    from studio.runtime.compat import ensure_torchvision

    ensure_torchvision()
    import tempfile

    import torch

    from studio.engines.commercial import KleinEngine
    from studio.runtime.memory import ENGINE_PLAN_SIZES, PROFILES, choose_plan_for

    t0 = time.perf_counter()
    cuda = torch.cuda.is_available() and not tiny
    device, dtype = ("cuda", torch.bfloat16) if cuda else ("cpu", torch.float32)
    out: dict[str, Any] = {"bench": "gpu_commercial", "engine": engine_name, "mode": "tiny" if tiny else "full",
                           "size": size, "steps": steps, "device": torch.cuda.get_device_name(0) if cuda else "CPU",
                           "methods": {}}
    if engine_name != "klein":
        out.update(ok=False, error="qwen-edit: full-size rows not built yet (the Qwen2.5-VL-7B vision config is "
                                   "not in this repo); plan table only", plans={gb: choose_plan_for(PROFILES["qwen-edit"], float(gb),
                                                                                 cuda=True).name
                                                            for gb in ENGINE_PLAN_SIZES})
        return out
    if not tiny and not cuda:
        out.update(ok=False, error="no CUDA device: run on a lent GPU, or pass --tiny")
        return out
    work = Path(tempfile.mkdtemp(prefix="klein-bench-"))
    parts = klein_parts(tiny, device, dtype, work)
    job = _job(size, steps)

    def measure(method: str, plan_name: str, card_gb: float | None) -> None:
        if time.perf_counter() - t0 > budget_s:
            out["methods"][method] = {"status": "skipped", "reason": "budget"}
            return
        total = torch.cuda.get_device_properties(0).total_memory if cuda else 0
        if cuda and card_gb:
            torch.cuda.set_per_process_memory_fraction(min(1.0, (card_gb - 1.0) * GIB / total))
        kwargs: dict[str, Any] = {"device": None if cuda else "cpu", "lower_res_factors": ()}
        if plan_name != "auto":
            kwargs["memory_plan"] = plan_name
        eng = KleinEngine(None, parts=parts, **kwargs)
        try:
            eng.inpaint(job)  # warm-up
            times = []
            for _ in range(runs):
                if cuda:
                    torch.cuda.synchronize()
                    torch.cuda.reset_peak_memory_stats()
                s = time.perf_counter()
                eng.inpaint(job)
                if cuda:
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - s)
            out["methods"][method] = {"status": "ok", "s_image": round(sorted(times)[len(times) // 2], 3),
                                      "plan": getattr(eng.last_plan, "name", None),
                                      "quantize": getattr(eng.last_plan, "quantize", None),
                                      "peak_vram_gib": round(torch.cuda.max_memory_allocated() / GIB, 2) if cuda else None}
        except Exception as exc:  # noqa: BLE001 - a row says why it failed
            out["methods"][method] = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"[:300]}
        finally:
            eng.close()
            if cuda:
                torch.cuda.set_per_process_memory_fraction(1.0)
                torch.cuda.empty_cache()

    measure("klein_plain", "auto", None)
    for gb in ENGINE_PLAN_SIZES[:-1]:
        plan = choose_plan_for(PROFILES["klein"], float(gb), cuda=True)
        out["methods"][f"klein_card_{gb}gb"] = {"plan": plan.name, "quantize": plan.quantize}
        if cuda:
            measure(f"klein_card_{gb}gb", plan.name, float(gb))
    plain = out["methods"].get("klein_plain", {})
    out["targets"] = TARGETS
    out["ok"] = plain.get("status") == "ok" and (tiny or plain["s_image"] <= TARGETS["klein_plain_s"])
    return out


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(description="klein / Qwen-Image-Edit GPU rows")
    p.add_argument("--engine", choices=("klein", "qwen-edit"), default="klein")
    p.add_argument("--tiny", action="store_true")
    p.add_argument("--size", type=int, default=None)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--budget-s", type=float, default=300.0)
    p.add_argument("--json-out", type=Path, default=None)
    a = p.parse_args(argv)
    size = a.size or (64 if a.tiny else 1024)
    steps = a.steps or (2 if a.tiny else 4)
    out = run(a.engine, a.tiny, size, steps, a.budget_s)
    line = json.dumps(out)
    if a.json_out:
        a.json_out.write_text(line + "\n", encoding="utf-8")
    print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
