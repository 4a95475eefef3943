"""Typed requests and results for the ad workflows (built by keyword in the UI handlers)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    from studio.store.history import Record

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels of the uploaded image


@dataclass(frozen=True)
class GenerationOptions:
    """The advanced accordion. Every value is validated with a fallback (see `clean`)."""

    steps: int = 28
    guidance: float = 30.0
    controlnet_scale: float | None = None  # None: the ControlNet's model-card value (catalogue)
    control_start: float = 0.0
    control_end: float | None = None       # None: the ControlNet's model-card value (catalogue)
    mask_dilate: int = 8
    mask_feather: int = 12
    seed: int = -1                      # -1: a random seed per run (recorded in the history)
    num_images: int = 1

    def clean(self) -> "GenerationOptions":
        def clamp(v: Any, lo: float, hi: float, default: float) -> float:
            try:
                f = float(v)
            except (TypeError, ValueError):
                return default
            return default if f != f else min(hi, max(lo, f))

        from studio.presets import pose_defaults

        d = GenerationOptions()
        card = pose_defaults()
        return GenerationOptions(
            steps=int(clamp(self.steps, 1, 100, d.steps)),
            guidance=clamp(self.guidance, 0.0, 100.0, d.guidance),
            controlnet_scale=None if self.controlnet_scale is None
            else clamp(self.controlnet_scale, 0.0, 2.0, card["conditioning_scale"]),
            control_start=clamp(self.control_start, 0.0, 1.0, d.control_start),
            control_end=None if self.control_end is None
            else max(clamp(self.control_start, 0.0, 1.0, d.control_start),
                     clamp(self.control_end, 0.0, 1.0, card["guidance_end"])),
            mask_dilate=int(clamp(self.mask_dilate, 0, 128, d.mask_dilate)),
            mask_feather=int(clamp(self.mask_feather, 0, 128, d.mask_feather)),
            seed=int(clamp(self.seed, -1, 2**31 - 1, d.seed)),
            num_images=int(clamp(self.num_images, 1, 8, d.num_images)),
        )


@dataclass
class AdRequest:
    image: Image.Image                  # RGB, already through studio.vision.io.load_image
    industry: str = "cafe"
    style: str = "studio"
    prompt_ko: str = ""
    prompt_en: str | None = None        # the owner's edited English prompt, used verbatim
    sns_size: str = "ig_portrait"
    options: GenerationOptions = field(default_factory=GenerationOptions)


@dataclass
class PersonRequest(AdRequest):
    face_index: int = 0                 # faces are ordered largest first
    include_hair: bool = True
    include_neck: bool = False
    keep_all_people: bool = False       # False: only the chosen face's person; the others are left out
    detail: bool = True                 # the detail pass (hands, generated faces) after an AI engine
    detail_strength: float = 0.6        # how much of a hand/face it redraws (0.1..1.0)


@dataclass
class ProductRequest(AdRequest):
    alpha: np.ndarray | None = None     # an uploaded transparent PNG's alpha (255 = product)
    product_box: Box | None = None      # the owner's box; None = find the product automatically
    strokes: np.ndarray | None = None   # touch-up brush, H x W uint8: 0 none, 1 keep, 2 remove (issue 18)
    shadow: bool = True
    reflection: bool = False
    sns_size: str = "ig_portrait"


@dataclass
class AdvancedRequest(AdRequest):
    face_index: int = 0
    include_hair: bool = True
    product_box: Box | None = None      # drawn by the owner; None = cut-out of the salient object
    alpha: np.ndarray | None = None
    strokes: np.ndarray | None = None   # touch-up brush for the product: 0 none, 1 keep, 2 remove
    keep_all_people: bool = False
    detail: bool = True
    detail_strength: float = 0.6


WorkflowName = Literal["person", "product", "advanced"]


@dataclass
class Notice:
    """A message key for the owner (translated in the UI's language)."""

    key: str
    fields: dict[str, Any] = field(default_factory=dict)

    def as_record(self) -> dict[str, Any]:
        """How a history row keeps it: key + fields, re-translated whenever it is shown."""
        return {"key": self.key, "fields": dict(self.fields)}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "Notice":
        """Back from a history row / batch file (`as_record`'s inverse)."""
        return cls(str(record["key"]), dict(record.get("fields") or {}))

    def text(self, lang: str) -> str:
        from studio.i18n import t

        return t(self.key, lang, **self.fields)


@dataclass
class AdResult:
    workflow: WorkflowName
    images: list[Image.Image]
    records: list["Record"]
    prompt_en: str
    engine: str
    seeds: list[int]
    framed: Image.Image                 # the upload as framed for the output size
    keep_mask: np.ndarray               # 255 = the owner's pixels kept, at output size
    faces: list[Any] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    layout: str = "cutout"              # "cutout" or the fallback layout used ("card", "extend")
    confidence: float | None = None     # the cut-out's confidence (0..1), when one was made
    source_keep: np.ndarray | None = None  # the keep mask on the upload (what the preview shows)
