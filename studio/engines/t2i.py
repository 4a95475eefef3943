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

from studio.errors import CancelledError, InputError
from studio.runtime.jobs import CancelToken, ProgressFn, no_progress

if TYPE_CHECKING:
    from studio.config import Settings
    from studio.runtime.memory import MemoryPlan
    from studio.runtime.weights import ComponentCache

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class T2IModel:
    key: str
    folder: str
    default_steps: int
    guidance: float
    max_sequence_length: int


T2I_MODELS: dict[str, T2IModel] = {
    "schnell": T2IModel("schnell", "flux-schnell", 4, 0.0, 256),
    "dev": T2IModel("dev", "flux-dev", 28, 3.5, 512),
}


class T2IEngine:
    """FLUX text-to-image over shared components; loads on the first `generate`."""

    def __init__(self, models_dir: Path, model: str = "schnell", *, device: str | None = None, dtype: Any = None,
                 memory_plan: str = "auto", cache: "ComponentCache | None" = None,
                 max_sequence_length: int | None = None) -> None:
        if model not in T2I_MODELS:
            raise InputError("t2i.bad_model", model=model)
        self.models_dir = Path(models_dir)
        self.spec = T2I_MODELS[model]
        self._device_name = device
        self._dtype = dtype
        self.memory_plan = memory_plan
        self._cache = cache
        self.max_sequence_length = max_sequence_length or self.spec.max_sequence_length
        self._pipe: Any = None
        self._placed = False
        self.plan: "MemoryPlan | None" = None
        self.device = "cpu"

    @property
    def pipeline(self) -> Any:
        self.load()
        return self._pipe

    def load(self) -> None:
        if self._pipe is not None:
            return
        import torch

        from studio.runtime import weights as W
        from studio.runtime.memory import choose_plan, detect_device

        info = detect_device()
        cuda = info.cuda and not (self._device_name and torch.device(self._device_name).type == "cpu")
        self.device = self._device_name or (info.device if cuda else "cpu")
        if self._dtype is None:
            self._dtype = torch.bfloat16 if cuda else torch.float32
        self.plan = choose_plan(info.vram_gb if cuda else None, self.memory_plan if cuda else "auto", cuda=cuda)
        folder = self.models_dir / self.spec.folder
        W.validate_pipeline_folder(folder, f"FLUX.1 {self.spec.key}", ("scheduler", "transformer"))
        cache = self._cache if self._cache is not None else W.SHARED
        parts = W.load_shared_components(self.models_dir, folder, self._dtype, "cpu", cache)
        parts["scheduler"] = W.load_scheduler(folder)
        parts["transformer"] = W.load_transformer(folder, self._dtype)
        from diffusers import FluxPipeline

        self._pipe = FluxPipeline(**parts)
        self._pipe.set_progress_bar_config(disable=True)

    def _place(self) -> None:
        from studio.runtime.memory import apply_plan, release_plan

        modules = [m for m in self._pipe.components.values() if m is not None and hasattr(m, "parameters")]
        if self._placed and all(getattr(m, "_studio_owner", None) is self for m in modules):
            return
        release_plan(self._pipe)
        apply_plan(self._pipe, self.plan, self.device)
        for m in modules:
            m._studio_owner = self
        self._placed = True

    def generate(self, prompt: str, width: int = 1024, height: int = 1024, steps: int | None = None, seed: int = 0,
                 num_images: int = 1, progress: ProgressFn | None = None,
                 cancel: CancelToken | None = None, guidance: float | None = None) -> list[Image.Image]:
        from studio.engines.flux_fill import MAX_IMAGES, MAX_SIZE, MIN_SIZE, SIZE_MULTIPLE

        if not prompt or not prompt.strip():
            raise InputError("t2i.empty_prompt")
        if width % SIZE_MULTIPLE or height % SIZE_MULTIPLE or not (MIN_SIZE <= width <= MAX_SIZE and MIN_SIZE <= height <= MAX_SIZE):
            raise InputError("engine.bad_size", mult=SIZE_MULTIPLE, min=MIN_SIZE, max=MAX_SIZE, w=width, h=height)
        steps = steps or self.spec.default_steps
        if not 1 <= steps <= 100 or not 1 <= num_images <= MAX_IMAGES:
            raise InputError("engine.bad_param", name="steps/num_images", value=f"{steps}/{num_images}",
                             allowed=f"1..100 / 1..{MAX_IMAGES}")
        progress = progress or no_progress
        if cancel is not None:
            cancel.raise_if_cancelled()
        import torch

        self.load()
        self._place()

        def on_step(pipe: Any, i: int, t: Any, kwargs: dict) -> dict:
            progress(i + 1, steps, "generate")
            if cancel is not None and cancel.cancelled:
                raise CancelledError()
            return {}

        out = self._pipe(prompt=prompt, width=width, height=height, num_inference_steps=steps,
                         guidance_scale=self.spec.guidance if guidance is None else guidance,
                         num_images_per_prompt=num_images,
                         generator=torch.Generator(device="cpu").manual_seed(int(seed)),
                         max_sequence_length=self.max_sequence_length, callback_on_step_end=on_step)
        return [im.convert("RGB") for im in out.images]

    def close(self) -> None:
        from studio.runtime.memory import free_memory, release_plan

        if self._pipe is not None:
            release_plan(self._pipe)
        self._pipe = None
        self._placed = False
        free_memory()


def create_t2i(settings: "Settings", model: str = "schnell") -> T2IEngine:
    """A text-to-image engine (lazy: nothing loads here)."""
    return T2IEngine(settings.models_dir, model, memory_plan=settings.memory_plan)


def create_schnell(settings: "Settings") -> T2IEngine:
    return create_t2i(settings, "schnell")


def create_dev(settings: "Settings") -> T2IEngine:
    return create_t2i(settings, "dev")


def create_tiny(settings: "Settings") -> T2IEngine:
    """FLUX text-to-image over the tiny random set (tests, demos of the real code path)."""
    from studio.engines.tiny import MAX_SEQUENCE_LENGTH, tiny_models_dir

    return T2IEngine(tiny_models_dir(settings), "schnell", device="cpu", max_sequence_length=MAX_SEQUENCE_LENGTH)
