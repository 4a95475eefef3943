"""Text overlays for ads: layouts, Korean line breaks, size-to-fit and measured contrast.

`render_overlay(image, spec, sns, fonts)` crops/resizes the image to the SNS size, draws the layout's
plate, the corner price badge, the logo and the optional "AI 생성" label, then sets each text block:

- Lines break between 어절 (space-separated Korean words), never inside one (unless a single word
  is wider than the box at the smallest size).
- The font size is the largest that fits the block's box (binary search).
- Every block box lies inside the SNS preset's safe box (`SnsSize.safe_box()`), so no text, outline
  or shadow leaves it.
- The colour is picked by measuring the real pixels next to the glyphs: white or near-black (or
  the preferred colour), then a soft shadow, then an outline, until the worst pixel gives a WCAG
  contrast of at least 4.5. The measured value is reported per block.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from studio.config import REPO_ROOT
from studio.errors import InputError
from studio.render.contrast import AA_TEXT, best_text_colour, hex_to_rgb, ring_mask, worst_contrast
from studio.render.crop import smart_crop
from studio.render.fonts import Fonts, Weight

if TYPE_CHECKING:
    from studio.presets import Presets, SnsSize

log = logging.getLogger(__name__)


Role = Literal["headline", "sub_copy", "cta", "badge", "ai_label"]
Corner = Literal["top_left", "top_right", "bottom_left", "bottom_right"]
Effect = Literal["auto", "shadow", "outline"]
RGB = tuple[int, int, int]
IntBox = tuple[int, int, int, int]

AI_LABEL_KO = "AI 생성"
WHITE: RGB = (255, 255, 255)
INK: RGB = (17, 17, 17)


# --- layout presets ----------------------------------------------------------------------------
class BlockDef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    role: Role
    box: tuple[float, float, float, float]
    max_size: float = Field(gt=0, le=0.5)
    max_lines: int = Field(ge=1, le=6)
    align: Literal["left", "center", "right"] = "center"
    valign: Literal["top", "middle", "bottom"] = "middle"
    weight: Weight = "bold"
    style: Literal["text", "pill"] = "text"


class PlateDef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    shape: Literal["rect", "round", "ribbon"]
    box: tuple[float, float, float, float]
    bleed: list[Literal["left", "right", "top", "bottom"]] = Field(default_factory=list)
    colour: Literal["dark", "light", "accent"] = "dark"
    opacity: float = Field(default=0.8, ge=0, le=1)
    fade: float = Field(default=0.0, ge=0, le=0.3)


class LayoutDef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    name_ko: str
    name_en: str
    plate: PlateDef | None = None
    blocks: list[BlockDef]
    badge: bool = False
    badge_corner: Corner = "top_right"
    logo_corner: Corner = "top_left"

    def name(self, lang: str) -> str:
        return self.name_en if lang == "en" else self.name_ko


def load_layouts(presets: "Presets | None" = None) -> dict[str, LayoutDef]:
    path = (presets.directory if presets is not None else REPO_ROOT / "presets") / "overlay_layouts.json"
    return _load_layouts(str(path))


@lru_cache(maxsize=4)
def _load_layouts(path: str) -> dict[str, LayoutDef]:
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        items = [LayoutDef.model_validate(x) for x in raw["items"]]
    except (OSError, KeyError, json.JSONDecodeError, ValidationError) as exc:
        raise InputError("render.bad_layout", err=str(exc)[:200]) from exc
    if not items:
        raise InputError("render.bad_layout", err="no items")
    return {x.id: x for x in items}


# --- the request -------------------------------------------------------------------------------
@dataclass
class OverlaySpec:
    headline: str = ""
    sub_copy: str = ""
    cta: str = ""
    layout: str = "bottom_bar"
    badge_text: str = ""  # e.g. "20%\n할인" or "9,900원"; empty = no badge
    badge_corner: Corner | None = None  # None = the layout's default
    accent: str = "#e4572e"
    dark: str = "#141414"
    light: str = "#fbf8f3"
    text_colour: str | None = None  # a preferred colour; used only when it meets the contrast target
    effect: Effect = "auto"
    plate_opacity: float | None = None  # None = the layout's default
    logo: Image.Image | None = None
    logo_corner: Corner | None = None
    logo_scale: float = 0.18  # logo width as a fraction of the safe-box width
    ai_label: bool = False
    ai_label_text: str = AI_LABEL_KO
    focus_box: tuple[float, float, float, float] | None = None

    def texts(self) -> dict[str, str]:
        return {"headline": self.headline, "sub_copy": self.sub_copy, "cta": self.cta}


@dataclass
class PlacedText:
    role: str
    text: str
    lines: list[str]
    font_size: int
    box: IntBox  # the block's box (inside the safe box)
    ink_box: IntBox  # where pixels were drawn (glyphs + outline/shadow)
    colour: RGB
    effect: Literal["none", "shadow", "outline"]
    contrast: float  # worst WCAG ratio between the text colour and the pixels next to the glyphs
    origin: tuple[int, int]  # top-left of `mask` in image coordinates
    mask: np.ndarray = field(repr=False)  # uint8 glyph coverage (fill only)


@dataclass
class RenderResult:
    image: Image.Image
    blocks: list[PlacedText]
    safe_box: IntBox
    layout: str


# --- geometry ----------------------------------------------------------------------------------
def _abs_box(frac: tuple[float, float, float, float], safe: IntBox) -> IntBox:
    sx0, sy0, sx1, sy1 = safe
    sw, sh = sx1 - sx0, sy1 - sy0
    x0 = sx0 + int(round(frac[0] * sw))
    y0 = sy0 + int(round(frac[1] * sh))
    x1 = sx0 + int(round(frac[2] * sw))
    y1 = sy0 + int(round(frac[3] * sh))
    return max(sx0, x0), max(sy0, y0), min(sx1, x1), min(sy1, y1)


def _intersects(a: IntBox, b: IntBox) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _subtract(box: IntBox, obstacle: IntBox, gap: int) -> IntBox:
    """The largest part of `box` left beside/above/below `obstacle` (with a gap)."""
    if not _intersects(box, obstacle):
        return box
    x0, y0, x1, y1 = box
    ox0, oy0, ox1, oy1 = obstacle
    parts = [(x0, y0, min(x1, ox0 - gap), y1), (max(x0, ox1 + gap), y0, x1, y1),
             (x0, y0, x1, min(y1, oy0 - gap)), (x0, max(y0, oy1 + gap), x1, y1)]
    parts = [p for p in parts if p[2] > p[0] and p[3] > p[1]]
    if not parts:
        return (x0, y0, x0, y0)
    # prefer keeping the height (text reads along the line), then area
    return max(parts, key=lambda p: ((p[3] - p[1]) >= 0.6 * (y1 - y0), (p[2] - p[0]) * (p[3] - p[1])))


def _corner_box(safe: IntBox, corner: str, w: int, h: int) -> IntBox:
    sx0, sy0, sx1, sy1 = safe
    x0 = sx0 if corner.endswith("left") else sx1 - w
    y0 = sy0 if corner.startswith("top") else sy1 - h
    return x0, y0, x0 + w, y0 + h


# --- text fitting ------------------------------------------------------------------------------
def wrap_eojeol(text: str, font: ImageFont.FreeTypeFont, max_width: float,
                break_words: bool = False) -> list[str] | None:
    """Greedy line breaks between 어절; None if a word alone is wider than `max_width`.

    With `break_words` (the last resort at the smallest size) an over-long word is split by
    characters instead.
    """
    lines: list[str] = []
    for paragraph in text.split("\n"):
        words = paragraph.split()
        current = ""
        for word in words:
            cand = f"{current} {word}" if current else word
            if font.getlength(cand) <= max_width:
                current = cand
                continue
            if current:
                lines.append(current)
                current = ""
            if font.getlength(word) <= max_width:
                current = word
                continue
            if not break_words:
                return None
            piece = ""
            for ch in word:
                if piece and font.getlength(piece + ch) > max_width:
                    lines.append(piece)
                    piece = ""
                piece += ch
            current = piece
        if current:
            lines.append(current)
    return lines


@dataclass
class _Fit:
    font: ImageFont.FreeTypeFont
    size: int
    lines: list[str]
    line_h: int
    asc: int
    desc: int
    pad: int


def _pad(size: int) -> int:
    return max(3, int(math.ceil(size * 0.1)) + 1)


def _text_height(n: int, line_h: int, asc: int, desc: int) -> int:
    return (n - 1) * line_h + asc + desc


def fit_text(text: str, fonts: Fonts, box: IntBox, max_size: int, max_lines: int, weight: Weight = "bold",
             min_size: int = 12, line_spacing: float = 1.08) -> _Fit | None:
    """The largest font size (<= max_size) at which `text` fits `box` in <= max_lines lines."""
    bw, bh = box[2] - box[0], box[3] - box[1]
    if bw <= 0 or bh <= 0 or not text.strip():
        return None

    def attempt(size: int, last_resort: bool = False) -> _Fit | None:
        font = fonts.get(size, weight)
        asc, desc = font.getmetrics()
        pad = _pad(size)
        inner_w, inner_h = bw - 2 * pad, bh - 2 * pad
        if inner_w <= 0 or inner_h <= 0:
            return None
        lines = wrap_eojeol(text, font, inner_w, break_words=last_resort)
        if lines is None:
            return None
        line_h = int(round((asc + desc) * line_spacing))
        if last_resort:
            keep = max(1, min(max_lines, (inner_h - asc - desc) // max(1, line_h) + 1))
            if len(lines) > keep:
                lines = lines[:keep]
                last = lines[-1]
                while last and font.getlength(last + "…") > inner_w:
                    last = last[:-1]
                lines[-1] = last + "…"
            if _text_height(len(lines), line_h, asc, desc) > inner_h:
                return None
            return _Fit(font, size, lines, line_h, asc, desc, pad)
        if len(lines) > max_lines or _text_height(len(lines), line_h, asc, desc) > inner_h:
            return None
        return _Fit(font, size, lines, line_h, asc, desc, pad)

    hi = max(min_size, int(max_size))
    best = attempt(hi)
    if best is not None:
        return _balance(text, best, bw - 2 * best.pad)
    lo = min_size
    found = attempt(lo)
    if found is None:
        return attempt(lo, last_resort=True)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        got = attempt(mid)
        if got is not None:
            lo, found = mid, got
        else:
            hi = mid
    return _balance(text, found, bw - 2 * found.pad)


def _balance(text: str, fit: _Fit, inner_w: int) -> _Fit:
    """Same number of lines, but as even as possible (no lone word on the last line)."""
    n = len(fit.lines)
    if n < 2 or "\n" in text:
        return fit
    lo = max(fit.font.getlength(w) for w in text.split())
    hi = float(inner_w)
    best = fit.lines
    for _ in range(8):
        mid = (lo + hi) / 2
        lines = wrap_eojeol(text, fit.font, mid)
        if lines is not None and len(lines) <= n:
            hi, best = mid, lines
        else:
            lo = mid
    return _Fit(fit.font, fit.size, best, fit.line_h, fit.asc, fit.desc, fit.pad)


def _line_positions(fit: _Fit, box: IntBox, align: str, valign: str) -> list[tuple[float, float, str]]:
    bx0, by0, bx1, by1 = box
    pad = fit.pad
    total_h = _text_height(len(fit.lines), fit.line_h, fit.asc, fit.desc)
    inner_h = (by1 - by0) - 2 * pad
    if valign == "top":
        top = by0 + pad
    elif valign == "bottom":
        top = by0 + pad + (inner_h - total_h)
    else:
        top = by0 + pad + (inner_h - total_h) / 2
    out = []
    for i, line in enumerate(fit.lines):
        y = top + i * fit.line_h
        if align == "left":
            x = bx0 + pad
        elif align == "right":
            x = bx1 - pad
        else:
            x = (bx0 + bx1) / 2
        out.append((x, y, line))
    return out


_ANCHOR = {"left": "la", "center": "ma", "right": "ra"}


def _draw_mask(size: tuple[int, int], positions: list[tuple[float, float, str]], origin: tuple[int, int],
               font: ImageFont.FreeTypeFont, anchor: str, stroke: int = 0) -> np.ndarray:
    img = Image.new("L", size, 0)
    draw = ImageDraw.Draw(img)
    ox, oy = origin
    for x, y, line in positions:
        draw.text((x - ox, y - oy), line, font=font, fill=255, anchor=anchor, stroke_width=stroke)
    return np.asarray(img)


def _blend(region: np.ndarray, alpha: np.ndarray, colour: RGB) -> None:
    """In place: region = region*(1-a) + colour*a; alpha is uint8 (0..255) or float (0..1).

    Only the bounding box of the non-zero alpha is touched; a uniform alpha uses addWeighted.
    """
    a8 = alpha if alpha.dtype == np.uint8 else np.clip(alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)
    x, y, w, h = cv2.boundingRect(a8)
    if w == 0 or h == 0:
        return
    sub = region[y:y + h, x:x + w]
    sa = a8[y:y + h, x:x + w]
    solid = np.empty_like(sub)
    solid[...] = colour
    sa = np.ascontiguousarray(sa)
    lo_f, hi_f, _, _ = cv2.minMaxLoc(sa)
    lo, hi = int(lo_f), int(hi_f)
    if lo == hi:
        k = lo / 255.0
        sub[...] = cv2.addWeighted(sub, 1.0 - k, solid, k, 0.0)
    elif lo == 0 and cv2.countNonZero(sa) == cv2.countNonZero(cv2.inRange(sa, hi, hi)):
        # a hard-edged shape of one opacity (plates): blend once, copy inside the shape
        k = hi / 255.0
        np.copyto(sub, cv2.addWeighted(sub, 1.0 - k, solid, k, 0.0), where=(sa > 0)[..., None])
    else:
        wa = sa.astype(np.float32) * (1.0 / 255.0)
        sub[...] = cv2.blendLinear(np.ascontiguousarray(sub), solid, 1.0 - wa, wa)


# --- the renderer ------------------------------------------------------------------------------
class _Renderer:
    def __init__(self, canvas: np.ndarray, spec: OverlaySpec, safe: IntBox, fonts: Fonts) -> None:
        self.canvas = canvas
        self.spec = spec
        self.safe = safe
        self.fonts = fonts
        self.accent = _colour(spec.accent)
        self.dark = _colour(spec.dark)
        self.light = _colour(spec.light)
        self.preferred = _colour(spec.text_colour) if spec.text_colour else None
        sw, sh = safe[2] - safe[0], safe[3] - safe[1]
        self.unit = sw  # font sizes are fractions of the safe-box width
        self.min_side = min(sw, sh)

    def plate(self, plate: PlateDef, opacity: float) -> None:
        h, w = self.canvas.shape[:2]
        x0, y0, x1, y1 = _abs_box(plate.box, self.safe)
        if "left" in plate.bleed:
            x0 = 0
        if "right" in plate.bleed:
            x1 = w
        if "top" in plate.bleed:
            y0 = 0
        if "bottom" in plate.bleed:
            y1 = h
        colour = {"dark": self.dark, "light": self.light, "accent": self.accent}[plate.colour]
        fade = int(round(plate.fade * (self.safe[3] - self.safe[1])))
        fy0 = max(0, y0 - fade) if "top" not in plate.bleed else y0
        fy1 = min(h, y1 + fade) if "bottom" not in plate.bleed else y1
        region = self.canvas[fy0:fy1, x0:x1]
        mask = Image.new("L", (x1 - x0, fy1 - fy0), 0)
        d = ImageDraw.Draw(mask)
        a = int(round(255 * opacity))
        ry0, ry1 = y0 - fy0, y1 - fy0
        if plate.shape == "round":
            radius = int(0.06 * self.min_side)
            d.rounded_rectangle((0, ry0, x1 - x0 - 1, ry1 - 1), radius=radius, fill=a)
        elif plate.shape == "ribbon":
            notch = int(0.35 * (y1 - y0))
            ww = x1 - x0
            d.polygon([(0, ry0), (ww, ry0), (ww - notch, (ry0 + ry1) / 2), (ww, ry1), (0, ry1),
                       (notch, (ry0 + ry1) / 2)], fill=a)
        else:
            d.rectangle((0, ry0, x1 - x0, ry1), fill=a)
        core = np.asarray(mask)
        _blend(region[ry0:ry1], np.ascontiguousarray(core[ry0:ry1]), colour)  # one opacity: fast path
        if fade > 0:  # a soft gradient edge on the open sides
            width = x1 - x0
            if ry0 > 0:
                ramp = np.linspace(0, 1, ry0, endpoint=False, dtype=np.float32) ** 1.5 * a
                _blend(region[:ry0], np.repeat(ramp[:, None] + 0.5, width, axis=1).astype(np.uint8), colour)
            if fy1 - y1 > 0:
                ramp = np.linspace(1, 0, fy1 - y1, endpoint=False, dtype=np.float32) ** 1.5 * a
                _blend(region[ry1:], np.repeat(ramp[:, None] + 0.5, width, axis=1).astype(np.uint8), colour)

    def badge(self, text: str, corner: str) -> IntBox:
        d = int(round(0.3 * self.min_side))
        box = _corner_box(self.safe, corner, d, d)
        x0, y0, x1, y1 = box
        region = self.canvas[y0:y1, x0:x1]
        ss = 2  # supersampled circle edge
        mask = Image.new("L", (d * ss, d * ss), 0)
        ImageDraw.Draw(mask).ellipse((0, 0, d * ss - 1, d * ss - 1), fill=255)
        mask = mask.resize((d, d), Image.Resampling.BILINEAR)
        _blend(region, np.asarray(mask), self.accent)
        inset = int(round(d * (1 - 1 / math.sqrt(2)) / 2)) + 1
        inner = (x0 + inset, y0 + inset, x1 - inset, y1 - inset)
        block = BlockDef(role="badge", box=(0, 0, 1, 1), max_size=0.5, max_lines=3, weight="black")
        placed = self.text_block(block, text, inner, max_size=int(d * 0.3))
        if placed is not None:
            self.placed.append(placed)
        return box

    def logo(self, logo: Image.Image, corner: str) -> IntBox:
        sw = self.safe[2] - self.safe[0]
        sh = self.safe[3] - self.safe[1]
        lw = max(8, int(round(self.spec.logo_scale * sw)))
        lh = max(8, int(round(lw * logo.height / max(1, logo.width))))
        if lh > 0.14 * sh:
            lh = max(8, int(0.14 * sh))
            lw = max(8, int(round(lh * logo.width / max(1, logo.height))))
        rgba = logo.convert("RGBA").resize((lw, lh), Image.Resampling.LANCZOS)
        box = _corner_box(self.safe, corner, lw, lh)
        x0, y0, x1, y1 = box
        arr = np.asarray(rgba)
        region = self.canvas[y0:y1, x0:x1]
        a = arr[..., 3:4].astype(np.float32) / 255.0
        region[...] = np.clip(region * (1 - a) + arr[..., :3] * a + 0.5, 0, 255).astype(np.uint8)
        return box

    def text_block(self, block: BlockDef, text: str, box: IntBox, max_size: int | None = None,
                   pill_colour: RGB | None = None, pill_opacity: float = 1.0) -> PlacedText | None:
        text = self.fonts.drawable(text.strip(), block.weight)
        if not text:
            return None
        size_cap = max_size if max_size is not None else int(round(block.max_size * self.unit))
        min_size = 11 if block.role == "ai_label" else 14
        fit = fit_text(text, self.fonts, box, size_cap, block.max_lines, block.weight, min_size=min_size)
        if fit is None:
            log.warning("text %r does not fit its box %s", text[:20], box)
            return None
        anchor = _ANCHOR[block.align]
        positions = _line_positions(fit, box, block.align, block.valign)
        bx0, by0, bx1, by1 = box
        size = (bx1 - bx0, by1 - by0)
        region = self.canvas[by0:by1, bx0:bx1]
        before = region.copy()
        fill = _draw_mask(size, positions, (bx0, by0), fit.font, anchor)
        fx, fy, fw, fh = cv2.boundingRect(fill)
        if fw == 0:
            return None
        if block.style == "pill" and pill_colour is not None:
            pad = fit.pad
            px0, px1 = max(0, fx - 3 * pad), min(size[0], fx + fw + 3 * pad)
            py0, py1 = max(0, fy - 2 * pad), min(size[1], fy + fh + 2 * pad)
            pill = Image.new("L", size, 0)
            ImageDraw.Draw(pill).rounded_rectangle((px0, py0, px1 - 1, py1 - 1), radius=(py1 - py0) // 2,
                                                   fill=int(round(255 * pill_opacity)))
            _blend(region, np.asarray(pill), pill_colour)
        r = max(2, int(round(fit.size * 0.05)))
        ring = ring_mask(fill, r)
        candidates = ([self.preferred] if self.preferred else []) + [WHITE, INK]
        colour, c = best_text_colour(region, ring, candidates)
        effect: Literal["none", "shadow", "outline"] = "none"
        working = region
        forced = self.forced.get(block.role)
        if forced is not None:  # a transparent layer: the decisions measured on the real picture
            colour = forced[0]
            c = 0.0 if forced[1] != "none" else AA_TEXT
        if forced is not None and forced[1] in ("shadow", "outline"):
            if forced[1] == "shadow":
                glow_col = INK if sum(colour) > 382 else WHITE
                k = 2 * (r + 1) + 1
                grown = cv2.dilate(fill, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
                glow = cv2.GaussianBlur(grown, (0, 0), max(1.0, r / 2)).astype(np.float32) / 255.0
                _blend(region, np.clip(glow * 1.6, 0, 0.92), glow_col)
            else:
                stroke = _draw_mask(size, positions, (bx0, by0), fit.font, anchor, stroke=r + 2)
                _blend(region, stroke, INK if sum(colour) > 382 else WHITE)
            effect = forced[1]  # type: ignore[assignment]
        elif forced is not None:
            pass
        elif c < AA_TEXT or self.spec.effect != "auto":
            # 1) soft shadow/glow in the opposite tone (unless an outline was asked for)
            if self.spec.effect != "outline":
                glow_col = INK if sum(colour) > 382 else WHITE
                k = 2 * (r + 1) + 1
                grown = cv2.dilate(fill, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
                glow = cv2.GaussianBlur(grown, (0, 0), max(1.0, r / 2)).astype(np.float32) / 255.0
                trial = region.copy()
                _blend(trial, np.clip(glow * 1.6, 0, 0.92), glow_col)
                tc = worst_contrast(colour, trial, ring)
                if tc >= AA_TEXT:
                    working, effect, c = trial, "shadow", tc
            # 2) an outline as wide as the measured ring plus two pixels
            if effect == "none" and (c < AA_TEXT or self.spec.effect == "outline"):
                stroke_w = r + 2
                stroke = _draw_mask(size, positions, (bx0, by0), fit.font, anchor, stroke=stroke_w)
                outline_col = INK if sum(colour) > 382 else WHITE
                trial = region.copy()
                _blend(trial, stroke, outline_col)
                working, effect = trial, "outline"
                c = worst_contrast(colour, trial, ring)
        _blend(working, fill, colour)
        if working is not region:
            region[...] = working
        final = worst_contrast(colour, region, ring)
        if final < AA_TEXT and forced is None:  # (a forced render is on a plain canvas, not shown)
            log.warning("block %s reached contrast %.2f only", block.role, final)
        diff = cv2.absdiff(np.ascontiguousarray(region), before)
        ix, iy, iw, ih = cv2.boundingRect(diff.reshape(diff.shape[0], -1))  # x in channel units
        ink_box = (bx0 + ix // 3, by0 + iy, bx0 + (ix + iw + 2) // 3, by0 + iy + ih)
        return PlacedText(role=block.role, text=text, lines=fit.lines, font_size=fit.size, box=box, ink_box=ink_box,
                          colour=colour, effect=effect, contrast=final, origin=(bx0, by0), mask=fill)

    placed: list[PlacedText]
    forced: dict[str, tuple[RGB, str]] = {}


def _colour(value: str) -> RGB:
    try:
        return hex_to_rgb(value)
    except ValueError as exc:
        raise InputError("render.bad_colour", value=value) from exc


def render_overlay_detailed(image: Image.Image, spec: OverlaySpec, sns: "SnsSize", fonts: Fonts | None = None,
                            *, layouts: dict[str, LayoutDef] | None = None,
                            focus_box: tuple[float, float, float, float] | None = None,
                            canvas_colour: RGB | None = None,
                            forced: dict[str, tuple[RGB, str]] | None = None) -> RenderResult:
    """The overlay drawn on `image` (cropped to the SNS size). With `canvas_colour` the overlay is
    drawn on a plain canvas of that colour instead, with the text colours and effects in `forced`
    (role -> (colour, effect), as measured on the real picture): `overlay_rgba` uses two such
    renders to recover the overlay as a transparent layer."""
    fonts = fonts or Fonts.default()
    layouts = layouts or load_layouts()
    layout = layouts.get(spec.layout) or next(iter(layouts.values()))
    if layout.id != spec.layout:
        log.warning("unknown overlay layout %r; using %r", spec.layout, layout.id)
    base = image if image.mode == "RGB" else image.convert("RGB")
    if base.size != (sns.width, sns.height):
        base = smart_crop(base, sns.width, sns.height, focus_box or spec.focus_box)
    canvas = np.array(base, dtype=np.uint8)
    if canvas_colour is not None:
        canvas[...] = canvas_colour
    safe = sns.safe_box()
    r = _Renderer(canvas, spec, safe, fonts)
    r.placed = []
    r.forced = dict(forced or {})
    gap = max(4, int(0.015 * r.min_side))

    obstacles: list[IntBox] = []
    if layout.plate is not None:
        opacity = layout.plate.opacity if spec.plate_opacity is None else float(spec.plate_opacity)
        r.plate(layout.plate, min(1.0, max(0.0, opacity)))
    badge_corner = spec.badge_corner or layout.badge_corner
    logo_corner = spec.logo_corner or layout.logo_corner
    if logo_corner == badge_corner and spec.badge_text.strip():
        logo_corner = _other_corner(badge_corner)
    if spec.logo is not None:
        obstacles.append(r.logo(spec.logo, logo_corner))
    if spec.badge_text.strip():
        obstacles.append(r.badge(spec.badge_text, badge_corner))
    if spec.ai_label:
        ai_corner = _free_corner([badge_corner if spec.badge_text.strip() else "", logo_corner
                                  if spec.logo is not None else ""], prefer="bottom_right")
        sw, sh = safe[2] - safe[0], safe[3] - safe[1]
        lw, lh = int(0.2 * sw), max(24, int(0.045 * sh))
        lbox = _corner_box(safe, ai_corner, lw, lh)
        label = BlockDef(role="ai_label", box=(0, 0, 1, 1), max_size=0.5, max_lines=1, weight="regular",
                         align="right" if ai_corner.endswith("right") else "left", style="pill")
        placed = r.text_block(label, spec.ai_label_text or AI_LABEL_KO, lbox, max_size=int(lh * 0.55),
                              pill_colour=(0, 0, 0), pill_opacity=0.6)
        if placed is not None:
            r.placed.append(placed)
        obstacles.append(lbox)

    texts = spec.texts()
    for block in layout.blocks:
        text = texts.get(block.role, "")
        if not text.strip():
            continue
        box = _abs_box(block.box, safe)
        for obs in obstacles:
            box = _subtract(box, obs, gap)
        if box[2] - box[0] < 20 or box[3] - box[1] < 12:
            log.warning("no room left for %s", block.role)
            continue
        placed = r.text_block(block, text, box, pill_colour=r.accent if block.style == "pill" else None)
        if placed is not None:
            r.placed.append(placed)
    return RenderResult(image=Image.fromarray(canvas), blocks=r.placed, safe_box=safe, layout=layout.id)


def overlay_rgba(image: Image.Image, spec: OverlaySpec, sns: "SnsSize", fonts: Fonts | None = None,
                 ) -> tuple[np.ndarray, np.ndarray, RenderResult]:
    """The overlay as a transparent layer that holds no pixel of the picture: (colour float32 HxWx3
    0..255, alpha float32 HxW 0..1, the render on the real picture).

    Every drawing step of the renderer is an "over" blend, so the whole overlay is one: out =
    bg (1 - A) + P. Drawn on black (P) and on white (255 (1 - A) + P) with the colours and effects
    chosen on the real picture, A and the colour P / A follow exactly."""
    res = render_overlay_detailed(image, spec, sns, fonts)
    forced = {b.role: (b.colour, b.effect) for b in res.blocks}
    black = render_overlay_detailed(image, spec, sns, fonts, canvas_colour=(0, 0, 0), forced=forced)
    white = render_overlay_detailed(image, spec, sns, fonts, canvas_colour=(255, 255, 255), forced=forced)
    p = np.asarray(black.image, dtype=np.float32)
    wv = np.asarray(white.image, dtype=np.float32)
    alpha = np.clip(1.0 - (wv - p).mean(axis=2) / 255.0, 0.0, 1.0)
    colour = np.where(alpha[..., None] > 1e-3, p / np.maximum(alpha[..., None], 1e-3), 0.0)
    return np.clip(colour, 0, 255).astype(np.float32), alpha.astype(np.float32), res


def render_overlay(image: Image.Image, spec: OverlaySpec, sns: "SnsSize", fonts: Fonts | None = None,
                   **kwargs: object) -> Image.Image:
    """The ad image at exactly `sns.width` x `sns.height` with the overlay drawn."""
    return render_overlay_detailed(image, spec, sns, fonts, **kwargs).image  # type: ignore[arg-type]


_CORNERS: tuple[Corner, ...] = ("top_left", "top_right", "bottom_left", "bottom_right")


def _other_corner(corner: str) -> Corner:
    return {"top_left": "bottom_left", "top_right": "top_left", "bottom_left": "bottom_right",
            "bottom_right": "bottom_left"}[corner]  # type: ignore[return-value]


def _free_corner(taken: list[str], prefer: Corner) -> Corner:
    if prefer not in taken:
        return prefer
    for c in ("bottom_left", "top_left", "top_right", "bottom_right"):
        if c not in taken:
            return c  # type: ignore[return-value]
    return prefer
