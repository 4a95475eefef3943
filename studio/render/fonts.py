"""Hangul fonts: find one on this machine, load it at any size, drop characters it cannot draw.

Lookup order: `FITAD_FONT` (a .ttf/.otf/.ttc path), Debian's fonts-nanum
(/usr/share/fonts/truetype/nanum), the Noto Sans CJK file shipped by the `manimgx-fonts-cjk` pip
package (a variable-weight .ttc: face "Noto Sans CJK KR", weights Regular/Bold/Black), then a
few common system paths. A candidate is accepted only if it really draws Hangul (its glyphs for
가/한/힣 differ from its missing-glyph box). None found -> a Korean `StudioError` that says what
to install.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import ImageFont

from studio.errors import StudioError

log = logging.getLogger(__name__)

Weight = Literal["regular", "bold", "black"]


NANUM_DIR = Path("/usr/share/fonts/truetype/nanum")
_NANUM = {"regular": ("NanumGothic.ttf", "NanumSquareR.ttf", "NanumBarunGothic.ttf"),
          "bold": ("NanumGothicBold.ttf", "NanumSquareB.ttf", "NanumBarunGothicBold.ttf"),
          "black": ("NanumGothicExtraBold.ttf", "NanumSquareEB.ttf", "NanumGothicBold.ttf")}
_SYSTEM = (Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc"),
           Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
           Path("/usr/share/fonts/truetype/noto/NotoSansKR-Bold.ttf"),
           Path("/System/Library/Fonts/AppleSDGothicNeo.ttc"),
           Path("C:/Windows/Fonts/malgunbd.ttf"), Path("C:/Windows/Fonts/malgun.ttf"))
_VARIATION = {"regular": "Regular", "bold": "Bold", "black": "Black"}
_PROBE = "가한힣"
_MISSING = "\U0010fffd"  # a private-use code point no font draws


@dataclass(frozen=True)
class FontFace:
    path: Path
    index: int = 0
    variable: bool = False

    def load(self, size: int, weight: Weight = "bold") -> ImageFont.FreeTypeFont:
        font = ImageFont.truetype(str(self.path), size=size, index=self.index)
        if self.variable:
            try:
                font.set_variation_by_name(_VARIATION[weight])
            except (OSError, ValueError) as exc:
                log.debug("font %s has no %s instance: %s", self.path, weight, exc)
        return font


def _draws_hangul(face: FontFace) -> bool:
    try:
        font = face.load(32)
    except OSError as exc:
        log.debug("cannot open font %s: %s", face.path, exc)
        return False
    missing = _glyph_key(font, _MISSING)
    glyphs = [_glyph_key(font, ch) for ch in _PROBE]
    return all(g and g != missing for g in glyphs) and len(set(glyphs)) == len(glyphs)


def _glyph_key(font: ImageFont.FreeTypeFont, ch: str) -> bytes:
    """The rendered glyph as bytes (a missing glyph renders as the font's .notdef box)."""
    mask = font.getmask(ch)
    return f"{mask.size}".encode() + np.asarray(mask).tobytes()


def _ttc_faces(path: Path) -> list[FontFace]:
    faces = []
    for index in range(16):
        try:
            font = ImageFont.truetype(str(path), size=16, index=index)
        except OSError:
            break
        family = font.getname()[0] or ""
        try:
            variable = bool(font.get_variation_axes())
        except OSError:
            variable = False
        faces.append((0 if " KR" in family or "Korean" in family else 1, index, FontFace(path, index, variable)))
    return [f for _, _, f in sorted(faces, key=lambda x: (x[0], x[1]))]


def _pip_noto() -> Path | None:
    spec = importlib.util.find_spec("manimgx_fonts_cjk")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        for name in sorted(os.listdir(folder)):
            if name.lower().endswith((".ttc", ".otf", ".ttf")):
                return Path(folder) / name
    return None


def _candidates(weight: Weight) -> list[Path]:
    out: list[Path] = []
    env = os.environ.get("FITAD_FONT")
    if env:
        out.append(Path(env))
    out.extend(NANUM_DIR / name for name in _NANUM[weight])
    noto = _pip_noto()
    if noto is not None:
        out.append(noto)
    out.extend(_SYSTEM)
    return out


@lru_cache(maxsize=8)
def find_hangul_face(weight: Weight = "bold") -> FontFace:
    for path in _candidates(weight):
        if not path.is_file():
            continue
        faces = _ttc_faces(path) if path.suffix.lower() == ".ttc" else [FontFace(path, 0, _is_variable(path))]
        for face in faces:
            if _draws_hangul(face):
                log.info("Hangul font (%s): %s#%d", weight, face.path, face.index)
                return face
    raise StudioError("render.no_hangul_font")


def _is_variable(path: Path) -> bool:
    try:
        return bool(ImageFont.truetype(str(path), size=16).get_variation_axes())
    except OSError:
        return False


class Fonts:
    """Sized fonts on demand (cached) plus a check for characters the font cannot draw."""

    def __init__(self, faces: dict[str, FontFace] | None = None) -> None:
        self._faces = dict(faces or {})
        self._cache: dict[tuple[str, int], ImageFont.FreeTypeFont] = {}
        self._supported: dict[tuple[str, str], bool] = {}
        self._missing: dict[str, bytes] = {}
        self._lock = threading.Lock()

    @classmethod
    def default(cls) -> "Fonts":
        return _default_fonts()

    def face(self, weight: Weight = "bold") -> FontFace:
        face = self._faces.get(weight)
        if face is None:
            face = find_hangul_face(weight)
            self._faces[weight] = face
        return face

    def get(self, size: int, weight: Weight = "bold") -> ImageFont.FreeTypeFont:
        size = max(6, int(size))
        key = (weight, size)
        with self._lock:
            font = self._cache.get(key)
        if font is None:
            font = self.face(weight).load(size, weight)
            with self._lock:
                if len(self._cache) > 512:
                    self._cache.clear()
                self._cache[key] = font
        return font

    def supports(self, ch: str, weight: Weight = "bold") -> bool:
        if ch.isspace() or ch.isascii():
            return True
        key = (weight, ch)
        hit = self._supported.get(key)
        if hit is not None:
            return hit
        font = self.get(24, weight)
        missing = self._missing.get(weight)
        if missing is None:
            missing = _glyph_key(font, _MISSING)
            self._missing[weight] = missing
        ok = _glyph_key(font, ch) != missing
        self._supported[key] = ok
        return ok

    def drawable(self, text: str, weight: Weight = "bold") -> str:
        """`text` without characters the font would draw as tofu boxes (emoji, rare symbols)."""
        kept = "".join(ch for ch in text if ch not in "\u200d\ufe0f\ufe0e" and self.supports(ch, weight))
        if kept == text:
            return text
        return re.sub(r"[ \t]{2,}", " ", kept).strip()


@lru_cache(maxsize=1)
def _default_fonts() -> Fonts:
    return Fonts()
