"""Device detection and memory plans for the FLUX engines.

A plan is data (`MemoryPlan`) chosen from the detected VRAM, overridable from the settings or the
Models tab, and applied to a pipeline with one function (`apply_plan`). Plans, heaviest first:

- ``gpu``: every component resident on the GPU (fastest);
- ``model_offload``: one whole model on the GPU at a time (the ControlNet stays with the transformer);
- ``group_offload``: groups of layers streamed to the GPU on a side CUDA stream, overlapping copies
  with compute;
- ``sequential_offload``: one layer at a time, the last resort;
- ``cpu``: no CUDA at all (tests, the tiny engine).

Nothing here imports torch at module level: the Models tab calls `choose_plan` / `plan_table`
at start-up without paying for torch.
"""

from __future__ import annotations

import gc
import logging
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from studio.errors import StudioError

log = logging.getLogger(__name__)

PlanName = Literal["gpu", "model_offload", "group_offload", "sequential_offload", "cpu"]
PLAN_ORDER: tuple[str, ...] = ("gpu", "model_offload", "group_offload", "sequential_offload")
QUANTIZE_CHOICES: tuple[str, ...] = ("none", "8bit", "4bit")

# Footprints in GB (bf16 unless quantised) of the FLUX.1 Fill stack at 1024x1024.
# Sizes are decimal GB (10**9 bytes), as the files weigh (bf16): the real checkpoints' tensors
# summed (tests/real_layouts.py). Card and RAM sizes (`detect_device`, `system_ram_gb`) are GiB,
# as cards are named ("24 GB" = 24 GiB): compare through `gib()`.
TRANSFORMER_GB: dict[str, float] = {"none": 23.8, "8bit": 12.6, "4bit": 6.9}
CONTROLNET_GB = 4.28         # Union Pro 2.0, 6 double blocks (InstantX Union: 6.6)
T5_GB = 9.52                 # T5-XXL encoder, 2 shards
CLIP_VAE_GB = 0.41           # CLIP-L text encoder 0.246 + VAE 0.168
ACTIVATIONS_GB = 3.0         # attention + VAE decode at 1024x1024, one image
GROUP_OFFLOAD_MIN_GB = 10.0  # two streamed groups + activations + VAE decode
TILING_BELOW_GB = 16.0
# Host RAM a load needs: the bf16 weights pass through system memory before they reach the GPU
# (and stay there under the offload plans): transformer + ControlNet + T5 + CLIP/VAE (~38 GB
# unquantised; 8/4-bit shrink the transformer only).
HOST_OVERHEAD_GB = 0.0


def gib(gb: float) -> float:
    """Decimal GB (file sizes) -> GiB (what cards and RAM are measured in here)."""
    return gb * 1e9 / 1024**3


@dataclass(frozen=True)
class EngineProfile:
    """What one engine's pipeline weighs (decimal GB, bf16 unless quantised) at 1024x1024.

    `transformer_gb` per quantisation ("none", "fp8" = layerwise fp8 storage, "8bit", "4bit");
    `resident_gb` what stays with the transformer under model offload (a ControlNet);
    `encoder_gb` the text encoder(s), `vae_gb` the VAE. Quantisations the model does not allow
    are absent. The FLUX Fill profile is the plan table's historical default."""

    name: str
    transformer_gb: dict
    encoder_gb: float
    vae_gb: float
    activations_gb: float = 3.0
    resident_gb: float = 0.0

    def allows(self, quantize: str) -> bool:
        return quantize in self.transformer_gb

    def host_ram_gb(self, quantize: str = "none") -> float:
        q = quantize if self.allows(quantize) else "none"
        return round(self.transformer_gb[q] + self.resident_gb + self.encoder_gb + self.vae_gb, 1)


def host_ram_needed_gb(quantize: str = "none") -> float:
    return round(TRANSFORMER_GB[quantize] + CONTROLNET_GB + T5_GB + CLIP_VAE_GB + HOST_OVERHEAD_GB, 1)


