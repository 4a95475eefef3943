"""The `flux` engine: FLUX.1 Fill [dev] inpainting steered by a FLUX Union ControlNet (pose).

`FluxFillEngine` implements `studio.engines.base.Engine`. It is cheap to construct; the weights
load on the first `inpaint` (or `load()`), either from `models/` through `studio.runtime.weights`
(the same loader the tiny test set goes through) or from parts handed in with `from_parts` (the
GPU benchmark builds full-size random parts that way).

One `inpaint` call:
1. `check_job` validates the job before any compute (sizes are multiples of 16, mask and image
   sizes match, mask convention 255 = regenerate / 0 = keep, ranges of steps/scale/start/end);
2. the pipeline loads lazily and is placed by the memory plan;
3. the denoising loop reports progress every step and checks the cancel token in
   `callback_on_step_end` (a cancel stops the job within one step);
4. out of memory: free memory, evict what was left half-moved, retry with the next lighter
   memory plan, then at a lower resolution (upscaled back; the notice says so);
5. the kept pixels (mask 0) are pasted back from the input, so they come out identical.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
from PIL import Image

from studio.engines.base import EngineCaps, InpaintJob
from studio.errors import CancelledError, InputError, StudioError, WeightsError
from studio.i18n import t
from studio.runtime.jobs import CancelToken, ProgressFn, no_progress
from studio.runtime.memory import MemoryPlan

if TYPE_CHECKING:
    from studio.config import Settings
    from studio.runtime.weights import ComponentCache

log = logging.getLogger(__name__)

SIZE_MULTIPLE = 16
MIN_SIZE = 64
MAX_SIZE = 2048
MAX_IMAGES = 8
LOWER_RES_FACTORS: tuple[float, ...] = (0.75, 0.5)


@dataclass(frozen=True)
class Notice:
    """Something the owner should know about a finished job (shown next to the result)."""

    key: str
    fields: dict = field(default_factory=dict)

    def message(self, lang: str = "ko") -> str:
        return t(self.key, lang, **self.fields)

    def as_dict(self) -> dict:
        return {"key": self.key, "fields": dict(self.fields), "ko": self.message("ko"), "en": self.message("en")}


AllocHook = Callable[["MemoryPlan", int, int], None]


def _check_range(name: str, value: float, lo: float, hi: float) -> None:
    if not (lo <= value <= hi):
        raise InputError("engine.bad_param", name=name, value=value, allowed=f"{lo}..{hi}")


def check_job(job: InpaintJob) -> None:
    """Validate an inpaint job before any model is touched (diffusers' check_inputs habit)."""
    if job.image is None or job.mask is None:
        raise InputError("image.missing")
    w, h = job.width, job.height
    if w % SIZE_MULTIPLE or h % SIZE_MULTIPLE or not (MIN_SIZE <= w <= MAX_SIZE and MIN_SIZE <= h <= MAX_SIZE):
        raise InputError("engine.bad_size", mult=SIZE_MULTIPLE, min=MIN_SIZE, max=MAX_SIZE, w=w, h=h)
    iw, ih = job.image.size
    if job.mask.size != job.image.size:
        raise InputError("engine.mask_size", mw=job.mask.size[0], mh=job.mask.size[1], w=iw, h=ih)
    if job.control_image is not None and job.control_image.size != job.image.size:
        raise InputError("engine.control_size", cw=job.control_image.size[0], ch=job.control_image.size[1], w=iw, h=ih)
    _check_range("steps", job.steps, 1, 200)
    _check_range("num_images", job.num_images, 1, MAX_IMAGES)
    _check_range("guidance", job.guidance, 0.0, 100.0)
    _check_range("controlnet_scale", job.controlnet_scale, 0.0, 2.0)
    _check_range("control_start", job.control_start, 0.0, 1.0)
    _check_range("control_end", job.control_end, job.control_start, 1.0)
    if not isinstance(job.prompt, str):
        raise InputError("engine.bad_param", name="prompt", value=type(job.prompt).__name__, allowed="str")
    mask = np.asarray(job.mask.convert("L"))
    if not (mask >= 128).any():  # the pipeline binarises at 0.5
        raise InputError("engine.mask_empty")


def _fit(img: Image.Image, size: tuple[int, int], resample: int) -> Image.Image:
    return img if img.size == size else img.resize(size, resample)


def paste_back(generated: Image.Image, original: Image.Image, mask: Image.Image) -> Image.Image:
    """Keep the owner's pixels where the mask is 0 (exactly), the generated ones where it is 255."""
    gen = np.asarray(generated.convert("RGB"), dtype=np.float32)
    orig = np.asarray(original.convert("RGB"), dtype=np.float32)
    m = np.asarray(mask.convert("L"), dtype=np.float32)[..., None] / 255.0
    out = orig * (1.0 - m) + gen * m
    return Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8), "RGB")


