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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from studio.engines.base import EngineCaps, EngineResult, InpaintJob
from studio.engines.diffusers_base import (
    MAX_SIZE,
    MIN_SIZE,
    SIZE_MULTIPLE,
    DiffusersEngine,
    notice_dict,
)
from studio.errors import InputError, StudioError, WeightsError
from studio.runtime.jobs import CancelToken, ProgressFn
from studio.schema import Notice

if TYPE_CHECKING:
    from studio.config import Settings
    from studio.runtime.memory import MemoryPlan

log = logging.getLogger(__name__)

MAX_IMAGES = 8


@dataclass(frozen=True)
class ControlDefaults:
    """A ControlNet's recommended pose settings, from its model card."""

    scale: float
    end: float
    guidance: float          # the guidance the ControlNet itself gets (its training range)
    guidance_range: tuple[float, float]
    pose_mode: int | None    # Union control mode for pose (None: the net has no mode embedding)


# Shakker-Labs FLUX.1-dev-ControlNet-Union-Pro-2.0 model card: pose (DWPose) conditioning scale and
# control guidance end, and its training guidance range, live in the catalogue (presets/models.json,
# `pose_defaults` of controlnet_union_pro2); "removed mode embedding" (config num_mode null, so no
# control_mode). InstantX FLUX.1-dev-Controlnet-Union: config num_mode 10, pose = mode 4; its card gives
# no pose scale/end, so Pro 2.0's are used.
def _card_defaults(pose_mode: int | None) -> ControlDefaults:
    from studio.presets import pose_defaults

    c = pose_defaults()
    return ControlDefaults(scale=c["conditioning_scale"], end=c["guidance_end"], guidance=c["guidance"],
                           guidance_range=(c["guidance_min"], c["guidance_max"]), pose_mode=pose_mode)


def control_defaults(controlnet: Any) -> ControlDefaults:
    union = bool(getattr(controlnet, "union", False))
    return _card_defaults(4 if union else None)


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
    if job.controlnet_scale is not None:
        _check_range("controlnet_scale", job.controlnet_scale, 0.0, 2.0)
    _check_range("control_start", job.control_start, 0.0, 1.0)
    _check_range("strength", job.strength, 0.01, 1.0)
    if job.control_end is not None:
        _check_range("control_end", job.control_end, job.control_start, 1.0)
    if job.control_guidance is not None:
        _check_range("control_guidance", job.control_guidance, 0.0, 100.0)
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