def system_ram_gb() -> float | None:
    """Total system memory in GB (None when it cannot be read)."""
    try:
        import psutil
    except ImportError:
        psutil = None  # type: ignore[assignment]
    if psutil is not None:
        return round(psutil.virtual_memory().total / 1024**3, 1)
    try:
        import os

        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 1)
    except (ValueError, OSError, AttributeError):
        return None


@dataclass(frozen=True)
class DeviceInfo:
    name: str
    cuda: bool
    vram_gb: float | None
    torch_version: str
    index: int = 0

    @property
    def device(self) -> str:
        return f"cuda:{self.index}" if self.cuda else "cpu"


@dataclass(frozen=True)
class MemoryPlan:
    name: str
    vae_tiling: bool = False
    vae_slicing: bool = False
    quantize: str = "none"
    # (message key, ((field, value), ...)) per note: words come from the text table when shown
    note_items: tuple[tuple[str, tuple[tuple[str, object], ...]], ...] = field(default=(), compare=False)
    ram_short: bool = field(default=False, compare=False)  # host RAM below what the load needs
    ram_gb: float | None = field(default=None, compare=False)

    def label(self, lang: str = "ko") -> str:
        from studio.i18n import t

        return t(f"memory.plan.{self.name}", lang)

    def notes(self, lang: str = "ko") -> tuple[str, ...]:
        from studio.i18n import t

        return tuple(t(key, lang, **dict(fields)) for key, fields in self.note_items)

    @property
    def note_keys(self) -> tuple[str, ...]:
        return tuple(key for key, _ in self.note_items)

    @property
    def notes_ko(self) -> tuple[str, ...]:
        return self.notes("ko")

    @property
    def notes_en(self) -> tuple[str, ...]:
        return self.notes("en")


def detect_device() -> DeviceInfo:
    """The first CUDA device, or the CPU. Imports torch (call lazily)."""
    import torch

    version = str(torch.__version__)
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return DeviceInfo(name=str(props.name), cuda=True, vram_gb=round(props.total_memory / 1024**3, 1),
                          torch_version=version)
    return DeviceInfo(name="CPU", cuda=False, vram_gb=None, torch_version=version)


def _make(name: str, quantize: str, notes: list[tuple[str, dict]], vram_gb: float | None,
          ram_gb: float | None = None, ram_short: bool = False) -> MemoryPlan:
    tiling = name != "cpu" and (name != "gpu" or vram_gb is None or vram_gb < TILING_BELOW_GB)
    if tiling:
        notes = notes + [("memory.note.tiling", {})]
    items = tuple((key, tuple(sorted(fields.items()))) for key, fields in notes)
    return MemoryPlan(name=name, vae_tiling=tiling, vae_slicing=tiling, quantize=quantize, note_items=items,
                      ram_short=ram_short, ram_gb=ram_gb)


def _quantize_for_ram(ram_gb: float, quantize: str, can_quantize: bool) -> tuple[str, bool]:
    """The lightest quantisation that fits host RAM (8-bit, then 4-bit), and whether RAM is still short."""
    if ram_gb >= gib(host_ram_needed_gb(quantize)):
        return quantize, False
    if can_quantize:
        for q in QUANTIZE_CHOICES[QUANTIZE_CHOICES.index(quantize) + 1:]:
            if ram_gb >= gib(host_ram_needed_gb(q)):
                return q, False
        return "4bit", True
    return quantize, True


def _bitsandbytes_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("bitsandbytes") is not None


def _cpu_plan(override: str, vram_gb: float | None, cuda: bool | None) -> MemoryPlan | None:
    """Checks the override's name; the "cpu" plan when there is no CUDA card (None otherwise)."""
    if override not in ("auto", *PLAN_ORDER, "cpu"):
        raise StudioError("memory.bad_plan", plan=override)
    if cuda is None:
        cuda = vram_gb is not None
    return None if cuda else _make("cpu", "none", [], vram_gb)


