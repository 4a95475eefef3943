"""Full-size FLUX.1 Fill (+ ControlNet Union Pro 2.0) timings and memory plans, on a lent GPU.

Builds every part from its published config with random bf16 weights created directly on CUDA
(nothing is downloaded), runs them through OUR engine (`FluxFillEngine.from_parts(...).inpaint`)
at 1024x1024 / 28 steps, and measures, in order of value (what no longer fits the time budget is
skipped, and the output says so):

  plain              bf16, ControlNet on (pose), memory plan "gpu"  -- the unconstrained reference
  no_controlnet      bf16, ControlNet off
  fbc                first-block cache (diffusers FirstBlockCacheConfig via transformer.enable_cache)
  compile            regional torch.compile of the repeated blocks (transformer.compile_repeated_blocks)
  fp8_layerwise      fp8 weight storage, bf16 compute (enable_layerwise_casting; no extra wheel)
  fp8_torchao        torchao float8 dynamic quantisation (only if torchao is importable)
  int8_bitsandbytes  reported as skipped (bitsandbytes quantises at load time, not in memory)
  detail_pass        the detail pass (issue 24): 2 hands + 1 face of a 1080x1350 ad redrawn at 1024x1024,
                     strength 0.6: s/pass, engine calls, overhead per region outside the engine
  card_16gb/12gb/24gb  a smaller card emulated with torch.cuda.set_per_process_memory_fraction:
                     the plan `studio.runtime.memory.choose_plan` picks, whether it ran, s/image, peak VRAM

Each figure is the median of `--runs` runs after one warm-up run (fewer runs when the budget is
short; the output says how many). The speed-ups (fbc, compile, fp8) run with the ControlNet off
by default (`--speedup-controlnet`), like the diffusers anchors they are compared with.

Tokenizers: the tiny ones of `studio.engines.tiny` (a full vocabulary is not needed for timing:
CLIP pads to 77 tokens and T5 to `max_sequence_length` = 512 tokens, which is what costs time; the
ids index the full-size embedding tables).

    # CPU check with the tiny set (CI; seconds):
    python benchmarks/gpu.py --tiny
    # on a lent GPU, one call (see benchmarks/RESULTS.md for the exact command):
    python benchmarks/gpu.py --budget-s 360 --json-out $OUT/gpu.json
    # afterwards, here: append the rows of a saved run to RESULTS.md
    python benchmarks/gpu.py --record-from /path/to/gpu.json
    # issue 23: FLUX.2 [klein] 4B rows (and the Qwen-Image-Edit plan table): see gpu_commercial.py
    python benchmarks/gpu.py --engine klein --budget-s 300 --json-out $OUT/klein.json

Ends with ONE JSON line: figures, targets (issue 15: compile <= 4.5 s/image, FBC <= 2.5 s/image,
16 GB plan within 3x of the unconstrained run, ~74 TFLOP per denoising step) and ok flags.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import inspect
import json
import logging
import os
import statistics
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

RESULTS_MD = ROOT / "benchmarks" / "RESULTS.md"
GPU_ROWS_END = "<!-- gpu-rows-end -->"
CPU_ROWS_END = "<!-- cpu-rows-end -->"
GIB = 1024**3

# Targets and anchors (issue 15, H100-class, 28 steps).
TARGET_COMPILE_S = 4.5
TARGET_FBC_S = 2.5
TARGET_CARD16_RATIO = 3.0
ANCHOR_DIFFUSERS_BF16_S = 6.7
ISSUE_FLOOR_TFLOP_PER_STEP = 74.0

CARDS_GB: tuple[int, ...] = (16, 12, 24)  # 16 first: it carries a target
METHODS: tuple[str, ...] = ("plain", "no_controlnet", "fbc", "compile", "fp8_layerwise", "fp8_torchao",
                            "int8_bitsandbytes", "detail_pass", *(f"card_{gb}gb" for gb in CARDS_GB))

# Published configs of the CLIP-L, T5-XXL and VAE parts (checked against the real config.json files):
# held in studio/runtime/weights.py with the transformer and ControlNet configs.
from studio.runtime.weights import CLIP_L_CONFIG, FLUX_VAE_CONFIG, T5_XXL_CONFIG  # noqa: E402

log = logging.getLogger("bench.gpu")


# ------------------------------------------------------------------------------------------------
# Small helpers
# ------------------------------------------------------------------------------------------------
class Clock:
    """Seconds since the start and what is left of the budget."""

    def __init__(self, budget_s: float) -> None:
        self.start = time.monotonic()
        self.budget_s = budget_s

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start

    @property
    def left(self) -> float:
        return self.budget_s - self.elapsed

    def say(self, msg: str) -> None:
        print(f"[gpu-bench +{self.elapsed:6.1f}s] {msg}", flush=True)


class RssPeak:
    """Peak resident set size of this process while the block runs (sampled every 50 ms)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        try:
            import psutil

            self._proc: Any = psutil.Process()
        except ImportError:
            self._proc = None

    def _sample(self) -> None:
        if self._proc is not None:
            self.peak = max(self.peak, int(self._proc.memory_info().rss))

    def _loop(self) -> None:
        while not self._stop.wait(0.05):
            self._sample()

    def __enter__(self) -> "RssPeak":
        self._sample()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        if self._proc is None:  # no psutil: the process-lifetime peak
            import resource

            self.peak = int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024

    @property
    def gib(self) -> float:
        return round(self.peak / GIB, 2)


@dataclass
class Result:
    method: str
    status: str = "skipped"            # "ok" | "skipped" | "failed"
    reason: str | None = None          # why skipped/failed, or a caveat
    s_image: float | None = None       # median seconds per image (whole engine call)
    s_step: float | None = None        # s_image / steps
    denoise_s_step: float | None = None  # median seconds per denoising step (from the step callbacks)
    tflops: float | None = None        # achieved TFLOP/s over the denoising loop
    runs: int = 0
    times: list[float] = field(default_factory=list)
    warmup_s: float | None = None
    peak_vram_gib: float | None = None
    peak_reserved_gib: float | None = None
    host_rss_peak_gib: float | None = None
    controlnet: bool = True
    dtype: str = ""
    extra: dict = field(default_factory=dict)


