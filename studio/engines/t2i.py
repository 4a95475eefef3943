"""Text-to-image for the Stock tab: diffusers' `FluxPipeline` with FLUX.1 schnell (default) or dev.

Loaded through the same loader as the Fill engine (`studio.runtime.weights`): the transformer and
scheduler come from `models/flux-schnell/` (or `models/flux-dev/`); the text encoders, tokenizers
and VAE come from `models/flux-fill/` when it is there (the FLUX.1 family shares them) and are
the very same objects the Fill engine uses, so they are never loaded twice.

schnell (Apache-2.0) is the commercially safe default: 4 steps, no guidance, 256 T5 tokens.
dev (non-commercial weights, outputs usable commercially) wants ~28 steps and guidance 3.5.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from studio.engines.base import EngineCaps, EngineResult, Text2ImageJob
from studio.engines.diffusers_base import MAX_SIZE, MIN_SIZE, SIZE_MULTIPLE, DiffusersEngine
from studio.errors import InputError
from studio.runtime.jobs import CancelToken, ProgressFn
from studio.runtime.manager import ModelManager

if TYPE_CHECKING:
    from studio.config import Settings
    from studio.runtime.memory import MemoryPlan

log = logging.getLogger(__name__)

MAX_IMAGES = 8


@dataclass(frozen=True)
class T2IModel:
    key: str
    folder: str
    label: str
    default_steps: int
    guidance: float
    max_sequence_length: int
    model_id: str


T2I_MODELS: dict[str, T2IModel] = {
    "schnell": T2IModel("schnell", "flux-schnell", "FLUX.1 [schnell]", 4, 0.0, 256, "flux_schnell"),
    "dev": T2IModel("dev", "flux-dev", "FLUX.1 [dev]", 28, 3.5, 512, "flux_dev"),
}


class T2IEngine(DiffusersEngine):
    """FLUX text-to-image over shared components (diffusers' `FluxPipeline`); loads on first use."""

    caps = EngineCaps(inpaint=False, text2image=True, needs_gpu=True, needs_weights=True, work_megapixels=1.0)
    own_components = ("transformer",)

    def __init__(self, models_dir: Path, model: str = "schnell", *, device: str | None = None, dtype: Any = None,
                 memory_plan: str = "auto", quantize: str = "none", manager: ModelManager | None = None,
                 max_sequence_length: int | None = None, name: str | None = None, **kwargs: Any) -> None:
        if model not in T2I_MODELS:
            raise InputError("t2i.bad_model", model=model)
        self.spec = T2I_MODELS[model]
        super().__init__(models_dir, device=device, dtype=dtype, memory_plan=memory_plan, quantize=quantize,
                         manager=manager, name=name or f"flux-{model}", **kwargs)
        self.model_label = self.spec.label
        self.model_ids = (self.spec.model_id,)
        self.max_sequence_length = max_sequence_length or self.spec.max_sequence_length

    def footprint_gb(self, plan: "MemoryPlan") -> float:
        from studio.runtime.memory import ACTIVATIONS_GB, CLIP_VAE_GB, T5_GB, TRANSFORMER_GB, gib

        if plan.name == "cpu":
            return 0.0
        return gib(TRANSFORMER_GB[plan.quantize] + ACTIVATIONS_GB + (T5_GB + CLIP_VAE_GB if plan.name == "gpu" else 0.0))

    def _load_parts(self, qconfig: Any) -> dict[str, Any]:
        from studio.runtime import weights as W

        models_dir = Path(self.models_dir or ".")
        folder = models_dir / self.spec.folder
        W.validate_t2i_folder(models_dir, folder, self.model_label)
        kept, self._kept = self._kept, {}
        parts = self.shared_components(folder)
        parts["scheduler"] = W.load_scheduler(folder, self.model_label)
        parts["transformer"] = kept.get("transformer") or W.load_transformer(folder, self._dtype, qconfig,
                                                                             self.model_label)
        return parts

    def _build_pipeline(self, parts: dict[str, Any]) -> Any:
        from studio.runtime.compat import ensure_torchvision

        ensure_torchvision()
        from diffusers import FluxPipeline

        return FluxPipeline(**parts)

    def check(self, job: Text2ImageJob) -> int:
        if not isinstance(job.prompt, str) or not job.prompt.strip():
            raise InputError("t2i.empty_prompt")
        w, h = job.width, job.height
        if w % SIZE_MULTIPLE or h % SIZE_MULTIPLE or not (MIN_SIZE <= w <= MAX_SIZE and MIN_SIZE <= h <= MAX_SIZE):
            raise InputError("engine.bad_size", mult=SIZE_MULTIPLE, min=MIN_SIZE, max=MAX_SIZE, w=w, h=h)
        steps = job.steps or self.spec.default_steps
        if not 1 <= steps <= 100 or not 1 <= job.num_images <= MAX_IMAGES:
            raise InputError("engine.bad_param", name="steps/num_images", value=f"{steps}/{job.num_images}",
                             allowed=f"1..100 / 1..{MAX_IMAGES}")
        return steps

    def text2image(self, job: Text2ImageJob, progress: ProgressFn | None = None,
                   cancel: CancelToken | None = None) -> EngineResult:
        steps = self.check(job)
        guidance = self.spec.guidance if job.guidance is None else job.guidance

        def attempt(plan: Any, w: int, h: int) -> list[Image.Image]:
            import torch

            out = self._pipe(prompt=job.prompt, width=w, height=h, num_inference_steps=steps,
                             guidance_scale=guidance, num_images_per_prompt=job.num_images,
                             generator=torch.Generator(device="cpu").manual_seed(int(job.seed)),
                             max_sequence_length=self.max_sequence_length,
                             callback_on_step_end=self.step_callback(progress, steps, cancel, "generate"))
            return [im.convert("RGB") for im in out.images]

        images, notices, _plan, (w, h) = self.run_ladder(job.width, job.height, attempt, cancel)
        if (w, h) != (job.width, job.height):
            images = [im.resize((job.width, job.height), Image.Resampling.LANCZOS) for im in images]
        return EngineResult(images=images, notices=notices)

    def generate(self, prompt: str, width: int = 1024, height: int = 1024, steps: int | None = None, seed: int = 0,
                 num_images: int = 1, progress: ProgressFn | None = None,
                 cancel: CancelToken | None = None, guidance: float | None = None) -> list[Image.Image]:
        """Keyword shortcut over `text2image` (images only)."""
        job = Text2ImageJob(prompt=prompt, width=width, height=height, steps=steps, seed=seed,
                            num_images=num_images, guidance=guidance)
        return self.text2image(job, progress, cancel).images


def create_t2i(settings: "Settings", model: str = "schnell") -> T2IEngine:
    """A text-to-image engine (lazy: nothing loads here)."""
    return T2IEngine(settings.models_dir, model, memory_plan=settings.memory_plan, quantize=settings.quantize)


def create_schnell(settings: "Settings") -> T2IEngine:
    return create_t2i(settings, "schnell")


def create_dev(settings: "Settings") -> T2IEngine:
    return create_t2i(settings, "dev")


def create_tiny(settings: "Settings") -> T2IEngine:
    """FLUX text-to-image over the tiny random set (tests, demos of the real code path)."""
    from studio.engines.tiny import MAX_SEQUENCE_LENGTH, tiny_models_dir

    return T2IEngine(tiny_models_dir(settings), "schnell", device="cpu", max_sequence_length=MAX_SEQUENCE_LENGTH,
                     name="tiny")