def _fixed_plan(override: str, quantize: str, notes: list[tuple[str, dict]], vram_gb: float | None,
                ram_gb: float | None, ram_short: bool) -> MemoryPlan | None:
    """Notes the quantisation (in `notes`); the plan when the owner forced one, or the safest when
    the card's size is unknown; None when the card's size decides."""
    if quantize != "none":
        notes.append(("memory.note.quant", {"quantize": quantize}))
    if override != "auto":
        return _make(override, quantize, notes + [("memory.note.forced", {"plan": override})], vram_gb,
                     ram_gb, ram_short)
    if vram_gb is None:
        return _make("sequential_offload", quantize, notes + [("memory.note.unknown_vram", {})], vram_gb,
                     ram_gb, ram_short)
    return None


def choose_plan(vram_gb: float | None, override: str = "auto", quantize: str = "none",
                cuda: bool | None = None, ram_gb: float | None = None,
                can_quantize: bool | None = None) -> MemoryPlan:
    """The plan for a CUDA card with `vram_gb` GB and `ram_gb` GB of system memory.

    `vram_gb=None` means no CUDA device (what `detect_device()` reports on a CPU-only PC) and
    gives the "cpu" plan, unless `cuda=True` says a card is there but its size is unknown (then the
    safest offload plan). `override` forces a plan by name ("auto" chooses). With less host RAM
    than an unquantised load needs (~38 GB), the transformer is loaded 8- or 4-bit when
    bitsandbytes is there; otherwise the plan says, before loading, that memory is short.
    """
    if quantize not in QUANTIZE_CHOICES:
        quantize = "none"
    cpu = _cpu_plan(override, vram_gb, cuda)
    if cpu is not None:
        return cpu
    notes: list[tuple[str, dict]] = []
    ram_short = False
    if ram_gb is not None:
        need = host_ram_needed_gb(quantize)
        chosen, ram_short = _quantize_for_ram(
            ram_gb, quantize, _bitsandbytes_installed() if can_quantize is None else can_quantize)
        if chosen != quantize:
            notes.append(("memory.note.ram_quant", {"ram": ram_gb, "need": need, "quantize": chosen}))
            quantize = chosen
        if ram_short:
            notes.append(("memory.note.ram_short", {"ram": ram_gb, "need": host_ram_needed_gb(quantize)}))
    fixed = _fixed_plan(override, quantize, notes, vram_gb, ram_gb, ram_short)
    if fixed is not None:
        return fixed
    transformer = TRANSFORMER_GB[quantize]
    if vram_gb >= gib(transformer + CONTROLNET_GB + T5_GB + CLIP_VAE_GB + ACTIVATIONS_GB):
        name = "gpu"
    elif vram_gb >= gib(transformer + CONTROLNET_GB + ACTIVATIONS_GB):
        name = "model_offload"
    elif quantize != "none":
        # bitsandbytes weights cannot be streamed layer by layer: model offload is the lightest.
        name = "model_offload"
        notes.append(("memory.note.quant_offload", {}))
    elif vram_gb >= GROUP_OFFLOAD_MIN_GB:
        name = "group_offload"
    else:
        name = "sequential_offload"
    return _make(name, quantize, notes, vram_gb, ram_gb, ram_short)


# ---- per-engine profiles (issue 23) ----------------------------------------------------------
# Sizes are the bf16 tensors of the real checkpoints, summed from their published configs on the
# meta device (tests/real_layouts.py writes those layouts; test_engine_klein_qwen checks these
# numbers against them). fp8 = layerwise fp8 storage (half of bf16); 4-bit NF4 is ~0.28 of bf16
# (packed weights + the norms/embeddings bitsandbytes leaves in bf16).
FLUX_FILL_PROFILE = EngineProfile("flux", dict(TRANSFORMER_GB), T5_GB, CLIP_VAE_GB, ACTIVATIONS_GB,
                                  resident_gb=CONTROLNET_GB)