def accepted_kwargs(fn: Callable, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The kwargs `fn` accepts (all of them if it takes **kwargs)."""
    params = inspect.signature(fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(kwargs)
    return {k: v for k, v in kwargs.items() if k in params}


# ------------------------------------------------------------------------------------------------
# Engine coupling: one function builds the engine from parts, one runs a job.
# ------------------------------------------------------------------------------------------------
def build_engine(parts: dict[str, Any], **kwargs: Any) -> Any:
    from studio.engines.flux_fill import FluxFillEngine

    return FluxFillEngine.from_parts(**parts, **accepted_kwargs(FluxFillEngine.__init__, kwargs))


def run_job(engine: Any, job: Any, progress: Callable[..., None]) -> tuple[list[Any], list[Any]]:
    """`engine.inpaint` -> (images, notices); accepts a list or an object with `.images`/`.notices`."""
    out = engine.inpaint(job, progress=progress)
    images = list(getattr(out, "images", out))
    notices = list(getattr(out, "notices", None) or job.extras.get("notices", []) or [])
    return images, notices


def close_engine(engine: Any) -> None:
    if engine is not None and hasattr(engine, "close"):
        engine.close()


# ------------------------------------------------------------------------------------------------
# Parts
# ------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def built_on(device: str, dtype: Any) -> Iterator[None]:
    """Construct modules directly on `device` in `dtype` (no CPU copy, no download)."""
    import torch

    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(old)


def _ready(module: Any, dtype: Any) -> Any:
    if any(p.is_floating_point() and p.dtype != dtype for p in module.parameters()):
        module = module.to(dtype=dtype)
    return module.eval().requires_grad_(False)


def _sig(x: float, digits: int = 4) -> float:
    return float(f"{x:.{digits}g}")


def build_fill_transformer(tiny: bool, device: str, dtype: Any) -> Any:
    from studio.runtime.compat import ensure_torchvision

    ensure_torchvision()
    if tiny:
        from studio.engines.tiny import build_fill_transformer as tiny_fill

        return _ready(tiny_fill().to(device), dtype)
    from diffusers import FluxTransformer2DModel

    from studio.runtime.weights import FLUX_FILL_TRANSFORMER_CONFIG

    with built_on(device, dtype):
        return _ready(FluxTransformer2DModel(**FLUX_FILL_TRANSFORMER_CONFIG), dtype)


def controlnet_config(name: str) -> dict[str, Any]:
    from studio.runtime import weights as W

    return dict(W.CONTROLNET_UNION_INSTANTX_CONFIG if name == "instantx" else W.CONTROLNET_UNION_PRO2_CONFIG)


def build_parts(tiny: bool, device: str, dtype: Any, cn_name: str) -> dict[str, Any]:
    """The FluxFillPipeline parts + `controlnet`: tiny (CPU) or full-size random (on `device`)."""
    from studio.runtime.compat import ensure_torchvision

    ensure_torchvision()
    import torch

    from studio.engines.tiny import build_scheduler, build_tiny_components, build_tokenizers

    if tiny:
        parts = build_tiny_components(controlnet=True)
        for name in ("vae", "text_encoder", "text_encoder_2", "transformer", "controlnet"):
            parts[name] = _ready(parts[name].to(device), dtype)
        return parts
    from diffusers import AutoencoderKL, FluxControlNetModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    tokenizer, tokenizer_2 = build_tokenizers()
    parts: dict[str, Any] = {"scheduler": build_scheduler(), "tokenizer": tokenizer, "tokenizer_2": tokenizer_2}
    parts["transformer"] = build_fill_transformer(False, device, dtype)
    with built_on(device, dtype):
        parts["controlnet"] = _ready(FluxControlNetModel(**controlnet_config(cn_name)), dtype)
        parts["text_encoder"] = _ready(CLIPTextModel(CLIPTextConfig(**CLIP_L_CONFIG)), dtype)
        parts["text_encoder_2"] = _ready(T5EncoderModel(T5Config(**T5_XXL_CONFIG)), dtype)
        parts["vae"] = _ready(AutoencoderKL(**FLUX_VAE_CONFIG), dtype)
    # A fresh ControlNet's output projections are zero (a no-op, and zeros multiply faster): randomise.
    cn = parts["controlnet"]
    with torch.no_grad():
        for layer in [*cn.controlnet_blocks, *cn.controlnet_single_blocks, cn.controlnet_x_embedder]:
            torch.nn.init.normal_(layer.weight, std=0.02)
            torch.nn.init.zeros_(layer.bias)
    return parts


def make_jobs(size: int, steps: int) -> tuple[Any, Any]:
    """(job with the pose ControlNet, the same job without it). Synthetic pictures: timing only."""
    import numpy as np
    from PIL import Image

    from studio.engines.base import InpaintJob

    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(1, size - 1)
    rgb = np.stack([xx * 255, yy * 255, (1 - xx) * 180 + 40], axis=-1).astype(np.uint8)
    image = Image.fromarray(rgb, "RGB")
    m = np.zeros((size, size), np.uint8)
    m[size // 4:, :] = 255  # regenerate everything below the top quarter
    mask = Image.fromarray(m, "L")
    pose = np.zeros((size, size, 3), np.uint8)
    c = size // 2
    pose[size // 8: size - size // 8, c - 3: c + 3] = (255, 0, 0)
    pose[size // 3 - 3: size // 3 + 3, size // 4: size - size // 4] = (0, 255, 0)
    control = Image.fromarray(pose, "RGB")
    prompt = "a cafe owner wearing an apron, standing at the counter, warm natural light, advertisement photo"
    with_cn = InpaintJob(image=image, mask=mask, prompt=prompt, width=size, height=size, seed=0, steps=steps,
                         control_image=control)
    without = InpaintJob(image=image, mask=mask, prompt=prompt, width=size, height=size, seed=0, steps=steps,
                         control_image=None)
    return with_cn, without


# ------------------------------------------------------------------------------------------------
# FLOPs
# ------------------------------------------------------------------------------------------------
def flux_flops(cfg: dict[str, Any], img_tokens: int, txt_tokens: int, controlnet: bool = False) -> float:
    """Forward FLOPs (2 per multiply-add) of a FLUX transformer or ControlNet for one denoising step.

    Per token and block: double blocks have per-stream qkv (3d^2) + out (d^2) + MLP (8d^2) = 12d^2,
    single blocks qkv (3d^2) + MLP in (4d^2) + fused out (5d^2) = 12d^2; joint attention over
    n = img + txt tokens costs 4 n^2 d. Embedders and output projections are added; the per-sample
    modulation layers are negligible.
    """
    d = int(cfg["num_attention_heads"]) * int(cfg["attention_head_dim"])
    n = img_tokens + txt_tokens
    block = 2 * n * 12 * d * d + 4 * n * n * d
    total = (int(cfg["num_layers"]) + int(cfg["num_single_layers"])) * block
    in_ch = int(cfg["in_channels"])
    total += 2 * img_tokens * in_ch * d + 2 * txt_tokens * int(cfg["joint_attention_dim"]) * d
    if controlnet:  # zero-conv style projections: one d x d per block on the image tokens
        total += (int(cfg["num_layers"]) + int(cfg["num_single_layers"])) * 2 * img_tokens * d * d
        total += 2 * img_tokens * in_ch * d  # controlnet_x_embedder
    else:
        out_ch = int(cfg.get("out_channels") or in_ch)
        total += 2 * img_tokens * d * out_ch
    return float(total)


# ------------------------------------------------------------------------------------------------
# Measuring
# ------------------------------------------------------------------------------------------------
@dataclass
class Bench:
    args: argparse.Namespace
    clock: Clock
    torch: Any
    cuda: bool
    dtype: Any
    size: int
    steps: int
    flops_t: float         # transformer FLOPs per step
    flops_cn: float        # ControlNet FLOPs per step it runs
    results: dict[str, Result] = field(default_factory=dict)
    ref_s: float | None = None  # the plain run's s/image (for estimates)
    meta: dict[str, Any] = field(default_factory=dict)
    controlnet: Any = None      # the ControlNet module: its calls are counted for the FLOPs
    last_cn_calls: int = 0

    def save(self) -> None:
        """Write the summary so far to --json-out (a run killed at its time limit still leaves it)."""
        if self.args.json_out is not None:
            self.args.json_out.parent.mkdir(parents=True, exist_ok=True)
            self.args.json_out.write_text(json.dumps(summarise(self, self.meta), indent=1), encoding="utf-8")

    def sync(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize()

    def one_run(self, engine: Any, job: Any) -> tuple[float, float | None, list[Any], list[Any]]:
        """(seconds, denoise seconds per step, images, notices) of one engine call."""
        marks: list[tuple[str, float]] = []

        def progress(step: int, total: int, desc: str = "") -> None:
            self.sync()
            marks.append((desc, time.perf_counter()))

        calls = [0]
        hook = None
        if self.controlnet is not None:  # how many steps the ControlNet really ran (engine defaults apply)
            hook = self.controlnet.register_forward_hook(lambda *a: calls.__setitem__(0, calls[0] + 1))
        self.sync()
        start = time.perf_counter()
        try:
            images, notices = run_job(engine, job, progress)
            self.sync()
        finally:
            if hook is not None:
                hook.remove()
        seconds = time.perf_counter() - start
        self.last_cn_calls = calls[0]
        steps = [t for d, t in marks if d == "denoise"] or [t for _, t in marks]  # one mark per step
        per_step = (steps[-1] - steps[0]) / (len(steps) - 1) if len(steps) >= 2 else None
        return seconds, per_step, images, notices

    def estimate(self, factor: float, extra_s: float = 0.0, runs: int | None = None) -> float:
        ref = self.ref_s if self.ref_s is not None else (12.0 if self.cuda else 1.0)
        n = 1 + (self.args.runs if runs is None else runs)
        return extra_s + n * ref * factor

    def fits(self, method: str, needed_s: float) -> bool:
        if needed_s <= self.clock.left - self.args.margin_s:
            return True
        self.results[method] = Result(method, "skipped", reason=f"budget: needs ~{needed_s:.0f} s, "
                                      f"{max(0.0, self.clock.left):.0f} s of {self.args.budget_s:.0f} s left")
        self.clock.say(f"{method}: skipped ({self.results[method].reason})")
        return False

    def measure(self, method: str, engine: Any, job: Any, *, controlnet: bool,
                warmup: Callable[[], float] | None = None, min_runs: int = 1, runs: int | None = None) -> Result:
        """Warm-up, then up to `runs` (--runs) timed runs: as many as the budget allows, at least `min_runs`."""
        runs = self.args.runs if runs is None else runs
        torch = self.torch
        res = Result(method, "ok", controlnet=controlnet, dtype=str(self.dtype).replace("torch.", ""))
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
        with RssPeak() as rss:
            res.warmup_s = round(warmup() if warmup is not None else self.one_run(engine, job)[0], 3)
            self.clock.say(f"{method}: warm-up {res.warmup_s:.2f} s")
            per_steps: list[float] = []
            images: list[Any] = []
            notices: list[Any] = []
            for i in range(runs):
                guess = res.times[-1] if res.times else res.warmup_s
                if i >= min_runs and guess > self.clock.left - self.args.margin_s:
                    res.reason = f"budget: {i} of {runs} runs"
                    break
                seconds, per_step, images, notices = self.one_run(engine, job)
                res.times.append(round(seconds, 3))
                if per_step is not None:
                    per_steps.append(per_step)
                self.clock.say(f"{method}: run {i + 1}: {seconds:.2f} s")
        res.runs = len(res.times)
        res.s_image = round(statistics.median(res.times), 3)
        res.s_step = round(res.s_image / self.steps, 4)
        if per_steps:
            res.denoise_s_step = round(statistics.median(per_steps), 4)
            flops = self.flops_t + self.last_cn_calls / self.steps * self.flops_cn
            res.extra["controlnet_steps"] = self.last_cn_calls
            res.tflops = _sig(flops / res.denoise_s_step / 1e12)
        if self.cuda:
            res.peak_vram_gib = round(torch.cuda.max_memory_allocated() / GIB, 2)
            res.peak_reserved_gib = round(torch.cuda.max_memory_reserved() / GIB, 2)
        res.host_rss_peak_gib = rss.gib
        res.extra["image_std"] = _generated_std(images, job)
        res.extra["notices"] = [n.get("key") if isinstance(n, dict) else getattr(n, "key", str(n)) for n in notices]
        self.results[method] = res
        tf = f", {res.tflops} TFLOP/s" if res.tflops is not None else ""
        vram = f", peak VRAM {res.peak_vram_gib} GiB" if res.peak_vram_gib is not None else ""
        self.clock.say(f"{method}: {res.s_image:.3f} s/image ({res.runs} runs), {res.s_step:.4f} s/step{tf}{vram}, "
                       f"host RSS {res.host_rss_peak_gib} GiB")
        return res

    def guard(self, method: str, fn: Callable[[], None]) -> None:
        """Run one method; an error is recorded as `failed` with its message (the others go on)."""
        try:
            fn()
            self.save()
        except Exception as exc:  # noqa: BLE001 -- a benchmark records any failure and carries on
            log.debug("method %s failed", method, exc_info=True)
            msg = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
            prior = self.results.get(method)
            self.results[method] = Result(method, "failed", reason=msg,
                                          extra=prior.extra if prior is not None else {})
            self.clock.say(f"{method}: FAILED {msg}")
            if self.cuda:
                self.torch.cuda.empty_cache()
            self.save()


def _generated_std(images: list[Any], job: Any) -> float | None:
    """Pixel std inside the regenerated area: 0 means a degenerate (e.g. NaN -> black) output."""
    if not images:
        return None
    import numpy as np

    arr = np.asarray(images[0].convert("L"), dtype=np.float32)
    mask = np.asarray(job.mask.convert("L").resize(images[0].size)) >= 128
    return round(float(arr[mask].std()), 2) if mask.any() else None


# ------------------------------------------------------------------------------------------------
# The methods
# ------------------------------------------------------------------------------------------------
class FbcProbe:
    """Sets the cache context around every transformer call (our pipeline's loop does not), and counts
    how many calls ran the blocks after the first one (the rest were served from the cache)."""

    def __init__(self, transformer: Any) -> None:
        self.transformer = transformer
        self.calls = 0
        self.computed = 0
        self._ctx: Any = None
        blocks = list(getattr(transformer, "single_transformer_blocks", []) or []) or list(transformer.transformer_blocks)
        tail = blocks[-1]
        probe = next(m for m in tail.modules() if m is not tail and any(True for _ in m.parameters(recurse=False)))
        self.handles = [
            transformer.register_forward_pre_hook(self._pre),
            transformer.register_forward_hook(self._post, always_call=True),
            probe.register_forward_hook(self._tail),
        ]

    def _pre(self, module: Any, args: Any) -> None:
        self.calls += 1
        self._ctx = module.cache_context("cond")
        self._ctx.__enter__()

    def _post(self, module: Any, args: Any, output: Any) -> None:
        if self._ctx is not None:
            self._ctx.__exit__(None, None, None)
            self._ctx = None

    def _tail(self, module: Any, args: Any, output: Any) -> None:
        self.computed += 1

    def reset(self) -> None:
        self.calls = self.computed = 0

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def compile_regions(transformer: Any, controlnet: Any, backend: str, fullgraph: bool) -> None:
    """diffusers' regional compile of the transformer, and the same block classes in the ControlNet."""
    kw = {"backend": backend, "fullgraph": fullgraph}
    transformer.compile_repeated_blocks(**kw)
    names = set(getattr(transformer, "_repeated_blocks", ()))
    if controlnet is not None:
        for m in controlnet.modules():
            if type(m).__name__ in names:
                m.compile(**kw)


def uncompile(*modules: Any) -> None:
    for module in modules:
        if module is None:
            continue
        for m in module.modules():
            if getattr(m, "_compiled_call_impl", None) is not None:
                m._compiled_call_impl = None


def run_methods(b: Bench, parts: dict[str, Any], engine_kwargs: dict[str, Any], only: set[str]) -> None:
    torch = b.torch
    args = b.args
    job_cn, job_plain = make_jobs(b.size, b.steps)
    speed_cn = args.speedup_controlnet == "on"
    job_speed = job_cn if speed_cn else job_plain
    wanted = (lambda m: m in only) if only else (lambda m: True)
    engine = build_engine(parts, **engine_kwargs)

    # 1. plain (the unconstrained reference), 2. ControlNet off
    if wanted("plain"):
        b.clock.say("plain: ControlNet on, plan chosen by the engine")

        def plain() -> None:
            res = b.measure("plain", engine, job_cn, controlnet=True)
            res.extra["plan"] = getattr(getattr(engine, "last_plan", None), "name", None)
            b.ref_s = res.s_image

        b.guard("plain", plain)
    if wanted("no_controlnet") and b.fits("no_controlnet", b.estimate(1.0)):
        b.guard("no_controlnet", lambda: b.measure("no_controlnet", engine, job_plain, controlnet=False))

    # 3. first-block cache
    if wanted("fbc") and b.fits("fbc", b.estimate(0.8)):
        def fbc() -> None:
            from diffusers.hooks import FirstBlockCacheConfig

            transformer = parts["transformer"]
            transformer.enable_cache(FirstBlockCacheConfig(threshold=args.fbc_threshold))
            probe = FbcProbe(transformer)
            try:
                res = b.measure("fbc", engine, job_speed, controlnet=speed_cn)
                res.extra.update(threshold=args.fbc_threshold, transformer_calls=probe.calls,
                                 full_calls=probe.computed, cached_calls=probe.calls - probe.computed)
                res.reason = (f"{probe.calls - probe.computed} of {probe.calls} transformer calls served from the "
                              "cache over warm-up + runs; random weights: the skip rate is not that of real "
                              "weights") + (f"; {res.reason}" if res.reason else "")
            finally:
                probe.remove()
                transformer.disable_cache()

        b.guard("fbc", fbc)

    # 4. regional compile
    if wanted("compile") and b.fits("compile", b.estimate(1.0, extra_s=args.compile_estimate_s, runs=args.runs - 1)):
        def compiled() -> None:
            transformer, controlnet = parts["transformer"], parts.get("controlnet")
            backend = args.compile_backend or ("inductor" if b.cuda else "eager")
            notes: dict[str, Any] = {"backend": backend, "fullgraph": True}
            compile_regions(transformer, controlnet, backend, fullgraph=True)

            def warm() -> float:
                start = time.perf_counter()
                try:
                    b.one_run(engine, job_speed)
                except Exception as exc:  # noqa: BLE001 -- fall back to graph breaks once
                    notes["fullgraph_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
                    b.clock.say(f"compile: fullgraph failed ({notes['fullgraph_error']}); retrying with graph breaks")
                    uncompile(transformer, controlnet)
                    torch._dynamo.reset()
                    compile_regions(transformer, controlnet, backend, fullgraph=False)
                    notes["fullgraph"] = False
                    b.one_run(engine, job_speed)
                return time.perf_counter() - start

            try:
                res = b.measure("compile", engine, job_speed, controlnet=speed_cn, warmup=warm)
                res.extra.update(notes)
                res.extra["compile_s"] = res.warmup_s
            finally:
                uncompile(transformer, controlnet)
                torch._dynamo.reset()

        b.guard("compile", compiled)

    # 5. fp8 storage with bf16 compute (a fresh transformer: the casting cannot be undone)
    if wanted("fp8_layerwise") and b.fits("fp8_layerwise", b.estimate(1.5, extra_s=15.0 if b.cuda else 1.0)):
        def fp8_layerwise() -> None:
            _park(parts["transformer"], torch, b.cuda)  # its peak VRAM is the fp8 pipeline's own
            t8 = build_fill_transformer(args.tiny, b.args.device_name, b.dtype)
            t8.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=b.dtype)
            eng8 = None
            try:
                eng8 = build_engine({**parts, "transformer": t8}, **engine_kwargs)
                res = b.measure("fp8_layerwise", eng8, job_speed, controlnet=speed_cn)
                res.dtype = f"float8_e4m3fn storage / {res.dtype} compute"
                res.extra["transformer_gib"] = _sig(sum(p.numel() * p.element_size() for p in t8.parameters()) / GIB)
            finally:
                close_engine(eng8)
                del eng8, t8
                _free(torch, b.cuda)

        b.guard("fp8_layerwise", fp8_layerwise)

    # 6. torchao float8 (only where importable), 7. bitsandbytes (reported)
    if wanted("fp8_torchao"):
        reason = _torchao_unavailable(torch, b.cuda)
        if reason is not None:
            b.results["fp8_torchao"] = Result("fp8_torchao", "skipped", reason=reason)
            b.clock.say(f"fp8_torchao: skipped ({reason})")
        elif b.fits("fp8_torchao", b.estimate(1.0, extra_s=60.0)):
            def fp8_torchao() -> None:
                from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, quantize_

                _park(parts["transformer"], torch, b.cuda)
                tq = build_fill_transformer(args.tiny, b.args.device_name, b.dtype)
                quantize_(tq, Float8DynamicActivationFloat8WeightConfig())
                engq = None
                try:
                    engq = build_engine({**parts, "transformer": tq}, **engine_kwargs)
                    res = b.measure("fp8_torchao", engq, job_speed, controlnet=speed_cn)
                    res.dtype = "float8 dynamic (torchao)"
                finally:
                    close_engine(engq)
                    del engq, tq
                    _free(torch, b.cuda)

            b.guard("fp8_torchao", fp8_torchao)
    if wanted("int8_bitsandbytes"):
        b.results["int8_bitsandbytes"] = Result("int8_bitsandbytes", "skipped", reason=(
            "bitsandbytes quantises while loading (from_pretrained with a quantization_config); the random "
            "full-size parts are built in memory, so the 8-bit plan is measured on real weights only"))

    # 8. the detail pass (issue 24): hands and a generated face redrawn on a finished ad
    if wanted("detail_pass") and b.fits("detail_pass", b.estimate(3 * DETAIL_STRENGTH, extra_s=2.0)):
        b.guard("detail_pass", lambda: run_detail(b, engine))

    # 9. smaller cards, emulated
    card_methods = [f"card_{gb}gb" for gb in CARDS_GB if wanted(f"card_{gb}gb")]
    if card_methods:
        close_engine(engine)  # every part back on the CPU before the limit is set
        for part in parts.values():
            if hasattr(part, "parameters"):
                part.to("cpu")
        _free(torch, b.cuda)
        if b.cuda:
            b.clock.say(f"cards: {torch.cuda.memory_allocated() / GIB:.2f} GiB still allocated after moving the parts off")
    for gb in CARDS_GB:
        method = f"card_{gb}gb"
        if method in card_methods:
            run_card(b, parts, engine_kwargs, gb, job_cn)


DETAIL_STRENGTH = 0.6   # the pass's default (studio.vision.detail.DEFAULT_STRENGTH)


def run_detail(b: Bench, engine: Any) -> None:
    """The detail pass through OUR engine: a 1080x1350 ad with two hands (21 outline points each)
    and one generated face; each region is cropped, redrawn at the engine's native size (1024x1024
    for FLUX; the tiny check scales that down to --size) at strength 0.6, pasted back feathered.
    Figures: seconds per pass (median), engine calls per pass, seconds in the engine, and the pass's
    own overhead per region outside it."""
    import dataclasses

    import numpy as np
    from PIL import Image

    from studio.vision import detail
    from studio.vision.faces import FaceBox
    from studio.vision.hands import Hand

    if b.args.tiny:  # the tiny check works at --size, not at 1 MP (seconds on a CPU)
        engine.caps = dataclasses.replace(engine.caps, work_megapixels=(b.size / 1024) ** 2)
    yy, xx = np.mgrid[0:1350, 0:1080].astype(np.float32)
    ad = Image.fromarray(np.stack([xx / 1079 * 255, yy / 1349 * 255, np.full_like(xx, 120)], -1).astype(np.uint8))
    keep = np.zeros((1350, 1080), np.uint8)
    keep[150:450, 390:690] = 255   # the kept face

    def hand(box: tuple[int, int, int, int]) -> Hand:
        x0, y0, x1, y1 = box
        a = np.linspace(0, 2 * np.pi, 21, endpoint=False)
        pts = np.stack([(x0 + x1) / 2 + (x1 - x0) / 2 * np.cos(a), (y0 + y1) / 2 + (y1 - y0) / 2 * np.sin(a)], 1)
        return Hand(box=box, points=pts, score=0.9, handedness="Right")

    hands = [hand((200, 800, 320, 930)), hand((720, 820, 840, 950))]
    faces = [FaceBox(box=(480, 1000, 600, 1130), score=0.9)]
    engine_s = [0.0]
    calls = [0]

    def call(job: Any) -> Any:
        b.sync()
        t0 = time.perf_counter()
        out = engine.inpaint(job)
        b.sync()
        engine_s[0] += time.perf_counter() - t0
        calls[0] += 1
        return out.images[0]

    def one() -> Any:
        engine_s[0], calls[0] = 0.0, 0
        return detail.run_pass(ad, keep, engine, find_hands=lambda rgb: hands, find_faces=lambda img: faces,
                               prompt="a cafe owner", steps=b.steps, strength=DETAIL_STRENGTH, seed=0, call=call)

    torch = b.torch
    if b.cuda:
        torch.cuda.reset_peak_memory_stats()
    res = Result("detail_pass", "ok", controlnet=False, dtype=str(b.dtype).replace("torch.", ""))
    with RssPeak() as rss:
        t0 = time.perf_counter()
        one()
        res.warmup_s = round(time.perf_counter() - t0, 3)
        b.clock.say(f"detail_pass: warm-up {res.warmup_s:.2f} s")
        overheads, engines = [], []
        out = None
        for i in range(b.args.runs):
            if i >= 1 and (res.times[-1] if res.times else res.warmup_s) > b.clock.left - b.args.margin_s:
                res.reason = f"budget: {i} of {b.args.runs} runs"
                break
            t0 = time.perf_counter()
            out = one()
            res.times.append(round(time.perf_counter() - t0, 3))
            overheads.append(out.overhead_s)
            engines.append(engine_s[0])
            b.clock.say(f"detail_pass: run {i + 1}: {res.times[-1]:.2f} s, {calls[0]} engine calls")
    res.runs = len(res.times)
    res.s_image = round(statistics.median(res.times), 3)
    res.s_step = round(res.s_image / b.steps, 4)
    if b.cuda:
        res.peak_vram_gib = round(torch.cuda.max_memory_allocated() / GIB, 2)
        res.peak_reserved_gib = round(torch.cuda.max_memory_reserved() / GIB, 2)
    res.host_rss_peak_gib = rss.gib
    regions = (out.hands + out.faces) if out is not None else 0
    res.extra.update(regions=regions, engine_calls=calls[0], engine_size=list(out.crops[0][1]) if out else None,
                     strength=DETAIL_STRENGTH, engine_s=round(statistics.median(engines), 3),
                     overhead_ms_per_region=round(statistics.median(overheads) / max(1, regions) * 1000, 1),
                     kept_identical=bool(out is not None and np.array_equal(np.asarray(out.image)[keep > 0],
                                                                            np.asarray(ad)[keep > 0])))
    b.results["detail_pass"] = res
    b.clock.say(f"detail_pass: {res.s_image:.3f} s/pass for {regions} regions ({calls[0]} engine calls, "
                f"{res.extra['engine_s']:.2f} s in the engine, {res.extra['overhead_ms_per_region']} ms/region outside)")


def run_card(b: Bench, parts: dict[str, Any], engine_kwargs: dict[str, Any], gb: int, job: Any) -> None:
    from studio.runtime.memory import choose_plan

    torch = b.torch
    method = f"card_{gb}gb"
    plan = choose_plan(float(gb), "auto", "none", cuda=True)
    info = {"card_gb": gb, "plan": plan.name, "vae_tiling": plan.vae_tiling}
    if not b.cuda:
        b.results[method] = Result(method, "skipped", reason="needs CUDA (set_per_process_memory_fraction)",
                                   extra=info)
        b.clock.say(f"{method}: plan {plan.name}; skipped (needs CUDA)")
        return
    runs = b.args.runs if gb == 16 else b.args.card_runs  # the 16 GB card carries a target
    if not b.fits(method, b.estimate(3.0, extra_s=30.0, runs=runs)):
        b.results[method].extra.update(info)
        return
    total = torch.cuda.get_device_properties(0).total_memory
    limit = max(1.0, gb - b.args.card_reserve_gb) * GIB
    info["allocator_limit_gib"] = round(limit / GIB, 2)

    def card() -> None:
        eng = None
        torch.cuda.set_per_process_memory_fraction(min(1.0, limit / total))
        try:
            eng = build_engine(parts, **{**engine_kwargs, "memory_plan": plan.name, "lower_res_factors": ()})
            b.clock.say(f"{method}: plan {plan.name}, allocator limit {limit / GIB:.1f} GiB")
            try:
                res = b.measure(method, eng, job, controlnet=True, runs=runs)
            except Exception:
                b.results[method] = Result(method, extra=dict(info))
                raise
            used = getattr(eng, "last_plan", None)
            size = getattr(eng, "last_size", None)
            res.extra.update(info, plan_used=getattr(used, "name", None), size_used=list(size) if size else None)
            res.extra["ran"] = bool(res.extra["plan_used"] in (None, plan.name)
                                    and (size is None or tuple(size) == (b.size, b.size)))
            if b.ref_s:
                res.extra["vs_plain"] = round(res.s_image / b.ref_s, 2)
        finally:
            close_engine(eng)
            del eng
            _free(torch, True)
            torch.cuda.set_per_process_memory_fraction(1.0)

    b.guard(method, card)
    if b.results[method].status == "failed":
        b.results[method].extra.update(info, ran=False)


def _park(module: Any, torch: Any, cuda: bool) -> None:
    """Move a part to the CPU (the engine that placed it puts it back when it runs again)."""
    if cuda:
        module.to("cpu")
        _free(torch, cuda)


def _free(torch: Any, cuda: bool) -> None:
    import gc

    gc.collect()
    if cuda:
        torch.cuda.empty_cache()


def _torchao_unavailable(torch: Any, cuda: bool) -> str | None:
    import importlib.util

    if importlib.util.find_spec("torchao") is None:
        return "torchao is not importable (carry a wheel matching the torch there to measure it)"
    if not cuda:
        return "float8 matmuls need CUDA"
    if torch.cuda.get_device_capability(0) < (8, 9):
        return "float8 matmuls need compute capability 8.9+"
    return None


# ------------------------------------------------------------------------------------------------
# Summary, JSON, RESULTS.md
# ------------------------------------------------------------------------------------------------
def summarise(b: Bench, meta: dict[str, Any]) -> dict[str, Any]:
    r = b.results

    def s(name: str) -> float | None:
        res = r.get(name)
        return res.s_image if res is not None and res.status == "ok" else None

    plain, comp, fbc, c16 = s("plain"), s("compile"), s("fbc"), s("card_16gb")
    ratio16 = round(c16 / plain, 2) if c16 and plain else None
    card16 = r.get("card_16gb")
    full = meta["mode"] == "full"  # the targets are for a full-size run on a GPU
    checks: dict[str, bool | None] = {
        "compile_le_4_5s": None if comp is None or not full else comp <= TARGET_COMPILE_S,
        "fbc_le_2_5s": None if fbc is None or not full else fbc <= TARGET_FBC_S,
        "card16_within_3x": None if ratio16 is None or not full else (ratio16 <= TARGET_CARD16_RATIO
                                                                      and bool(card16 and card16.extra.get("ran"))),
    }
    every = all(res.status in ("ok", "skipped") and (res.status == "ok" or res.reason) for res in r.values())
    if not full:
        ok = every
        ok_means = "tiny/CPU check: every method gave a figure or a skip reason, none failed (targets are GPU-only)"
    else:
        ok = all(v is True for v in checks.values())
        ok_means = "full size: compile <= 4.5 s, FBC <= 2.5 s and the 16 GB plan ran within 3x of plain"
    methods = {name: {k: v for k, v in asdict(res).items() if k != "method"} for name, res in r.items()}
    return {
        "bench": "gpu", **meta, "elapsed_s": round(b.clock.elapsed, 1), "budget_s": b.args.budget_s,
        "flops_per_step_tflop": {"transformer": _sig(b.flops_t / 1e12), "controlnet": _sig(b.flops_cn / 1e12),
                                 "issue_floor": ISSUE_FLOOR_TFLOP_PER_STEP},
        "methods": methods,
        "targets": {"compile_s": TARGET_COMPILE_S, "fbc_s": TARGET_FBC_S, "card16_vs_plain": TARGET_CARD16_RATIO,
                    "anchor_diffusers_bf16_s": ANCHOR_DIFFUSERS_BF16_S},
        "figures": {"plain_s": plain, "no_controlnet_s": s("no_controlnet"), "compile_s": comp, "fbc_s": fbc,
                    "fp8_layerwise_s": s("fp8_layerwise"), "detail_pass_s": s("detail_pass"), "card16_s": c16, "card16_vs_plain": ratio16},
        "checks": checks, "ok": bool(ok), "ok_means": ok_means,
    }


def _fmt(v: Any, nd: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, float) and v != 0 and abs(v) < 10 ** -nd:
        return f"{v:.2g}"
    return f"{v:.{nd}f}" if isinstance(v, float) else str(v)


def result_rows(summary: dict[str, Any]) -> list[str]:
    """Markdown table rows for the measured (status ok) methods of a summary."""
    date = summary.get("date", "")
    device = summary.get("device", "")
    tiny = summary.get("mode") == "tiny"
    if tiny:
        device = f"{device} — tiny set, NOT a GPU figure"
    rows = []
    for name, m in summary["methods"].items():
        if m["status"] != "ok":
            continue
        extra = m.get("extra", {})
        notes = []
        if "plan" in extra:
            notes.append(f"plan {extra['plan']}" + (f" (used {extra['plan_used']})"
                                                    if extra.get("plan_used") not in (None, extra["plan"]) else ""))
        if m.get("controlnet") and extra.get("controlnet_steps"):
            notes.append(f"ControlNet ran {extra['controlnet_steps']} steps")
        if "ran" in extra:
            notes.append("ran" if extra["ran"] else "did NOT run as planned")
        if "vs_plain" in extra:
            notes.append(f"{extra['vs_plain']}x plain")
        if "cached_calls" in extra:
            notes.append(f"cache served {extra['cached_calls']}/{extra['transformer_calls']} calls, "
                         f"threshold {extra['threshold']}")
        if "overhead_ms_per_region" in extra:
            notes.append(f"detail pass: {extra['regions']} regions, {extra['engine_calls']} engine calls at "
                         f"{extra['engine_size']}, {extra['overhead_ms_per_region']} ms/region outside the engine")
        if "backend" in extra:
            notes.append(f"{extra['backend']}{' fullgraph' if extra.get('fullgraph') else ''}, "
                         f"compile+warm-up {_fmt(extra.get('compile_s'), 1)} s")
        rows.append("| " + " | ".join([
            date, device, name, m.get("dtype", ""), "on" if m.get("controlnet") else "off",
            _fmt(m["s_image"]), _fmt(m["s_step"], 4), _fmt(m.get("denoise_s_step"), 4), _fmt(m.get("tflops"), 1),
            _fmt(m.get("peak_vram_gib"), 2), _fmt(m.get("host_rss_peak_gib"), 2), str(m["runs"]),
            f"{summary['size']}² {summary['steps']} steps" + ("; " + "; ".join(notes) if notes else ""),
        ]) + " |")
    return rows


def record(summary: dict[str, Any], path: Path) -> int:
    """Insert the rows before the GPU (or CPU/tiny) end marker of RESULTS.md. Returns the row count."""
    rows = result_rows(summary)
    marker = CPU_ROWS_END if summary.get("mode") == "tiny" else GPU_ROWS_END
    text = path.read_text(encoding="utf-8")
    if marker not in text:
        raise SystemExit(f"{path} has no {marker} line: cannot place the rows")
    text = text.replace(marker, "\n".join(rows + [marker]) if rows else marker, 1)
    path.write_text(text, encoding="utf-8")
    return len(rows)


# ------------------------------------------------------------------------------------------------
# main
# ------------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tiny", action="store_true", help="CPU check with the tiny FLUX set (no CUDA needed)")
    p.add_argument("--size", type=int, default=None, help="image side (default 1024; tiny: 128)")
    p.add_argument("--steps", type=int, default=None, help="denoising steps (default 28; tiny: 4)")
    p.add_argument("--runs", type=int, default=3, help="timed runs per method after one warm-up (median)")
    p.add_argument("--budget-s", type=float, default=360.0, help="total seconds; what no longer fits is skipped")
    p.add_argument("--margin-s", type=float, default=15.0, help="seconds kept back for the summary")
    p.add_argument("--only", default="", help=f"comma list of methods to run, from: {','.join(METHODS)}")
    p.add_argument("--controlnet", choices=("pro2", "instantx"), default="pro2", help="ControlNet config")
    p.add_argument("--speedup-controlnet", choices=("on", "off"), default="off",
                   help="ControlNet during fbc/compile/fp8 (off: comparable with the diffusers anchors)")
    p.add_argument("--fbc-threshold", type=float, default=0.08, help="first-block cache threshold (ParaAttention's FLUX value)")
    p.add_argument("--compile-backend", default=None, help="torch.compile backend (default: inductor on CUDA, eager on CPU)")
    p.add_argument("--compile-estimate-s", type=float, default=None, help="expected compile time for budgeting")
    p.add_argument("--card-runs", type=int, default=1,
                   help="timed runs for the 12 and 24 GB cards (the 16 GB one gets --runs)")
    p.add_argument("--card-reserve-gb", type=float, default=1.0,
                   help="GiB of an emulated card not available to the allocator (CUDA context, desktop)")
    p.add_argument("--json-out", type=Path, default=None, help="also write the JSON summary here")
    p.add_argument("--record", action="store_true", help="append the measured rows to --results")
    p.add_argument("--record-from", type=Path, default=None, help="append the rows of a saved JSON summary; run nothing")
    p.add_argument("--results", type=Path, default=RESULTS_MD, help="the RESULTS.md to append to")
    args = p.parse_args(argv)
    args.size = args.size or (128 if args.tiny else 1024)
    args.steps = args.steps or (4 if args.tiny else 28)
    if args.compile_estimate_s is None:
        args.compile_estimate_s = 20.0 if args.tiny else 90.0
    return args


def main(argv: list[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else list(argv)
    if "--engine" in given or any(a.startswith("--engine=") for a in given):
        # issue 23: the FLUX.2 [klein] / Qwen-Image-Edit rows (benchmarks/gpu_commercial.py)
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import gpu_commercial

        return gpu_commercial.main(given)
    args = parse_args(argv)
    if args.record_from is not None:
        summary = json.loads(args.record_from.read_text(encoding="utf-8"))
        n = record(summary, args.results)
        print(f"appended {n} rows from {args.record_from} to {args.results}")
        return 0
    clock = Clock(args.budget_s)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    only = {m.strip() for m in args.only.split(",") if m.strip()}
    unknown = only - set(METHODS)
    if unknown:
        raise SystemExit(f"unknown methods {sorted(unknown)}; choose from {', '.join(METHODS)}")

    from studio.runtime.compat import ensure_torchvision

    ensure_torchvision()
    import diffusers
    import torch
    from diffusers.utils import logging as dlog

    dlog.set_verbosity_error()
    cuda = torch.cuda.is_available() and not args.tiny
    date = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d")
    meta: dict[str, Any] = {"mode": "tiny" if args.tiny else "full", "date": date, "size": args.size,
                            "steps": args.steps, "runs": args.runs, "torch": str(torch.__version__),
                            "diffusers": diffusers.__version__}
    if not args.tiny and not cuda:
        meta["device"] = "CPU"
        print(json.dumps({"bench": "gpu", **meta, "ok": False,
                          "error": "no CUDA device: run on a lent GPU, or pass --tiny for the CPU check"}))
        return 2
    args.device_name = "cuda" if cuda else "cpu"
    dtype = torch.bfloat16 if cuda else torch.float32
    meta["device"] = torch.cuda.get_device_name(0) if cuda else "CPU"
    if cuda:
        meta["vram_gib"] = round(torch.cuda.get_device_properties(0).total_memory / GIB, 1)
    clock.say(f"{meta['device']}, torch {meta['torch']}, diffusers {meta['diffusers']}, "
              f"{'tiny set' if args.tiny else 'full size'}, {args.size}x{args.size}, {args.steps} steps, "
              f"budget {args.budget_s:.0f} s")

    with RssPeak() as rss:
        parts = build_parts(args.tiny, args.device_name, dtype, args.controlnet)
    if cuda:
        torch.cuda.synchronize()
    sizes = {k: _sig(sum(p.numel() for p in v.parameters()) / 1e6) for k, v in parts.items()
             if hasattr(v, "parameters")}
    meta["params_m"] = sizes
    meta["build_s"] = round(clock.elapsed, 1)
    clock.say(f"parts built ({', '.join(f'{k} {v}M' for k, v in sizes.items())}), host RSS peak {rss.gib} GiB")

    from studio.engines.tiny import MAX_SEQUENCE_LENGTH

    seq = MAX_SEQUENCE_LENGTH if args.tiny else 512
    tcfg = {k: parts["transformer"].config[k] for k in ("num_attention_heads", "attention_head_dim", "num_layers",
                                                        "num_single_layers", "in_channels", "joint_attention_dim",
                                                        "out_channels")}
    ccfg = {k: parts["controlnet"].config[k] for k in ("num_attention_heads", "attention_head_dim", "num_layers",
                                                       "num_single_layers", "in_channels", "joint_attention_dim")}
    vsf = 2 ** (len(parts["vae"].config.block_out_channels) - 1)
    img_tokens = (args.size // (vsf * 2)) ** 2
    b = Bench(args=args, clock=clock, torch=torch, cuda=cuda, dtype=dtype, size=args.size, steps=args.steps,
              flops_t=flux_flops(tcfg, img_tokens, seq), flops_cn=flux_flops(ccfg, img_tokens, seq, controlnet=True),
              meta=meta, controlnet=parts.get("controlnet"))
    meta["tokens"] = {"image": img_tokens, "text": seq}
    clock.say(f"FLOPs per step: transformer {b.flops_t / 1e12:.2f} T (issue floor ~{ISSUE_FLOOR_TFLOP_PER_STEP:.0f} T), "
              f"ControlNet {b.flops_cn / 1e12:.2f} T")

    engine_kwargs: dict[str, Any] = {"max_sequence_length": seq}
    if not cuda:
        engine_kwargs["device"] = "cpu"
    run_methods(b, parts, engine_kwargs, only)
    for m in METHODS:  # anything not reached is said so
        if m not in b.results and (not only or m in only):
            b.results[m] = Result(m, "skipped", reason="not reached")

    import resource

    meta["host_rss_max_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB, 2)
    summary = summarise(b, meta)
    for name, res in b.results.items():
        fig = f"{res.s_image:.3f} s/image" if res.s_image is not None else res.status
        tf = f", {res.tflops} TFLOP/s" if res.tflops is not None else ""
        if res.tflops is not None and "H200" in meta["device"]:
            tf += f" ({res.tflops / 790 * 100:.0f}% of the ~790 TFLOP/s a bf16 matmul reaches on an H200)"
        clock.say(f"summary {name:18s} {fig}{tf}{' — ' + res.reason if res.reason else ''}")
    b.save()
    if args.record:
        clock.say(f"recorded {record(summary, args.results)} rows in {args.results}")
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
