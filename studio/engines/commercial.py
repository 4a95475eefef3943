"""Commercially usable AI engines (issue 23): FLUX.2 [klein] 4B and Qwen-Image-Edit-2511.

Both run on the shared diffusers base (`DiffusersEngine`: model manager, memory plan by the
engine's own weights (`memory.KLEIN_PROFILE` / `QWEN_EDIT_PROFILE`), OOM ladder, cancel within a
step, notices) and paste the kept pixels back from the owner's photo, so a kept face or product
comes out byte-identical.

- `KleinEngine` (Apache-2.0): `inpaint` through diffusers' `Flux2KleinInpaintPipeline` (optionally
  with reference images, e.g. the product) and `text2image` through `Flux2KleinPipeline` over the
  same components. Defaults from the model card: 4 steps, guidance 1.0.
- `QwenEditEngine` (Apache-2.0): `inpaint` through `QwenImageEditInpaintPipeline` (mask: 255 =
  repaint, 0 = keep), and `edit` through `QwenImageEditPlusPipeline` with 1-3 reference images
  (person + product) for Advanced. Defaults from the model card: 40 steps, true CFG 4.0,
  negative prompt " ".

Layout on disk: the real repos' diffusers folders (model_index.json + components), under
models/flux2-klein-4b/ and models/qwen-image-edit-2511/. A broken folder is refused before
loading with the shared Korean `WeightsError` messages (`studio.runtime.weights`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from studio.engines.base import EngineCaps, EngineResult, InpaintJob, Text2ImageJob
from studio.engines.diffusers_base import DiffusersEngine, notice_dict
from studio.engines.flux_fill import _fit, check_job, paste_back
from studio.errors import InputError
from studio.runtime.jobs import CancelToken, ProgressFn
from studio.schema import Notice

if TYPE_CHECKING:
    from studio.config import Settings
    from studio.runtime.memory import MemoryPlan

log = logging.getLogger(__name__)

KLEIN_DIR = "flux2-klein-4b"
QWEN_EDIT_DIR = "qwen-image-edit-2511"
# model cards: klein 4B is step-distilled, 4 steps, guidance 1.0; Qwen-Image-Edit-2511 40 steps,
# true_cfg_scale 4.0, negative_prompt " ", guidance_scale 1.0 (ignored: guidance_embeds false)
KLEIN_STEPS, KLEIN_GUIDANCE = 4, 1.0
QWEN_STEPS, QWEN_TRUE_CFG = 40, 4.0
QWEN_MAX_REFERENCES = 3
MAX_SEQUENCE_LENGTH = 512  # both pipelines' tokenizer_max_length


def _ensure() -> None:
    from studio.runtime.compat import ensure_torchvision

    ensure_torchvision()


def _load_folder(folder: Path, model: str, dtype: Any, qconfig: Any, kept: dict[str, Any],
                 required: tuple[str, ...]) -> dict[str, Any]:
    """Every component model_index.json lists, validated first (a broken folder is refused in
    the owner's language), the transformer quantised when the plan says so."""
    import importlib

    from studio.runtime import weights as W

    _ensure()

    index = W.validate_pipeline_folder(folder, model, required)
    parts: dict[str, Any] = {}
    for name, value in index.items():
        if name.startswith("_") or not isinstance(value, list) or value[0] is None:
            continue
        if name in kept:
            parts[name] = kept[name]
            continue
        import torch

        lib, cls_name = value
        cls = getattr(importlib.import_module(lib), cls_name)
        kwargs: dict[str, Any] = {}
        if isinstance(cls, type) and issubclass(cls, torch.nn.Module):
            kwargs["torch_dtype"] = dtype
        if name == "transformer" and qconfig is not None:
            kwargs["quantization_config"] = qconfig
        parts[name] = W._load(cls, folder / name, model, **kwargs)
    return parts


class _CommercialEngine(DiffusersEngine):
    folder_name = ""
    required: tuple[str, ...] = ()
    licence = "Apache-2.0"

    def __init__(self, models_dir: Path | None = None, *, paste_back: bool = True, **kwargs: Any) -> None:
        super().__init__(models_dir, **kwargs)
        self.paste_back = paste_back

    @classmethod
    def from_settings(cls, settings: "Settings", **kwargs: Any) -> "_CommercialEngine":
        return cls(settings.models_dir, memory_plan=settings.memory_plan, quantize=settings.quantize, **kwargs)

    def footprint_gb(self, plan: "MemoryPlan") -> float:
        from studio.runtime.memory import PROFILES, gib

        if plan.name == "cpu":
            return 0.0
        prof = PROFILES[self.memory_profile or ""]
        q = plan.quantize if prof.allows(plan.quantize) else "none"
        resident = prof.transformer_gb[q] + prof.resident_gb + prof.activations_gb
        return gib(resident + (prof.encoder_gb + prof.vae_gb if plan.name == "gpu" else 0.0))

    def _load_parts(self, qconfig: Any) -> dict[str, Any]:
        kept, self._kept = self._kept, {}
        folder = Path(self.models_dir or ".") / self.folder_name
        parts = _load_folder(folder, self.model_label, self._dtype, qconfig, kept, self.required)
        import json

        index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
        if "is_distilled" in index:  # klein: the distilled 4B skips classifier-free guidance
            parts["is_distilled"] = bool(index["is_distilled"])
        return parts

    def _finish(self, job: InpaintJob, images: list[Image.Image], notices: list[Notice],
                size_used: tuple[int, int]) -> EngineResult:
        size = (job.width, job.height)
        images = [im.convert("RGB") for im in images]
        if any(im.size != size for im in images):
            images = [_fit(im, size, Image.Resampling.LANCZOS) for im in images]
        if self.paste_back:
            original = _fit(job.image.convert("RGB"), size, Image.Resampling.LANCZOS)
            mask = _fit(job.mask.convert("L"), size, Image.Resampling.BILINEAR)
            images = [paste_back(im, original, mask) for im in images]
        notices = [*notices, Notice("engine.notice.model_used", {"model": self.model_label, "licence": self.licence})]
        job.extras["notices"] = [notice_dict(n) for n in notices]
        job.extras["model"] = {"label": self.model_label, "licence": self.licence, "commercial": True}
        return EngineResult(images=images, notices=notices)

    @staticmethod
    def _references(job: InpaintJob) -> list[Image.Image]:
        refs = job.extras.get("references") or []
        return [r.convert("RGB") for r in refs if r is not None]


class KleinEngine(_CommercialEngine):
    """FLUX.2 [klein] 4B: inpaint (with optional reference images) and text-to-image."""

    name = "klein"
    caps = EngineCaps(inpaint=True, changes_outfit=True, uses_pose_control=False, text2image=True,
                      needs_gpu=True, needs_weights=True)
    model_label = "FLUX.2 [klein] 4B"
    accepts_references = True   # Advanced passes the product as a reference picture (common.run_ad)
    model_ids = ("flux2_klein_4b",)
    memory_profile = "klein"
    folder_name = KLEIN_DIR
    required = ("scheduler", "transformer", "vae", "text_encoder", "tokenizer")

    def _build_pipeline(self, parts: dict[str, Any]) -> Any:
        _ensure()
        from diffusers import Flux2KleinInpaintPipeline

        comps = {k: parts[k] for k in ("scheduler", "vae", "text_encoder", "tokenizer", "transformer")}
        return Flux2KleinInpaintPipeline(**comps, is_distilled=bool(parts.get("is_distilled", False)))

    def t2i_pipeline(self) -> Any:
        """`Flux2KleinPipeline` over the loaded components (nothing is loaded twice)."""
        _ensure()
        from diffusers import Flux2KleinPipeline

        pipe = self.pipeline
        comps = {k: getattr(pipe, k) for k in ("scheduler", "vae", "text_encoder", "tokenizer", "transformer")}
        t2i = Flux2KleinPipeline(**comps, is_distilled=bool(pipe.config.get("is_distilled", False)))
        t2i.set_progress_bar_config(disable=True)
        return t2i

    def inpaint(self, job: InpaintJob, progress: ProgressFn | None = None,
                cancel: CancelToken | None = None) -> EngineResult:
        check_job(job)
        steps = job.steps
        refs = self._references(job)
        prompt, fit_notices = self.fit_prompt(job.prompt)

        def attempt(plan: "MemoryPlan", w: int, h: int) -> list[Image.Image]:
            import torch

            size = (w, h)
            out = self._pipe(
                prompt=prompt,
                image=_fit(job.image.convert("RGB"), size, Image.Resampling.LANCZOS),
                mask_image=_fit(job.mask.convert("L"), size, Image.Resampling.BILINEAR),
                image_reference=refs or None,
                height=h, width=w,
                strength=float(job.extras.get("strength", 1.0)),
                num_inference_steps=steps,
                guidance_scale=job.guidance,
                num_images_per_prompt=job.num_images,
                generator=torch.Generator(device="cpu").manual_seed(int(job.seed)),
                max_sequence_length=MAX_SEQUENCE_LENGTH,
                callback_on_step_end=self.step_callback(progress, steps, cancel),
            )
            return list(out.images)

        images, notices, _plan, wh = self.run_ladder(job.width, job.height, attempt, cancel)
        return self._finish(job, images, [*fit_notices, *notices], wh)

    def fit_prompt(self, prompt: str) -> tuple[str, list[Notice]]:
        """The prompt within Qwen3-4B's 512 tokens including the chat template, counted with the
        loaded tokenizer (the pipeline would cut the end silently); a notice when parts were dropped."""
        from studio.text.qwen_prompts import QwenCounter, fit_qwen_prompt

        self.load()
        fit = fit_qwen_prompt(prompt, QwenCounter(self._pipe.tokenizer, "klein"))
        if not fit.dropped:
            return prompt, []
        return fit.prompt, [Notice("prompt.qwen_trimmed", {"n": len(fit.dropped), "budget": fit.budget})]

    def text2image(self, job: Text2ImageJob, progress: ProgressFn | None = None,
                   cancel: CancelToken | None = None) -> EngineResult:
        width, height = job.width, job.height
        if width % 16 or height % 16 or not (64 <= width <= 2048 and 64 <= height <= 2048):
            raise InputError("engine.bad_size", mult=16, min=64, max=2048, w=width, h=height)
        steps = KLEIN_STEPS if job.steps is None else int(job.steps)
        guidance = KLEIN_GUIDANCE if job.guidance is None else float(job.guidance)
        prompt, fit_notices = self.fit_prompt(job.prompt)

        def attempt(plan: "MemoryPlan", w: int, h: int) -> list[Image.Image]:
            import torch

            out = self.t2i_pipeline()(
                prompt=prompt, height=h, width=w, num_inference_steps=steps, guidance_scale=guidance,
                num_images_per_prompt=job.num_images,
                generator=torch.Generator(device="cpu").manual_seed(int(job.seed)),
                max_sequence_length=MAX_SEQUENCE_LENGTH,
                callback_on_step_end=self.step_callback(progress, steps, cancel),
            )
            return list(out.images)

        images, notices, _plan, (w, h) = self.run_ladder(width, height, attempt, cancel)
        if (w, h) != (width, height):
            images = [im.resize((width, height), Image.Resampling.LANCZOS) for im in images]
        notices = [*fit_notices, *notices,
                   Notice("engine.notice.model_used", {"model": self.model_label, "licence": self.licence})]
        job.extras["model"] = {"label": self.model_label, "licence": self.licence, "commercial": True}
        return EngineResult(images=[im.convert("RGB") for im in images], notices=notices)

    def generate(self, prompt: str, width: int = 1024, height: int = 1024, steps: int | None = None, seed: int = 0,
                 num_images: int = 1, progress: ProgressFn | None = None, cancel: CancelToken | None = None,
                 guidance: float | None = None) -> list[Image.Image]:
        job = Text2ImageJob(prompt=prompt, width=width, height=height, steps=steps, seed=seed,
                            num_images=num_images, guidance=guidance)
        return self.text2image(job, progress, cancel).images


class QwenEditEngine(_CommercialEngine):
    """Qwen-Image-Edit-2511: inpaint (mask) and reference edit (person + product) for Advanced."""

    name = "qwen-edit"
    caps = EngineCaps(inpaint=True, changes_outfit=True, uses_pose_control=False, text2image=False,
                      needs_gpu=True, needs_weights=True)
    model_label = "Qwen-Image-Edit-2511"
    accepts_references = True   # Advanced passes the product as a reference picture (common.run_ad)
    model_ids = ("qwen_image_edit_2511",)
    memory_profile = "qwen-edit"
    folder_name = QWEN_EDIT_DIR
    required = ("scheduler", "transformer", "vae", "text_encoder", "tokenizer", "processor")

    def _build_pipeline(self, parts: dict[str, Any]) -> Any:
        _ensure()
        from diffusers import QwenImageEditInpaintPipeline

        comps = {k: parts[k] for k in ("scheduler", "vae", "text_encoder", "tokenizer", "processor", "transformer")}
        return QwenImageEditInpaintPipeline(**comps)

    def plus_pipeline(self) -> Any:
        """`QwenImageEditPlusPipeline` (1-3 reference images) over the loaded components."""
        _ensure()
        from diffusers import QwenImageEditPlusPipeline

        pipe = self.pipeline
        comps = {k: getattr(pipe, k) for k in ("scheduler", "vae", "text_encoder", "tokenizer", "processor",
                                                 "transformer")}
        plus = QwenImageEditPlusPipeline(**comps)
        plus.set_progress_bar_config(disable=True)
        return plus

    def inpaint(self, job: InpaintJob, progress: ProgressFn | None = None,
                cancel: CancelToken | None = None) -> EngineResult:
        """Masked repaint (255 = repaint, 0 = keep); with reference images in `job.extras["references"]`
        (person + product, at most 3 in all), a reference edit whose result is pasted back into the mask."""
        check_job(job)
        refs = self._references(job)
        if len(refs) + 1 > QWEN_MAX_REFERENCES:
            raise InputError("engine.bad_param", name="references", value=len(refs) + 1,
                             allowed=f"1..{QWEN_MAX_REFERENCES}")
        steps = job.steps
        negative = job.extras.get("negative_prompt", " ")
        true_cfg = float(job.extras.get("true_cfg_scale", QWEN_TRUE_CFG))

        def attempt(plan: "MemoryPlan", w: int, h: int) -> list[Image.Image]:
            import torch

            size = (w, h)
            image = _fit(job.image.convert("RGB"), size, Image.Resampling.LANCZOS)
            common = dict(prompt=job.prompt, negative_prompt=negative, true_cfg_scale=true_cfg,
                          num_inference_steps=steps, num_images_per_prompt=job.num_images,
                          generator=torch.Generator(device="cpu").manual_seed(int(job.seed)),
                          max_sequence_length=MAX_SEQUENCE_LENGTH,
                          callback_on_step_end=self.step_callback(progress, steps, cancel))
            if refs:
                out = self.plus_pipeline()(image=[image, *refs], height=h, width=w, **common)
            else:
                out = self._pipe(image=image, mask_image=_fit(job.mask.convert("L"), size,
                                                              Image.Resampling.BILINEAR),
                                 height=h, width=w, strength=float(job.extras.get("strength", 1.0)), **common)
            return list(out.images)

        images, notices, _plan, wh = self.run_ladder(job.width, job.height, attempt, cancel)
        return self._finish(job, images, notices, wh)


def create_klein(settings: "Settings") -> KleinEngine:
    return KleinEngine.from_settings(settings)  # type: ignore[return-value]


def create_qwen_edit(settings: "Settings") -> QwenEditEngine:
    return QwenEditEngine.from_settings(settings)  # type: ignore[return-value]


__all__ = ["KLEIN_DIR", "QWEN_EDIT_DIR", "KleinEngine", "QwenEditEngine", "create_klein", "create_qwen_edit"]