# FLUX.2 [klein] 4B: Flux2Transformer2DModel 5 + 20 blocks, 24 x 128 heads, joint dim 7680
# (3.876 B params); Qwen3-4B text encoder (4.02 B params, tied embeddings); AutoencoderKLFlux2 (84 M).
KLEIN_PROFILE = EngineProfile("klein", {"none": 7.75, "fp8": 3.88, "8bit": 4.1, "4bit": 2.2}, 8.04, 0.17, 3.0)
# Qwen-Image-Edit-2511: QwenImageTransformer2DModel 60 layers (20.43 B params, 40.86 GB, 5 shards);
# Qwen2.5-VL-7B text encoder 16.58 GB; AutoencoderKLQwenImage 0.25 GB. Activations are larger:
# the reference images' latents join the sequence.
QWEN_EDIT_PROFILE = EngineProfile("qwen-edit", {"none": 40.86, "fp8": 20.43, "8bit": 21.6, "4bit": 11.5}, 16.58,
                                  0.25, 4.0)
PROFILES: dict[str, EngineProfile] = {p.name: p for p in (FLUX_FILL_PROFILE, KLEIN_PROFILE, QWEN_EDIT_PROFILE)}
ENGINE_PLAN_SIZES: tuple[int, ...] = (8, 12, 16, 24, 80)


def choose_plan_for(profile: EngineProfile, vram_gb: float | None, override: str = "auto", quantize: str = "none",
                    cuda: bool | None = None, ram_gb: float | None = None,
                    can_quantize: bool | None = None) -> MemoryPlan:
    """`choose_plan` for one engine's profile. Heaviest first: everything on the GPU; model
    offload; model offload with the transformer stored in fp8 layer by layer (compute stays
    bf16); model offload with a 4-bit transformer (bitsandbytes, when installed and the model
    allows it); group offload; sequential offload."""
    if profile is FLUX_FILL_PROFILE:
        return choose_plan(vram_gb, override, quantize, cuda, ram_gb, can_quantize)
    if quantize not in QUANTIZE_CHOICES or not profile.allows(quantize):
        quantize = "none"
    cpu = _cpu_plan(override, vram_gb, cuda)
    if cpu is not None:
        return cpu
    bnb = _bitsandbytes_installed() if can_quantize is None else can_quantize
    notes: list[tuple[str, dict]] = []
    ram_short = False
    if ram_gb is not None and ram_gb < gib(profile.host_ram_gb(quantize)):
        for q in ("8bit", "4bit") if bnb else ():
            if profile.allows(q) and QUANTIZE_CHOICES.index(q) > QUANTIZE_CHOICES.index(quantize) \
                    and ram_gb >= gib(profile.host_ram_gb(q)):
                notes.append(("memory.note.ram_quant", {"ram": ram_gb, "need": profile.host_ram_gb(quantize),
                                                        "quantize": q}))
                quantize = q
                break
        else:
            ram_short = True
            notes.append(("memory.note.ram_short", {"ram": ram_gb, "need": profile.host_ram_gb(quantize)}))
    fixed = _fixed_plan(override, quantize, notes, vram_gb, ram_gb, ram_short)
    if fixed is not None:
        return fixed
    t = profile.transformer_gb
    rest = profile.resident_gb + profile.activations_gb
    if vram_gb >= gib(t[quantize] + rest + profile.encoder_gb + profile.vae_gb):
        name = "gpu"
    elif vram_gb >= gib(t[quantize] + rest):
        name = "model_offload"
    elif quantize != "none":
        name = "model_offload"
        notes.append(("memory.note.quant_offload", {}))
    elif profile.allows("fp8") and vram_gb >= gib(t["fp8"] + rest):
        name, quantize = "model_offload", "fp8"
        notes.append(("memory.note.fp8", {}))
    elif bnb and profile.allows("4bit") and vram_gb >= gib(t["4bit"] + rest):
        name, quantize = "model_offload", "4bit"
        notes.append(("memory.note.quant", {"quantize": "4bit"}))
    elif vram_gb >= GROUP_OFFLOAD_MIN_GB:
        name = "group_offload"
    else:
        name = "sequential_offload"
    return _make(name, quantize, notes, vram_gb, ram_gb, ram_short)


