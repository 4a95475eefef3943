"""Presets: flat, versioned data in `presets/*.json`, validated on load.

Each file is `{"version": N, "items": [...]}`. A file with a newer version than this code knows,
or an item that fails validation, raises `PresetError` naming the file and the item, so a broken
preset is caught by the tests rather than by the owner.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

log = logging.getLogger(__name__)

SUPPORTED_VERSION = 1
HEX = r"^#[0-9a-fA-F]{6}$"
Backdrop = Literal["sweep", "split", "bokeh", "marble", "wood", "linen"]


class PresetError(ValueError):
    pass


class _Item(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    name_ko: str = Field(min_length=1)
    name_en: str = Field(min_length=1)

    def name(self, lang: str) -> str:
        return self.name_en if lang == "en" else self.name_ko


class Industry(_Item):
    scene_en: str = Field(min_length=3)
    prompt_fragments_en: list[str] = Field(min_length=1)
    person_outfit_en: str = Field(min_length=3)
    palette: list[str] = Field(min_length=2)
    copy_tone: Literal["friendly", "premium", "playful", "trendy"]
    backdrop: Backdrop
    hashtags_ko: list[str] = Field(min_length=8)
    hashtags_en: list[str] = Field(min_length=3)
    products_ko: list[str] = Field(min_length=2)

    @field_validator("palette")
    @classmethod
    def _hex(cls, v: list[str]) -> list[str]:
        import re

        bad = [c for c in v if not re.match(HEX, c)]
        if bad:
            raise ValueError(f"palette colours must be #rrggbb, got {bad}")
        return v


class Style(_Item):
    prompt_en: str = Field(min_length=3)
    backdrop: Backdrop
    lighting_en: str = ""


class SafeZone(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    top: int = Field(ge=0)
    bottom: int = Field(ge=0)
    left: int = Field(ge=0)
    right: int = Field(ge=0)


class SnsSize(_Item):
    platform: str
    width: int = Field(ge=256, le=4096)
    height: int = Field(ge=256, le=4096)
    safe_zone: SafeZone

    @property
    def aspect(self) -> float:
        return self.width / self.height

    def safe_box(self) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of the area where text may go."""
        z = self.safe_zone
        return (z.left, z.top, self.width - z.right, self.height - z.bottom)


class ModelEntry(_Item):
    def note(self, lang: str) -> str:
        """The note in the owner's language (Korean when there is no English one)."""
        return getattr(self, f"note_{lang}", "") or self.note_ko

    purpose: Literal["inpaint", "controlnet", "text2image", "face", "pose", "matting", "video", "upscale", "llm",
                     "person", "hands"]
    repo_id: str
    files: list[str] = Field(default_factory=list)
    local_dir: str
    disk_gb: float = Field(ge=0)
    vram_gb: float = Field(ge=0)
    licence: str
    licence_url: str = ""
    commercial_use: bool
    outputs_commercial: bool
    gated: bool = False
    note_ko: str = ""
    note_en: str = ""
    # hf: the model hub; rembg: rembg's release assets (runtime.rembg_models, `url` + `checksum`); ollama: `ollama pull`;
    # mediapipe-wheel: installed with the studio (runtime.bundled_models)
    source: Literal["hf", "rembg", "ollama", "manual", "mediapipe-wheel"] = "hf"
    wheel_path: str = ""        # mediapipe-wheel: the file's path inside the pinned wheel
    sha256: str = ""            # mediapipe-wheel: checked after every extraction
    size_bytes: int = 0
    # rembg: the release asset the file is fetched from and its checksum ("md5:<hex>" or "sha256:<hex>"),
    # as rembg's own session code publishes them (runtime.rembg_models downloads and checks with these)
    url: str = ""
    checksum: str = Field(default="", pattern=r"^$|^(md5|sha256):[0-9a-f]+$")
    # ControlNets: the model card's recommended pose settings (conditioning_scale, guidance_end, guidance,
    # guidance_min, guidance_max); the one home of these numbers (engine, sliders and form read them)
    pose_defaults: dict[str, float] = Field(default_factory=dict)


@dataclass(frozen=True)
class Presets:
    directory: Path

    def _load(self, name: str, model: type[BaseModel]) -> list:
        path = self.directory / f"{name}.json"
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise PresetError(f"preset file missing: {path}") from exc
        except json.JSONDecodeError as exc:
            raise PresetError(f"{path}: not valid JSON ({exc})") from exc
        version = raw.get("version")
        if not isinstance(version, int) or version > SUPPORTED_VERSION:
            raise PresetError(f"{path}: version {version!r} is not supported (max {SUPPORTED_VERSION})")
        items = []
        seen: set[str] = set()
        for i, item in enumerate(raw.get("items", [])):
            try:
                parsed = model.model_validate(item)
            except ValidationError as exc:
                raise PresetError(f"{path}: item {i} ({item.get('id', '?')}): {exc}") from exc
            if parsed.id in seen:  # type: ignore[attr-defined]
                raise PresetError(f"{path}: duplicate id {parsed.id}")  # type: ignore[attr-defined]
            seen.add(parsed.id)  # type: ignore[attr-defined]
            items.append(parsed)
        if not items:
            raise PresetError(f"{path}: no items")
        return items

    def raw(self, name: str) -> dict:
        """A preset file that a later module validates itself (e.g. overlay layouts)."""
        return json.loads((self.directory / f"{name}.json").read_text(encoding="utf-8"))

    @cached_property
    def industries(self) -> list[Industry]:
        return self._load("industries", Industry)

    @cached_property
    def styles(self) -> list[Style]:
        return self._load("styles", Style)

    @cached_property
    def sns_sizes(self) -> list[SnsSize]:
        return self._load("sns_sizes", SnsSize)

    @cached_property
    def models(self) -> list[ModelEntry]:
        return self._load("models", ModelEntry)

    def industry(self, id_: str) -> Industry:
        return _pick(self.industries, id_)

    def style(self, id_: str) -> Style:
        return _pick(self.styles, id_)

    def sns(self, id_: str) -> SnsSize:
        return _pick(self.sns_sizes, id_)

    def model(self, id_: str) -> ModelEntry:
        return _pick(self.models, id_)

    def validate_all(self) -> None:
        for name in ("industries", "styles", "sns_sizes", "models"):
            getattr(self, name)


def _pick(items: list, id_: str):
    """Fooocus habit: an unknown id falls back to the first (default) item, with a log line."""
    for item in items:
        if item.id == id_:
            return item
    log.warning("unknown preset id %r; using default %r", id_, items[0].id)
    return items[0]


POSE_CONTROLNET = "controlnet_union_pro2"


@lru_cache(maxsize=4)
def pose_defaults(presets_dir: Path | None = None) -> dict[str, float]:
    """The pose ControlNet's model-card settings, from the catalogue (presets/models.json)."""
    from studio.config import REPO_ROOT

    return dict(Presets(presets_dir or REPO_ROOT / "presets").model(POSE_CONTROLNET).pose_defaults)