class FluxFillEngine:
    """FLUX.1 Fill + optional FLUX ControlNet, loaded lazily, with memory plans and an OOM ladder."""

    name = "flux"
    caps = EngineCaps(inpaint=True, changes_outfit=True, uses_pose_control=True, text2image=False,
                      needs_gpu=True, needs_weights=True)

    def __init__(
        self,
        models_dir: Path | None = None,
        *,
        parts: dict[str, Any] | None = None,
        device: str | None = None,
        dtype: Any = None,
        memory_plan: str = "auto",
        quantize: str = "none",
        cache: "ComponentCache | None" = None,
        alloc_hook: AllocHook | None = None,
        ollama_host: str | None = None,
        ollama_model: str | None = None,
        max_sequence_length: int = 512,
        paste_back: bool = True,
        lower_res_factors: tuple[float, ...] = LOWER_RES_FACTORS,
        name: str = "flux",
    ) -> None:
        if models_dir is None and parts is None:
            raise ValueError("FluxFillEngine needs models_dir or parts")
        self.models_dir = Path(models_dir) if models_dir is not None else None
        self._parts = dict(parts) if parts is not None else None
        self._device_name = device
        self._dtype = dtype
        self.memory_plan = memory_plan
        self.quantize = quantize
        self._cache = cache
        self.alloc_hook = alloc_hook
        self.ollama_host = ollama_host
        self.ollama_model = ollama_model
        self.max_sequence_length = max_sequence_length
        self.paste_back = paste_back
        self.lower_res_factors = lower_res_factors
        self.name = name
        self._pipe: Any = None
        self._kept: dict[str, Any] = {}
        self._placed: "MemoryPlan | None" = None
        self.plan: "MemoryPlan | None" = None
        self.device_info: Any = None
        self.last_notices: list[Notice] = []
        self.last_plan: "MemoryPlan | None" = None
        self.last_size: tuple[int, int] | None = None
        self.load_notices: list[Notice] = []

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def from_settings(cls, settings: "Settings", **kwargs: Any) -> "FluxFillEngine":
        return cls(settings.models_dir, memory_plan=settings.memory_plan, quantize=settings.quantize,
                   ollama_host=settings.ollama_host, ollama_model=settings.ollama_model, **kwargs)

    @classmethod
    def from_parts(cls, *, transformer: Any, vae: Any, text_encoder: Any, tokenizer: Any, text_encoder_2: Any,
                   tokenizer_2: Any, scheduler: Any, controlnet: Any = None, **kwargs: Any) -> "FluxFillEngine":
        """An engine over already-built parts (full-size random ones for benchmarks, tiny ones for tests)."""
        parts = {"transformer": transformer, "vae": vae, "text_encoder": text_encoder, "tokenizer": tokenizer,
                 "text_encoder_2": text_encoder_2, "tokenizer_2": tokenizer_2, "scheduler": scheduler,
                 "controlnet": controlnet}
        return cls(None, parts=parts, **kwargs)

    # ---- loading ------------------------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        return self._pipe is not None

    @property
    def pipeline(self) -> Any:
        """The loaded `FluxFillControlNetPipeline` (loads on first access)."""
        self.load()
        return self._pipe

    def _resolve_device(self) -> None:
        if self.device_info is not None:
            return
        import torch

        from studio.runtime.memory import DeviceInfo, choose_plan, detect_device

        info = detect_device()
        if self._device_name is not None and torch.device(self._device_name).type == "cpu":
            info = DeviceInfo(name="CPU", cuda=False, vram_gb=None, torch_version=info.torch_version)
        self.device_info = info
        if self._dtype is None:
            self._dtype = torch.bfloat16 if info.cuda else torch.float32
        self.plan = choose_plan(info.vram_gb, self.memory_plan if info.cuda else "auto", self.quantize,
                                cuda=info.cuda)

    @property
    def device(self) -> str:
        self._resolve_device()
        return self._device_name or self.device_info.device

    def load(self) -> None:
        if self._pipe is not None:
            return
        self._resolve_device()
        from studio.runtime.memory import quantization_config, should_unload_ollama, unload_ollama

        qconfig = quantization_config(self.quantize, self.device_info.cuda)  # raises clearly on CPU
        if self.ollama_host and self.ollama_model and should_unload_ollama(self.plan, self.device_info.vram_gb):
            unload_ollama(self.ollama_host, self.ollama_model)
        from studio.engines.flux_fill_pipeline import FluxFillControlNetPipeline

        parts = self._parts if self._parts is not None else self._load_parts(qconfig)
        self._pipe = FluxFillControlNetPipeline(**parts)
        self._pipe.set_progress_bar_config(disable=True)
        log.info("flux engine loaded (device=%s, dtype=%s, plan=%s, controlnet=%s)", self.device, self._dtype,
                 self.plan.name, parts.get("controlnet") is not None)

    def _load_parts(self, qconfig: Any) -> dict[str, Any]:
        from studio.runtime import weights as W

        models_dir = Path(self.models_dir or ".")
        fill = models_dir / W.FLUX_FILL_DIR
        single = W.fill_single_file(models_dir)
        required = ("scheduler", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2")
        W.validate_pipeline_folder(fill, "FLUX.1 Fill [dev]", required if single else required + ("transformer",))
        cache = self._cache if self._cache is not None else W.SHARED
        kept, self._kept = self._kept, {}  # healthy parts surviving an eviction are not reloaded
        parts = W.load_shared_components(models_dir, fill, self._dtype, "cpu", cache)
        parts["scheduler"] = W.load_scheduler(fill, "FLUX.1 Fill [dev]")
        if "transformer" in kept:
            parts["transformer"] = kept["transformer"]
        else:
            use_single = single is not None and not W.has_component(fill, "transformer")
            parts["transformer"] = W.load_transformer(fill, self._dtype, qconfig, "FLUX.1 Fill [dev]",
                                                      single_file=single if use_single else None)
        cn_dir = W.find_controlnet_dir(models_dir)
        if "controlnet" in kept:
            parts["controlnet"] = kept["controlnet"]
        else:
            parts["controlnet"] = W.load_controlnet(cn_dir, self._dtype, "FLUX ControlNet Union") if cn_dir else None
        if cn_dir is None:
            self.load_notices = [Notice("engine.notice.no_controlnet")]
        return parts

    def close(self) -> None:
        """Free the pipeline (switching engines frees the old one first)."""
        from studio.runtime.memory import free_memory, release_plan

        if self._pipe is not None:
            release_plan(self._pipe)
        self._pipe = None
        self._placed = None
        free_memory()

    # ---- placement and OOM recovery -----------------------------------------------------------
    def _place(self, plan: "MemoryPlan") -> None:
        from studio.runtime.memory import apply_plan, release_plan

        owner_ok = all(getattr(m, "_studio_owner", None) is self for m in self._modules())
        if self._placed == plan and owner_ok:
            return
        if self._placed is not None or not owner_ok:
            self._evict(release_plan(self._pipe))
        apply_plan(self._pipe, plan, self.device)
        for module in self._modules():
            module._studio_owner = self  # shared parts: the last engine to place them owns them
        self._placed = plan

    def _modules(self) -> list[Any]:
        comps = getattr(self._pipe, "components", {}) if self._pipe is not None else {}
        return [m for m in comps.values() if m is not None and hasattr(m, "parameters")]

    def _evict(self, stuck: list[str]) -> None:
        """Components that could not be moved back are dropped: the next job reloads them."""
        if not stuck:
            return
        from studio.runtime import weights as W

        cache = self._cache if self._cache is not None else W.SHARED
        for name in stuck:
            cache.evict(getattr(self._pipe, name, None))
        log.warning("evicted half-moved components %s; they reload on the next attempt", stuck)
        if self._parts is None:
            self._kept = {name: getattr(self._pipe, name, None) for name in ("transformer", "controlnet")
                          if name not in stuck and getattr(self._pipe, name, None) is not None}
            self._pipe = None
        self._placed = None

    def _recover(self) -> None:
        from studio.runtime.memory import free_memory, release_plan

        if self._pipe is not None:
            self._evict(release_plan(self._pipe))
        self._placed = None
        free_memory()

    def _attempts(self, job: InpaintJob) -> list[tuple["MemoryPlan", int, int]]:
        from studio.runtime.memory import lighter_plans

        self._resolve_device()
        first: MemoryPlan = self.plan  # type: ignore[assignment]  # set by _resolve_device
        plans = [first, *lighter_plans(first)]
        attempts = [(p, job.width, job.height) for p in plans]
        seen = {(job.width, job.height)}
        for factor in self.lower_res_factors:
            w = max(MIN_SIZE, int(job.width * factor) // SIZE_MULTIPLE * SIZE_MULTIPLE)
            h = max(MIN_SIZE, int(job.height * factor) // SIZE_MULTIPLE * SIZE_MULTIPLE)
            if (w, h) not in seen:
                seen.add((w, h))
                attempts.append((plans[-1], w, h))
        return attempts

    # ---- inference ----------------------------------------------------------------------------
    def inpaint(self, job: InpaintJob, progress: ProgressFn | None = None,
                cancel: CancelToken | None = None) -> list[Image.Image]:
        import torch

        check_job(job)
        progress = progress or no_progress
        if cancel is not None:
            cancel.raise_if_cancelled()
        self._resolve_device()
        notices: list[Notice] = []
        last_exc: BaseException | None = None
        images: list[Image.Image] | None = None
        plan, w, h = self.plan, job.width, job.height
        for plan, w, h in self._attempts(job):
            try:
                self.load()
                self._place(plan)
                if self.alloc_hook is not None:
                    self.alloc_hook(plan, w, h)
                images = self._generate(job, w, h, progress, cancel)
                break
            except torch.OutOfMemoryError as exc:
                last_exc = exc
                log.warning("out of memory with plan %s at %dx%d; trying a lighter setting", plan.name, w, h)
                self._recover()
        if images is None:
            raise StudioError("engine.oom") from last_exc
        if self.plan is None or plan.name != self.plan.name:
            notices.append(Notice("engine.notice.plan", {"plan": plan.name}))
            self.plan = plan  # stay on the plan that worked for the next jobs
        size = (job.width, job.height)
        if (w, h) != size:
            notices.append(Notice("engine.notice.lower_res", {"w": w, "h": h, "tw": size[0], "th": size[1]}))
            images = [im.resize(size, Image.Resampling.LANCZOS) for im in images]
        if self.paste_back:
            original = _fit(job.image.convert("RGB"), size, Image.Resampling.LANCZOS)
            mask = _fit(job.mask.convert("L"), size, Image.Resampling.BILINEAR)
            images = [paste_back(im, original, mask) for im in images]
        notices = self.load_notices + notices
        self.last_notices, self.last_plan, self.last_size = notices, plan, (w, h)
        job.extras["notices"] = [n.as_dict() for n in notices]
        return images

    def _generate(self, job: InpaintJob, width: int, height: int, progress: ProgressFn,
                  cancel: CancelToken | None) -> list[Image.Image]:
        import torch

        size = (width, height)
        image = _fit(job.image.convert("RGB"), size, Image.Resampling.LANCZOS)
        mask = _fit(job.mask.convert("L"), size, Image.Resampling.BILINEAR)
        control = job.control_image
        if control is not None:
            control = _fit(control.convert("RGB"), size, Image.Resampling.BILINEAR)
        total = job.steps

        def on_step(pipe: Any, i: int, t: Any, kwargs: dict) -> dict:
            progress(i + 1, total, "denoise")
            if cancel is not None and cancel.cancelled:
                raise CancelledError()
            return {}

        generator = torch.Generator(device="cpu").manual_seed(int(job.seed))
        cn = self._pipe.controlnet
        union = bool(getattr(cn, "union", False))
        out = self._pipe(
            prompt=job.prompt,
            image=image,
            mask_image=mask,
            height=height,
            width=width,
            num_inference_steps=job.steps,
            guidance_scale=job.guidance,
            num_images_per_prompt=job.num_images,
            generator=generator,
            max_sequence_length=self.max_sequence_length,
            callback_on_step_end=on_step,
            control_image=control if cn is not None else None,
            control_mode=job.control_mode if union else None,
            controlnet_conditioning_scale=job.controlnet_scale,
            control_guidance_start=job.control_start,
            control_guidance_end=job.control_end,
        )
        return [im.convert("RGB") for im in out.images]


def create_engine(settings: "Settings") -> FluxFillEngine:
    """Engine factory for `EngineProvider` (no weights are loaded here)."""
    engine = FluxFillEngine.from_settings(settings)
    if not (settings.models_dir / "flux-fill").is_dir() and not any(settings.models_dir.glob("flux1-fill-dev*.safetensors")):
        log.warning("no FLUX Fill weights under %s; the first job will say how to get them", settings.models_dir)
    return engine


__all__ = ["FluxFillEngine", "Notice", "check_job", "create_engine", "paste_back", "WeightsError"]