def engine_plan_table(profile: EngineProfile | str, sizes: tuple[int, ...] = ENGINE_PLAN_SIZES,
                      can_quantize: bool | None = None) -> list[tuple[int, MemoryPlan]]:
    """One engine's plan for each card size (the Models tab, the benchmark and the tests)."""
    prof = PROFILES[profile] if isinstance(profile, str) else profile
    return [(size, choose_plan_for(prof, float(size), "auto", "none", cuda=True, can_quantize=can_quantize))
            for size in sizes]


def plan_table(sizes: tuple[int, ...] = (8, 12, 16, 24, 48, 80), quantize: str = "none") -> list[tuple[int, MemoryPlan]]:
    """The plan chosen for each card size (the Models tab and the benchmark print this)."""
    return [(size, choose_plan(float(size), "auto", quantize, cuda=True)) for size in sizes]


def ram_notice(plan: MemoryPlan) -> Any:
    """A notice for the owner when host RAM is short of what the plan's load needs (None if fine)."""
    if not plan.ram_short or plan.ram_gb is None:
        return None
    from studio.schema import Notice

    return Notice("memory.note.ram_short", {"ram": plan.ram_gb, "need": host_ram_needed_gb(plan.quantize)})


def lighter_plans(plan: MemoryPlan) -> list[MemoryPlan]:
    """The OOM ladder: the plans after `plan`, lighter each time (same quantisation)."""
    if plan.name not in PLAN_ORDER:
        return []
    start = PLAN_ORDER.index(plan.name) + 1
    names = [n for n in PLAN_ORDER[start:] if not (plan.quantize in ("8bit", "4bit") and n in ("group_offload", "sequential_offload"))]
    return [replace(plan, name=n, vae_tiling=True, vae_slicing=True) for n in names]


def require_quantization_support(quantize: str, cuda: bool) -> None:
    """Raise a clear StudioError when 8/4-bit is asked for where it cannot work."""
    if quantize == "none":
        return
    if not cuda:
        raise StudioError("memory.quantize_needs_gpu")
    if quantize == "fp8":  # layerwise casting is plain torch: no bitsandbytes needed
        return
    import importlib.util

    if importlib.util.find_spec("bitsandbytes") is None:
        raise StudioError("memory.bitsandbytes_missing")


def quantization_config(quantize: str, cuda: bool) -> Any:
    """A diffusers `BitsAndBytesConfig` for the transformer, or None. bitsandbytes is imported lazily."""
    require_quantization_support(quantize, cuda)
    if quantize in ("none", "fp8"):  # fp8: applied as layerwise casting in `apply_plan`
        return None
    import torch
    from diffusers import BitsAndBytesConfig

    if quantize == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16)


def apply_plan(pipe: Any, plan: MemoryPlan, device: Any) -> None:
    """Place a diffusers pipeline's components according to `plan`.

    On a CPU `device` every plan degrades to "everything on the CPU" (offload needs an accelerator,
    and VAE tiling only saves VRAM), so a plan's name can be exercised in CPU tests.
    """
    import torch

    device = torch.device(device)
    if device.type == "cpu" or plan.name == "cpu":
        pipe.to("cpu")
        for module in getattr(pipe, "components", {}).values():
            if module is not None and hasattr(module, "parameters"):
                own_weights(module)
    elif plan.name == "gpu":
        pipe.to(device)
    elif plan.name == "model_offload":
        pipe.enable_model_cpu_offload(device=device)
    elif plan.name == "group_offload":
        pipe.enable_group_offload(onload_device=device, offload_device=torch.device("cpu"),
                                  offload_type="leaf_level", use_stream=True)
    elif plan.name == "sequential_offload":
        pipe.enable_sequential_cpu_offload(device=device)
    else:
        raise StudioError("memory.bad_plan", plan=plan.name)
    transformer = getattr(pipe, "transformer", None)
    if plan.quantize == "fp8" and device.type != "cpu" and transformer is not None \
            and not getattr(transformer, "_studio_fp8", False):
        transformer.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=torch.bfloat16)
        transformer._studio_fp8 = True
    vae = getattr(pipe, "vae", None)
    if vae is not None and device.type != "cpu":
        (vae.enable_tiling if plan.vae_tiling else vae.disable_tiling)()
        (vae.enable_slicing if plan.vae_slicing else vae.disable_slicing)()
    log.info("memory plan %s applied on %s (tiling=%s)", plan.name, device, plan.vae_tiling)


