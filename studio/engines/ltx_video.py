"""AI image-to-video with diffusers: LTX-Video (default, distilled) and Wan 2.2 TI2V-5B (option).

Each model is data (`VideoModel`): its folder under models/, pipeline class, native frame rate,
frame-count rule, size multiple, working resolution and the recommended sampling settings, taken
from the diffusers LTX-Video documentation and the model cards:

- LTX-Video distilled (0.9.7/0.9.8): `LTXConditionPipeline`, guidance 1.0, the custom timesteps
  `[1000, 993, 987, 981, 975, 909, 725, 0.03]`, decode_timestep 0.05, decode_noise_scale 0.025,
  image_cond_noise_scale 0.0; num_frames = 8k+1, width/height multiples of 32.
- Wan 2.2 TI2V-5B (Apache-2.0): the pipeline class named in its model_index.json (called with
  `image=`), guidance 5.0, 50 steps, num_frames = 4k+1, 24 fps.
- Hunyuan video models are not offered: their licence excludes South Korea.

The engine generates at its working resolution and native frame rate, then `VideoResult.frames`
lazily maps each 30 fps output frame to the nearest generated frame, upscales it to the clip size
and, where asked, composites the kept product/face region from the source (held steady).

Device, memory plan, loading through the model manager, the OOM ladder, cancel within one step and
close come from the shared diffusers engine base (`studio.engines.diffusers_base.DiffusersEngine`);
this module only says how to load and call each model.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import cv2
import numpy as np

from studio.engines.base import EngineCaps, Image2VideoJob, VideoResult
from studio.engines.diffusers_base import DiffusersEngine
from studio.errors import WeightsError
from studio.runtime.jobs import CancelToken, ProgressFn
from studio.schema import Notice

if TYPE_CHECKING:
    from studio.config import Settings

log = logging.getLogger(__name__)

NEGATIVE = "worst quality, inconsistent motion, blurry, jittery, distorted"


@dataclass(frozen=True)
class VideoModel:
    key: str
    folder: str                         # under models/
    pipeline: str | None                # diffusers class; None = the one model_index.json names
    label: str
    native_fps: int
    frame_multiple: int                 # num_frames = k * frame_multiple + 1
    max_frames: int
    size_multiple: int
    work_megapixels: float
    guidance: float
    steps: int
    timesteps: tuple[float, ...] = ()   # custom schedule (distilled models); empty = `steps` steps
    call_kwargs: tuple[tuple[str, Any], ...] = ()
    footprint_gb: float = 16.0
    model_ids: tuple[str, ...] = ()


LTX = VideoModel(key="ltx", folder="ltx-video", pipeline="LTXConditionPipeline", label="LTX-Video",
                 native_fps=24, frame_multiple=8, max_frames=161, size_multiple=32, work_megapixels=0.45,
                 guidance=1.0, steps=8, timesteps=(1000, 993, 987, 981, 975, 909, 725, 0.03),
                 call_kwargs=(("decode_timestep", 0.05), ("decode_noise_scale", 0.025),
                              ("image_cond_noise_scale", 0.0), ("guidance_rescale", 0.7)),
                 footprint_gb=16.0, model_ids=("ltx_video",))
WAN = VideoModel(key="wan", folder="wan2.2-ti2v-5b", pipeline=None, label="Wan 2.2 TI2V-5B", native_fps=24,
                 frame_multiple=4, max_frames=121, size_multiple=32, work_megapixels=0.9, guidance=5.0, steps=50,
                 footprint_gb=24.0, model_ids=("wan22_ti2v_5b",))


def frame_count(seconds: float, model: VideoModel) -> int:
    """The generated frame count: k * multiple + 1 nearest to seconds * native fps, within the model's max."""
    want = max(1.0, seconds * model.native_fps)
    k = max(1, int(round((want - 1) / model.frame_multiple)))
    k = min(k, (model.max_frames - 1) // model.frame_multiple)
    return k * model.frame_multiple + 1


def work_size(width: int, height: int, model: VideoModel) -> tuple[int, int]:
    """The clip's aspect at about `work_megapixels`, in multiples of the model's size multiple."""
    m = model.size_multiple
    k = math.sqrt(model.work_megapixels * 1e6 / (width * height))
    return max(m, int(round(width * k / m)) * m), max(m, int(round(height * k / m)) * m)


class AIVideoEngine(DiffusersEngine):
    """One diffusers image-to-video pipeline behind the `Image2VideoEngine` protocol, on the shared
    diffusers engine base (device, memory plan, model manager, OOM ladder, cancel, close)."""

    own_components = ("transformer",)

    def __init__(self, models_dir: Path | None, model: VideoModel, *, folder: Path | None = None,
                 max_sequence_length: int = 128, **kwargs: Any) -> None:
        kwargs.setdefault("name", model.key)
        super().__init__(models_dir if models_dir is not None else folder, **kwargs)
        self.model = model
        self.folder = Path(folder) if folder is not None else Path(models_dir or ".") / model.folder
        self.model_label = model.label
        self.model_ids = list(model.model_ids)
        self.size_multiple = model.size_multiple
        self.min_size = model.size_multiple
        self.caps = EngineCaps(inpaint=False, image2video=True, needs_gpu=True, needs_weights=True,
                               work_megapixels=model.work_megapixels, size_multiple=model.size_multiple)
        self.max_sequence_length = max_sequence_length

    @classmethod
    def from_settings(cls, settings: "Settings", model: VideoModel, **kwargs: Any) -> "AIVideoEngine":
        return cls(settings.models_dir, model, memory_plan=settings.memory_plan, quantize=settings.quantize,
                   **kwargs)

    # -- what the base asks of a subclass -------------------------------------------------------
    def footprint_gb(self, plan: Any) -> float:
        """Decimal GB of the model's files (the catalog's disk size); nothing on the GPU for the CPU plan."""
        from studio.runtime.memory import gib

        return 0.0 if getattr(plan, "name", "") == "cpu" else gib(self.model.footprint_gb)

    def _pipeline_class(self) -> Any:
        from studio.runtime.compat import ensure_torchvision

        ensure_torchvision()
        import diffusers

        return getattr(diffusers, self.model.pipeline) if self.model.pipeline else diffusers.DiffusionPipeline

    def _load_parts(self, qconfig: Any) -> dict[str, Any]:
        from studio.runtime.weights import validate_pipeline_folder

        if not (self.folder / "model_index.json").is_file():
            raise WeightsError("weights.missing_file", path=str(self.folder / "model_index.json"),
                               model=self.model.label)
        validate_pipeline_folder(self.folder, self.model.label)
        pipe = self._pipeline_class().from_pretrained(str(self.folder), dtype=self.dtype)
        return dict(pipe.components)

    def _build_pipeline(self, parts: dict[str, Any]) -> Any:
        cls = self._pipeline_class()
        if cls.__name__ == "DiffusionPipeline":  # Wan: the class model_index.json names
            import json

            import diffusers

            cls = getattr(diffusers, json.loads((self.folder / "model_index.json").read_text())["_class_name"])
        return cls(**parts)

    # -- the call ------------------------------------------------------------------------------
    def pipeline_kwargs(self, job: Image2VideoJob, size: tuple[int, int] | None = None) -> dict[str, Any]:
        """Exactly what is passed to the diffusers pipeline for `job` (also used by the benchmark)."""
        import torch

        from studio.render.crop import smart_crop

        w, h = size or work_size(job.width, job.height, self.model)
        frames = frame_count(job.seconds, self.model)
        image = smart_crop(job.image.convert("RGB"), w, h, job.extras.get("focus_box"))
        kwargs: dict[str, Any] = dict(image=image, prompt=job.prompt or "a product advertisement, gentle motion",
                                      negative_prompt=NEGATIVE, width=w, height=h, num_frames=frames,
                                      guidance_scale=self.model.guidance if job.guidance is None else job.guidance,
                                      generator=torch.Generator("cpu").manual_seed(int(job.seed)), output_type="np")
        if job.steps is not None:
            kwargs["num_inference_steps"] = int(job.steps)
        elif self.model.timesteps:
            kwargs["timesteps"] = list(self.model.timesteps)
        else:
            kwargs["num_inference_steps"] = self.model.steps
        if self.model.pipeline == "LTXConditionPipeline":
            kwargs["frame_rate"] = self.model.native_fps
            kwargs["max_sequence_length"] = self.max_sequence_length
        kwargs.update(dict(self.model.call_kwargs))
        return kwargs

    def image2video(self, job: Image2VideoJob, progress: ProgressFn | None = None,
                    cancel: CancelToken | None = None) -> VideoResult:
        import inspect

        if cancel is not None:
            cancel.raise_if_cancelled()
        w0, h0 = work_size(job.width, job.height, self.model)

        def attempt(plan: Any, w: int, h: int) -> np.ndarray:
            pipe = self.pipeline
            kwargs = self.pipeline_kwargs(job, (w, h))
            accepted = inspect.signature(pipe.__call__).parameters
            kwargs = {k: v for k, v in kwargs.items() if k in accepted}
            steps = len(kwargs.get("timesteps") or []) or int(kwargs.get("num_inference_steps", 1))
            out = pipe(**kwargs, callback_on_step_end=self.step_callback(progress, steps, cancel, "steps"))
            return np.asarray(out.frames[0])

        frames, notices, _plan, (w, h) = self.run_ladder(w0, h0, attempt, cancel)
        if frames.dtype != np.uint8:  # (n, h, w, 3) floats in [0, 1]
            frames = (np.clip(frames, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        total = max(1, int(round(job.seconds * job.fps)))
        notices = list(notices) + [Notice("video.ai_frames", {"frames": len(frames), "w": w, "h": h,
                                                              "fps": job.fps})]
        keep = None
        if job.keep_mask is not None and job.extras.get("keep_region"):
            keep = _keep_layer(job, job.width, job.height)
            notices.append(Notice("video.keep_region"))
        return VideoResult(frames=_resampled(frames, self.model.native_fps, job, total, keep, cancel), fps=job.fps,
                           notices=notices, count=total)


def _keep_layer(job: Image2VideoJob, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """The source framed at the clip size and a feathered kept-region weight (float32 0..1)."""
    from studio.render.crop import crop_window

    src = np.asarray(job.image.convert("RGB"))
    mask = np.asarray(job.keep_mask, dtype=np.uint8)
    if mask.shape[:2] != src.shape[:2]:
        mask = cv2.resize(mask, (src.shape[1], src.shape[0]), interpolation=cv2.INTER_NEAREST)
    x0, y0, x1, y1 = crop_window(src.shape[1], src.shape[0], w, h, job.extras.get("focus_box"))
    rgb = cv2.resize(np.ascontiguousarray(src[y0:y1, x0:x1]), (w, h), interpolation=cv2.INTER_AREA)
    m = cv2.resize(np.ascontiguousarray(mask[y0:y1, x0:x1]), (w, h), interpolation=cv2.INTER_LINEAR)
    soft = cv2.GaussianBlur(m, (0, 0), max(1.0, 0.004 * max(w, h))).astype(np.float32) / 255.0
    return rgb, soft


def _resampled(frames: np.ndarray, native_fps: int, job: Image2VideoJob, total: int,
               keep: tuple[np.ndarray, np.ndarray] | None, cancel: CancelToken | None) -> Iterator[np.ndarray]:
    n = len(frames)
    w, h = job.width, job.height
    for i in range(total):
        if cancel is not None:
            cancel.raise_if_cancelled()
        src = min(n - 1, int(round(i * native_fps / job.fps)))
        frame = cv2.resize(frames[src], (w, h), interpolation=cv2.INTER_CUBIC)
        if keep is not None:
            rgb, soft = keep
            frame = cv2.blendLinear(rgb, frame, soft, 1.0 - soft)
        yield frame


# --- factories (registry) -----------------------------------------------------------------------
def create_ltx(settings: "Settings") -> AIVideoEngine:
    """Registry factory (loads nothing; the provider binds its model manager)."""
    return AIVideoEngine.from_settings(settings, LTX)


def create_wan(settings: "Settings") -> AIVideoEngine:
    return AIVideoEngine.from_settings(settings, WAN)


# --- the tiny LTX set: the real diffusers classes with tiny configs, saved in the real layout -------
TINY_LTX = dataclasses.replace(LTX, key="tiny", work_megapixels=0.01, size_multiple=32, max_frames=17,
                               steps=2, timesteps=(), footprint_gb=0.0)
TINY_VERSION = 1


def build_tiny_ltx_components() -> dict[str, Any]:
    """LTX-Video parts as diffusers' own LTX image-to-video tests size them; the T5 encoder and
    tokenizer are the tiny ones built in code for the FLUX set (no hub download)."""
    from studio.engines.tiny import HIDDEN, build_text_encoders, build_tokenizers
    from studio.runtime.compat import ensure_torchvision

    ensure_torchvision()
    import torch
    from diffusers import AutoencoderKLLTXVideo, FlowMatchEulerDiscreteScheduler, LTXVideoTransformer3DModel

    clip_tok, t5_tok = build_tokenizers()
    _, t5 = build_text_encoders(len(clip_tok), len(t5_tok))
    torch.manual_seed(0)
    transformer = LTXVideoTransformer3DModel(
        in_channels=8, out_channels=8, patch_size=1, patch_size_t=1, num_attention_heads=4, attention_head_dim=8,
        cross_attention_dim=32, num_layers=1, caption_channels=HIDDEN)
    torch.manual_seed(0)
    vae = AutoencoderKLLTXVideo(
        in_channels=3, out_channels=3, latent_channels=8, block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8), layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1), spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False),
        decoder_inject_noise=(False, False, False, False, False), upsample_residual=(False, False, False, False),
        upsample_factor=(1, 1, 1, 1), timestep_conditioning=False, patch_size=1, patch_size_t=1,
        encoder_causal=True, decoder_causal=False)
    vae.use_framewise_encoding = False
    vae.use_framewise_decoding = False
    torch.manual_seed(0)
    return {"transformer": transformer.eval(), "vae": vae.eval(), "scheduler": FlowMatchEulerDiscreteScheduler(),
            "text_encoder": t5, "tokenizer": t5_tok}


def save_tiny_ltx(folder: Path) -> Path:
    """Write the tiny set as `LTXConditionPipeline.save_pretrained` does for the real repo."""
    from studio.runtime.compat import ensure_torchvision

    ensure_torchvision()
    from diffusers import LTXConditionPipeline

    LTXConditionPipeline(**build_tiny_ltx_components()).save_pretrained(str(folder))
    return folder


def tiny_ltx_dir(settings: "Settings") -> Path:
    from studio.engines.tiny import versioned_dir

    return versioned_dir(Path(settings.models_dir) / ".tiny-video" / "ltx-video", TINY_VERSION, save_tiny_ltx,
                         "LTX-Video set")


def create_tiny(settings: "Settings") -> AIVideoEngine:
    """The LTX engine over the tiny set on the CPU (tests, benchmarks, `--video-engine tiny`)."""
    engine = AIVideoEngine(settings.models_dir, TINY_LTX, folder=tiny_ltx_dir(settings), name="tiny", device="cpu",
                           max_sequence_length=16)
    engine.caps = dataclasses.replace(engine.caps, needs_gpu=False, needs_weights=False)
    return engine
