"""The engine protocol every generator implements, and the job it receives.

Mask convention (the FLUX Fill / diffusers one): a single-channel "L" image where
255 = regenerate this pixel, 0 = keep the owner's pixel. Values in between are a soft blend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Protocol, runtime_checkable

from PIL import Image

from studio.runtime.jobs import CancelToken, ProgressFn

if TYPE_CHECKING:
    from studio.schema import Notice


@dataclass(frozen=True)
class EngineCaps:
    """What an engine can do: data the UI reads (no if-chains over engine names)."""

    inpaint: bool = True
    changes_outfit: bool = False      # can invent new clothes (needs a generative model)
    uses_pose_control: bool = False   # consumes an OpenPose control image
    text2image: bool = False
    image2video: bool = False
    needs_gpu: bool = False
    needs_weights: bool = False
    # working resolution: generative engines work near `work_megapixels` in multiples of
    # `size_multiple` (FLUX: ~1 MP, 16 px); None = work at the output size (compositors)
    work_megapixels: float | None = 1.0
    size_multiple: int = 16


@dataclass
class InpaintJob:
    image: Image.Image                 # RGB, width x height
    mask: Image.Image                  # L, same size; 255 = regenerate, 0 = keep
    prompt: str                        # English prompt for the generator
    width: int
    height: int
    seed: int = 0
    steps: int = 28
    guidance: float = 30.0             # FLUX Fill's recommended guidance
    num_images: int = 1
    control_image: Image.Image | None = None   # OpenPose skeleton, RGB, same size
    # ControlNet settings: None = the ControlNet's model-card value (Union Pro 2.0 pose: scale 0.9,
    # end 0.65, its own guidance 3.5 within its training range 1..7); the owner's values win
    controlnet_scale: float | None = None
    control_start: float = 0.0
    control_end: float | None = None
    control_guidance: float | None = None
    control_mode: int | None = None    # Union ControlNet mode; None: pose for that net (InstantX: 4)
    industry: str = "cafe"             # lite engine picks backdrops from these
    style: str = "studio"
    subject: str = "product"           # "product" | "person" | "mixed"
    extras: dict = field(default_factory=dict)
    # how far from the given pixels the engine may go inside the mask (1.0 = from noise; the
    # detail pass uses less so a redrawn hand keeps its pose); engines without it ignore it
    strength: float = 1.0


@runtime_checkable
class Engine(Protocol):
    name: str
    caps: EngineCaps

    def inpaint(
        self,
        job: InpaintJob,
        progress: ProgressFn | None = None,
        cancel: CancelToken | None = None,
    ) -> "EngineResult":
        """Return `job.num_images` RGB images of size (job.width, job.height), with notices."""
        ...


EngineFactory = Callable[[], Engine]


# --------------------------------------------------------------------------------------------
# Tasks beyond inpainting, and what every engine call returns
# --------------------------------------------------------------------------------------------
TASKS: tuple[str, ...] = ("inpaint", "text2image", "image2video")


@dataclass
class EngineResult:
    """What an engine call hands back: its images (or video frames) and the notices the owner
    must see (a lower memory plan, a lower resolution, ControlNet dropped, a fallback used...)."""

    images: list[Image.Image]
    notices: list["Notice"] = field(default_factory=list)

    # a result reads as the sequence of its images (`result[0]`, `len(result)`, `for im in result`)
    def __getitem__(self, i: int) -> Image.Image:
        return self.images[i]

    def __len__(self) -> int:
        return len(self.images)

    def __iter__(self) -> Any:
        return iter(self.images)


@dataclass
class Text2ImageJob:
    prompt: str                        # English prompt
    width: int = 1024
    height: int = 1024
    seed: int = 0
    steps: int | None = None           # None: the model's recommended steps
    guidance: float | None = None      # None: the model's recommended guidance
    num_images: int = 1
    negative_prompt: str = ""
    extras: dict = field(default_factory=dict)


@dataclass
class Image2VideoJob:
    image: Image.Image                 # RGB first frame
    prompt: str = ""                   # English prompt (AI engines); motion engines may ignore it
    width: int = 1080
    height: int = 1920
    seconds: float = 5.0
    fps: int = 30
    seed: int = 0
    steps: int | None = None
    guidance: float | None = None
    keep_mask: Any = None              # optional np.ndarray (255 = hold these pixels steady)
    extras: dict = field(default_factory=dict)


@dataclass
class VideoResult:
    """An engine's clip. `frames` may be a list OR a one-shot lazy iterator of RGB frames (PIL
    images or uint8 HxWx3 arrays): engines that make many large frames (motion) yield them one at a
    time so the caller streams them into the encoder and memory stays bounded. `count` is the
    number of frames (progress, and what a lazy iterator will yield)."""

    frames: Iterable[Any]
    fps: float
    notices: list["Notice"] = field(default_factory=list)
    count: int | None = None

    def frame_count(self) -> int:
        if self.count is not None:
            return int(self.count)
        return len(self.frames) if isinstance(self.frames, (list, tuple)) else 0


@runtime_checkable
class Text2ImageEngine(Protocol):
    name: str
    caps: EngineCaps

    def text2image(self, job: Text2ImageJob, progress: ProgressFn | None = None,
                   cancel: CancelToken | None = None) -> EngineResult: ...


@runtime_checkable
class Image2VideoEngine(Protocol):
    name: str
    caps: EngineCaps

    def image2video(self, job: Image2VideoJob, progress: ProgressFn | None = None,
                    cancel: CancelToken | None = None) -> VideoResult: ...