def release_plan(pipe: Any, free: bool = True) -> list[str]:
    """Undo any offload hooks and bring every component back to the CPU.

    Returns the names of components that could not be moved (left half-moved by an error, or
    quantised weights that cannot leave the GPU): the caller must evict and reload them.
    """
    stuck: list[str] = []
    try:
        pipe.remove_all_hooks()
    except (RuntimeError, AttributeError, ValueError) as exc:
        log.warning("removing offload hooks failed: %s", exc)
    for name, module in list(getattr(pipe, "components", {}).items()):
        if module is None or not hasattr(module, "parameters"):
            continue
        try:
            _remove_group_offload(module)
            module.to("cpu")
        except (RuntimeError, ValueError, TypeError, NotImplementedError) as exc:
            log.warning("component %s could not be moved back to the CPU (%s); evicting it", name, exc)
            stuck.append(name)
    if free:
        free_memory()
    return stuck


def _remove_group_offload(module: Any) -> None:
    registry = getattr(module, "_diffusers_hook", None)
    if registry is None:
        return
    for hook_name in ("group_offloading", "layer_execution_tracker", "lazy_prefetch_group_offloading"):
        registry.remove_hook(hook_name, recurse=True)


def own_weights(module: Any, align: int = 64) -> int:
    """Copy parameters and buffers that sit at unaligned addresses (tensors memory-mapped from a
    safetensors file at arbitrary offsets) into freshly allocated memory. CPU kernels pick other
    SIMD paths for unaligned data, so the same weights computed in place from the file mapping
    and from owned memory differ in the last bits (and now and then by one pixel level). Used on
    the CPU plan, where weights are computed where they lie. Returns how many tensors were copied."""
    import torch

    copied = 0
    with torch.no_grad():
        for sub in module.modules():
            for name, p in list(sub._parameters.items()):
                if p is not None and p.device.type == "cpu" and p.data_ptr() % align:
                    p.data = p.data.clone()
                    copied += 1
            for name, b in list(sub._buffers.items()):
                if b is not None and b.device.type == "cpu" and b.data_ptr() % align:
                    sub._buffers[name] = b.clone()
                    copied += 1
    return copied


def free_memory() -> None:
    """Give freed memory back: a full garbage collection and the CUDA cache when there is a card.
    Without CUDA, reference counting has already freed the tensors; a young-generation pass is
    enough (a full pass over the torch/diffusers heap costs seconds on a busy CPU)."""
    try:
        import torch
    except ImportError:
        gc.collect()
        return
    if torch.cuda.is_available():
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.ipc_collect()
    else:
        gc.collect(0)


def unload_ollama(host: str, model: str, timeout: float = 3.0) -> bool:
    """Ask a running Ollama to drop `model` from VRAM (keep_alive=0). False if it is not reachable."""
    try:
        import httpx
        import ollama
    except ImportError:
        return False
    try:
        client = ollama.Client(host=host, timeout=timeout)
        client.generate(model=model, prompt="", keep_alive=0)
    except (ollama.ResponseError, httpx.HTTPError, ConnectionError, OSError, TimeoutError) as exc:
        log.info("ollama at %s did not unload %s (%s: %s)", host, model, type(exc).__name__, exc)
        return False
    log.info("asked ollama at %s to unload %s", host, model)
    return True


def should_unload_ollama(plan: MemoryPlan, vram_gb: float | None) -> bool:
    """Small cards (anything below the all-on-GPU plan) free the LLM's VRAM before a big load."""
    return plan.name in ("model_offload", "group_offload", "sequential_offload") and vram_gb is not None