class FluxFillEngine(DiffusersEngine):
    """FLUX.1 Fill + optional FLUX ControlNet on the shared diffusers engine base."""

    name = "flux"
    caps = EngineCaps(inpaint=True, changes_outfit=True, uses_pose_control=True, text2image=False,
                      needs_gpu=True, needs_weights=True)
    model_label = "FLUX.1 Fill [dev]"
    model_ids = ("flux_fill_dev", "controlnet_union_pro2")

    def __init__(self, models_dir: Path | None = None, *, max_sequence_length: int = 512, paste_back: bool = True,
                 name: str = "flux", **base: Any) -> None:
        """`base`: `DiffusersEngine`'s keywords (parts, device, dtype, memory_plan, quantize, manager,
        alloc_hook, lower_res_factors, ram_gb), passed on as they are."""
        super().__init__(models_dir, name=name, **base)
        self.max_sequence_length = max_sequence_length
        self.paste_back = paste_back

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def from_settings(cls, settings: "Settings", **kwargs: Any) -> "FluxFillEngine":
        return cls(settings.models_dir, memory_plan=settings.memory_plan, quantize=settings.quantize, **kwargs)

    @classmethod
    def from_parts(cls, *, transformer: Any, vae: Any, text_encoder: Any, tokenizer: Any, text_encoder_2: Any,
                   tokenizer_2: Any, scheduler: Any, controlnet: Any = None, **kwargs: Any) -> "FluxFillEngine":
        """An engine over already-built parts (full-size random ones for benchmarks, tiny ones for tests)."""
        parts = {"transformer": transformer, "vae": vae, "text_encoder": text_encoder, "tokenizer": tokenizer,
                 "text_encoder_2": text_encoder_2, "tokenizer_2": tokenizer_2, "scheduler": scheduler,
                 "controlnet": controlnet}
        return cls(None, parts=parts, **kwargs)

    # ---- loading ------------------------------------------------------------------------------
    def footprint_gb(self, plan: "MemoryPlan") -> float:
        from studio.runtime.memory import ACTIVATIONS_GB, CLIP_VAE_GB, CONTROLNET_GB, T5_GB, TRANSFORMER_GB, gib

        if plan.name == "cpu":
            return 0.0
        resident = TRANSFORMER_GB[plan.quantize] + CONTROLNET_GB + ACTIVATIONS_GB
        return gib(resident + (T5_GB + CLIP_VAE_GB if plan.name == "gpu" else 0.0))

    def _build_pipeline(self, parts: dict[str, Any]) -> Any:
        from studio.engines.flux_fill_pipeline import FluxFillControlNetPipeline

        pipe = FluxFillControlNetPipeline(**parts)
        log.info("flux fill pipeline built (controlnet=%s)", parts.get("controlnet") is not None)
        return pipe

    def _load_parts(self, qconfig: Any) -> dict[str, Any]:
        from studio.runtime import weights as W

        models_dir = Path(self.models_dir or ".")
        fill = models_dir / W.FLUX_FILL_DIR
        W.validate_fill_folder(models_dir)
        kept, self._kept = self._kept, {}  # healthy parts surviving an eviction are not reloaded
        parts = self.shared_components(fill)
        parts["scheduler"] = W.load_scheduler(fill, self.model_label)
        if "transformer" in kept:
            parts["transformer"] = kept["transformer"]
        else:
            parts["transformer"] = W.load_transformer(fill, self._dtype, qconfig, self.model_label,
                                                      single_file=W.use_fill_single_file(models_dir))
        cn_dir = W.find_controlnet_dir(models_dir)
        if "controlnet" in kept:
            parts["controlnet"] = kept["controlnet"]
        else:
            parts["controlnet"] = W.load_controlnet(cn_dir, self._dtype, "FLUX ControlNet Union") if cn_dir else None
        if cn_dir is None:
            self.load_notices.append(Notice("engine.notice.no_controlnet"))
        return parts

    # ---- inference ----------------------------------------------------------------------------
    def inpaint(self, job: InpaintJob, progress: ProgressFn | None = None,
                cancel: CancelToken | None = None) -> EngineResult:
        check_job(job)
        images, notices, plan, (w, h) = self.run_ladder(
            job.width, job.height, lambda p, w, h: self._generate(job, w, h, progress, cancel), cancel)
        size = (job.width, job.height)
        if (w, h) != size:
            images = [im.resize(size, Image.Resampling.LANCZOS) for im in images]
        if self.paste_back:
            original = _fit(job.image.convert("RGB"), size, Image.Resampling.LANCZOS)
            mask = _fit(job.mask.convert("L"), size, Image.Resampling.BILINEAR)
            images = [paste_back(im, original, mask) for im in images]
        job.extras["notices"] = [notice_dict(n) for n in notices]
        return EngineResult(images=images, notices=notices)

    def _generate(self, job: InpaintJob, width: int, height: int, progress: ProgressFn | None,
                  cancel: CancelToken | None) -> list[Image.Image]:
        import torch

        size = (width, height)
        image = _fit(job.image.convert("RGB"), size, Image.Resampling.LANCZOS)
        mask = _fit(job.mask.convert("L"), size, Image.Resampling.BILINEAR)
        control = job.control_image
        if control is not None:
            control = _fit(control.convert("RGB"), size, Image.Resampling.BILINEAR)
        cn = self._pipe.controlnet
        d = control_defaults(cn)
        union = bool(getattr(cn, "union", False))
        # the owner's values win; unset ones come from the ControlNet's model card
        mode = job.control_mode if job.control_mode is not None else d.pose_mode
        out = self._pipe(
            prompt=job.prompt,
            image=image,
            mask_image=mask,
            height=height,
            width=width,
            num_inference_steps=job.steps,
            guidance_scale=job.guidance,
            strength=job.strength,
            num_images_per_prompt=job.num_images,
            generator=torch.Generator(device="cpu").manual_seed(int(job.seed)),
            max_sequence_length=self.max_sequence_length,
            callback_on_step_end=self.step_callback(progress, job.steps, cancel),
            control_image=control if cn is not None else None,
            control_mode=mode if union else None,
            controlnet_conditioning_scale=d.scale if job.controlnet_scale is None else job.controlnet_scale,
            control_guidance_start=job.control_start,
            control_guidance_end=d.end if job.control_end is None else job.control_end,
            controlnet_guidance_scale=d.guidance if job.control_guidance is None else job.control_guidance,
        )
        return [im.convert("RGB") for im in out.images]


def create_engine(settings: "Settings") -> FluxFillEngine:
    """Engine factory for `EngineProvider` (no weights are loaded here; the provider binds its manager)."""
    engine = FluxFillEngine.from_settings(settings)
    if not (settings.models_dir / "flux-fill").is_dir() and not any(settings.models_dir.glob("flux1-fill-dev*.safetensors")):
        log.warning("no FLUX Fill weights under %s; the first job will say how to get them", settings.models_dir)
    return engine


__all__ = ["FluxFillEngine", "Notice", "StudioError", "WeightsError", "check_job", "control_defaults",
           "create_engine", "paste_back"]
