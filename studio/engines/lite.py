"""The lite engine: no weights, CPU only, well under a second per ad.

It "inpaints" by composition: every pixel the mask marks for regeneration (255) is replaced by a
procedural product-photo backdrop (`studio.engines.backdrops`), chosen from the presets:

- kind: ``job.extras["backdrop"]`` if given, else the chosen style's backdrop, else the
  industry's backdrop (an unknown style id falls back to the industry);
- palette: ``job.extras["palette"]`` (list of ``#rrggbb``) or the industry palette;
- light: the style's ``lighting_en`` ("...from the left", "dramatic low-key ...") biases the
  light direction and contrast; the seed picks the rest.

Products get a tabletop layout (a surface in perspective under a wall, the horizon set behind the
subject's middle), a soft contact shadow under the subject (``extras["shadow"]``, default on for
products) and, with ``extras["reflection"]``, a faded mirror image on the surface. People and
"mixed" subjects get a defocused wall behind them and no shadow; the person is kept as they are
(changing the outfit needs the flux engine: message ``engine.lite.outfit_needs_flux``).

Kept pixels: **inpaint never moves the subject.** Wherever ``mask == 0`` the output pixel is the
input pixel, byte for byte; soft mask values blend subject and backdrop. Placement that follows
the SNS layout is an explicit, separate step: `place_subject(image, mask, size, placement=...)`
scales and moves the subject into a target box and returns the moved image and mask together
with the `Placement` transform, which the workflow applies to anything else it tracks (its
keep-mask, a face box) *before* it builds the `InpaintJob`. Default placement for products:
centred, base on the lower-third line (bottom at 78 % of the height), leaving the top for a
headline; for people: bottom-aligned, filling the height.

Determinism: the same job and seed give the same pixels; image ``i`` of a job uses
``seed + i`` so variations differ (palette rotation, light direction, bokeh layout, veins...).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Sequence

import cv2
import numpy as np
from PIL import Image

from studio.engines.backdrops import KINDS, render_backdrop
from studio.engines.base import EngineCaps, EngineResult, InpaintJob
from studio.errors import InputError
from studio.i18n import t
from studio.presets import Presets

if TYPE_CHECKING:
    from studio.config import Settings
    from studio.runtime.jobs import CancelToken, ProgressFn

log = logging.getLogger(__name__)


STAGES_PER_IMAGE = 3
# a compositor works at the output size (EngineCaps.work_megapixels=None, where that field exists)
_OUTPUT_SIZE_CAPS = {"work_megapixels": None} if "work_megapixels" in {f.name for f in fields(EngineCaps)} else {}
SUBJECT_THRESHOLD = 0.5          # keep-alpha above this counts as subject for geometry


# --------------------------------------------------------------------------------------------
# placement (explicit step; inpaint never moves pixels)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Placement:
    """Maps source pixel coordinates to canvas coordinates: ``x' = (x - sx0) * scale_x + dx0``."""

    src_box: tuple[int, int, int, int]     # subject box in the source image (x0, y0, x1, y1)
    dst_box: tuple[int, int, int, int]     # where it lands on the canvas
    canvas: tuple[int, int]                # (width, height)

    @property
    def scale_x(self) -> float:
        return (self.dst_box[2] - self.dst_box[0]) / max(1, self.src_box[2] - self.src_box[0])

    @property
    def scale_y(self) -> float:
        return (self.dst_box[3] - self.dst_box[1]) / max(1, self.src_box[3] - self.src_box[1])

    def apply_point(self, x: float, y: float) -> tuple[float, float]:
        return ((x - self.src_box[0]) * self.scale_x + self.dst_box[0],
                (y - self.src_box[1]) * self.scale_y + self.dst_box[1])

    def apply_box(self, box: Sequence[float]) -> tuple[float, float, float, float]:
        x0, y0 = self.apply_point(box[0], box[1])
        x1, y1 = self.apply_point(box[2], box[3])
        return (x0, y0, x1, y1)

    def _move(self, arr: np.ndarray, fill: Any, interp: int) -> np.ndarray:
        x0, y0, x1, y1 = self.src_box
        dx0, dy0, dx1, dy1 = self.dst_box
        w, h = self.canvas
        crop = arr[y0:y1, x0:x1]
        dw, dh = dx1 - dx0, dy1 - dy0
        if (dw, dh) != (crop.shape[1], crop.shape[0]):
            shrink = dw < crop.shape[1]
            crop = cv2.resize(crop, (dw, dh), interpolation=cv2.INTER_AREA if shrink else interp)
        out = np.empty((h, w) + arr.shape[2:], arr.dtype)
        out[...] = fill
        # clip the destination to the canvas
        cx0, cy0 = max(0, dx0), max(0, dy0)
        cx1, cy1 = min(w, dx1), min(h, dy1)
        if cx1 > cx0 and cy1 > cy0:
            out[cy0:cy1, cx0:cx1] = crop[cy0 - dy0:cy1 - dy0, cx0 - dx0:cx1 - dx0]
        return out

    def apply_mask(self, mask: Image.Image, fill: int = 255) -> Image.Image:
        """Move an L mask the same way; `fill` for the uncovered canvas (255 = regenerate)."""
        return Image.fromarray(self._move(np.asarray(mask.convert("L")), fill, cv2.INTER_LINEAR), "L")

    def apply_image(self, image: Image.Image, fill: Sequence[int] = (128, 128, 128)) -> Image.Image:
        arr = np.asarray(image.convert("RGB"))
        return Image.fromarray(self._move(arr, np.array(fill, np.uint8), cv2.INTER_CUBIC), "RGB")


@dataclass(frozen=True)
class PlacedSubject:
    image: Image.Image        # RGB, canvas size
    mask: Image.Image         # L, canvas size, 255 = regenerate
    placement: Placement


def subject_box(mask: Image.Image | np.ndarray) -> tuple[int, int, int, int] | None:
    """Bounding box (x0, y0, x1, y1) of the kept region (mask value < 128), or None."""
    m = np.asarray(mask.convert("L")) if isinstance(mask, Image.Image) else np.asarray(mask)
    keep = m < 128
    rows = np.flatnonzero(keep.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(keep.any(axis=0))
    return (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)


def default_target_box(size: tuple[int, int], subject: str) -> tuple[int, int, int, int]:
    w, h = size
    if subject == "product":
        return (int(0.14 * w), int(0.30 * h), int(0.86 * w), int(0.78 * h))
    return (int(0.04 * w), int(0.10 * h), int(0.96 * w), h)


def place_subject(image: Image.Image, mask: Image.Image, size: tuple[int, int], *,
                  placement: dict | None = None, subject: str = "product") -> PlacedSubject:
    """Scale and move the kept subject into a target box on a canvas of `size` = (w, h).

    `placement` (e.g. from the SNS layout): ``{"box": [x0, y0, x1, y1]}`` in canvas pixels or
    ``{"box_frac": [...]}`` in fractions; ``"anchor"``: ``"bottom"`` (default) or ``"center"``;
    ``"max_upscale"`` (default 3.0). The subject keeps its aspect ratio, fits inside the box,
    is centred horizontally and sits on the box bottom (or its centre).
    """
    w, h = int(size[0]), int(size[1])
    if w < 16 or h < 16:
        raise InputError("engine.lite.bad_size", w=w, h=h)
    image = image.convert("RGB")
    mask = mask.convert("L")
    if mask.size != image.size:
        mask = mask.resize(image.size, Image.BILINEAR)
    box = subject_box(mask)
    if box is None:
        raise InputError("engine.lite.no_subject")
    opts = placement or {}
    if "box" in opts:
        tx0, ty0, tx1, ty1 = (int(round(v)) for v in opts["box"])
    elif "box_frac" in opts:
        f = opts["box_frac"]
        tx0, ty0, tx1, ty1 = int(f[0] * w), int(f[1] * h), int(f[2] * w), int(f[3] * h)
    else:
        tx0, ty0, tx1, ty1 = default_target_box((w, h), subject)
    tx0, tx1 = sorted((max(0, min(w, tx0)), max(0, min(w, tx1))))
    ty0, ty1 = sorted((max(0, min(h, ty0)), max(0, min(h, ty1))))
    if tx1 - tx0 < 4 or ty1 - ty0 < 4:
        tx0, ty0, tx1, ty1 = default_target_box((w, h), subject)
    bw, bh = box[2] - box[0], box[3] - box[1]
    scale = min((tx1 - tx0) / bw, (ty1 - ty0) / bh, float(opts.get("max_upscale", 3.0)))
    dw, dh = max(1, int(round(bw * scale))), max(1, int(round(bh * scale)))
    dx0 = (tx0 + tx1 - dw) // 2
    dy0 = (ty0 + ty1 - dh) // 2 if opts.get("anchor") == "center" else ty1 - dh
    pl = Placement(src_box=box, dst_box=(dx0, dy0, dx0 + dw, dy0 + dh), canvas=(w, h))
    arr = np.asarray(image)
    m = np.asarray(mask)
    regen = m > 127
    fill = tuple(int(v) for v in (arr[regen].mean(axis=0) if regen.any() else (128, 128, 128)))
    return PlacedSubject(image=pl.apply_image(image, fill), mask=pl.apply_mask(mask, 255), placement=pl)


# --------------------------------------------------------------------------------------------
# shadow and reflection
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Subject:
    box: tuple[int, int, int, int]      # x0, y0, x1, y1 of alpha > threshold
    base_x0: int                        # extent of the bottom band (the footprint)
    base_x1: int


def _subject_geometry(mask: np.ndarray) -> _Subject | None:
    solid = mask < int(255 * (1 - SUBJECT_THRESHOLD))
    rows = np.flatnonzero(solid.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(solid.any(axis=0))
    y0, y1 = int(rows[0]), int(rows[-1]) + 1
    band = max(2, (y1 - y0) // 8)
    base_cols = np.flatnonzero(solid[y1 - band:y1].any(axis=0))
    return _Subject(box=(int(cols[0]), y0, int(cols[-1]) + 1, y1),
                    base_x0=int(base_cols[0]), base_x1=int(base_cols[-1]) + 1)


def contact_shadow(mask: np.ndarray, geo: _Subject, light_x: float, strength: float = 1.0) -> np.ndarray:
    """Shadow density in [0, 1] (h, w): a contact pool at the base plus a soft squashed cast."""
    h, w = mask.shape
    f = 4
    lw, lh = max(4, w // f), max(4, h // f)
    a = 1.0 - cv2.resize(mask, (lw, lh), interpolation=cv2.INTER_AREA).astype(np.float32) * (1.0 / 255.0)
    x0, y0, x1, y1 = (v / f for v in geo.box)
    bx0, bx1 = geo.base_x0 / f, geo.base_x1 / f
    bw, bh = max(1.0, x1 - x0), max(1.0, y1 - y0)
    # contact pool: an ellipse under the footprint
    pool = np.zeros((lh, lw), np.float32)
    cx, cy = (bx0 + bx1) / 2, y1 - 0.01 * bh
    axes = (max(1, int((bx1 - bx0) * 0.52)), max(1, int(0.035 * bh + 2)))
    cv2.ellipse(pool, (int(cx), int(cy)), axes, 0, 0, 360, 1.0, -1, cv2.LINE_AA)
    pool = cv2.GaussianBlur(pool, (0, 0), max(1.0, 0.035 * bw))
    # cast: the silhouette squashed onto the floor, pushed away from the light, blurred
    squash = 0.22
    m = np.float32([[1.0, 0.0, -light_x * 0.12 * bw],
                    [0.0, squash, y1 * (1 - squash) + 0.02 * bh]])
    cast = cv2.warpAffine(a, m, (lw, lh), flags=cv2.INTER_LINEAR, borderValue=0)
    cast = cv2.GaussianBlur(cast, (0, 0), max(1.0, 0.06 * bw))
    density = 1.0 - (1.0 - 0.62 * pool) * (1.0 - 0.35 * cast)
    density = np.clip(density * strength, 0.0, 0.9)
    return cv2.resize(density, (w, h), interpolation=cv2.INTER_LINEAR)


def apply_shadow(bg: np.ndarray, density: np.ndarray) -> None:
    """Darken `bg` in place by `density`, touching only the rows/columns the shadow reaches."""
    rows = np.flatnonzero(density.max(axis=1) > 1.0 / 512)
    if rows.size == 0:
        return
    cols = np.flatnonzero(density[rows[0]:rows[-1] + 1].max(axis=0) > 1.0 / 512)
    ys, xs = slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)
    bg[ys, xs] *= (1.0 - density[ys, xs])[..., None]


def apply_reflection(bg: np.ndarray, photo: np.ndarray, mask: np.ndarray, geo: _Subject,
                     opacity: float = 0.28) -> None:
    """Blend a faded mirror image of the subject below its base into `bg` (in place)."""
    h, w = mask.shape
    y1 = geo.box[3]
    length = max(1, int(0.35 * (geo.box[3] - geo.box[1])))
    rows = np.arange(y1, min(h, y1 + length))
    if rows.size == 0:
        return
    x0, x1 = geo.box[0], geo.box[2]
    src = np.clip(2 * y1 - 1 - rows, 0, h - 1)
    fade = (opacity * (1.0 - (rows - y1) / length) ** 2).astype(np.float32)
    alpha = (255.0 - mask[src, x0:x1].astype(np.float32)) * (1.0 / 255.0)
    cov = (alpha * fade[:, None])[..., None]
    rgb = photo[src, x0:x1].astype(np.float32) * (1.0 / 255.0)
    region = bg[y1:y1 + rows.size, x0:x1]
    region *= 1.0 - cov
    region += rgb * cov


def card_shadow(mask: np.ndarray, geo: _Subject, strength: float = 0.42) -> np.ndarray:
    """A soft drop shadow under a photo laid out as a card (below and a little to the right)."""
    h, w = mask.shape
    f = 4
    lw, lh = max(4, w // f), max(4, h // f)
    card = np.zeros((lh, lw), np.float32)
    x0, y0, x1, y1 = (v / f for v in geo.box)
    off = max(1.0, 0.012 * (y1 - y0))
    cv2.rectangle(card, (int(x0 + off * 0.6), int(y0 + off * 1.6)), (int(x1 + off * 0.6), int(y1 + off * 2.2)), 1.0, -1)
    card = cv2.GaussianBlur(card, (0, 0), max(1.5, 0.025 * max(x1 - x0, y1 - y0)))
    return cv2.resize(np.clip(card * strength, 0, 0.9), (w, h), interpolation=cv2.INTER_LINEAR)


def card_frame(bg: np.ndarray, geo: _Subject, width: float = 0.028) -> None:
    """A light mat around a photo laid out as a card (in place on float RGB in [0, 1]): the card
    reads as a framed print on the designed backdrop, never as a photo pasted on a copy of itself."""
    h, w = bg.shape[:2]
    x0, y0, x1, y1 = geo.box
    m = max(2, int(round(width * max(x1 - x0, y1 - y0))))
    fx0, fy0, fx1, fy1 = max(0, x0 - m), max(0, y0 - m), min(w, x1 + m), min(h, y1 + m)
    base = bg[fy0:fy1, fx0:fx1].reshape(-1, 3).mean(axis=0)
    mat = np.clip(0.86 * np.array([0.985, 0.975, 0.955], np.float32) + 0.14 * base, 0.0, 1.0)
    bg[fy0:fy1, fx0:fx1] = mat


# --------------------------------------------------------------------------------------------
# the engine
# --------------------------------------------------------------------------------------------
class LiteEngine:
    name = "lite"
    caps = EngineCaps(inpaint=True, changes_outfit=False, uses_pose_control=False,
                      text2image=False, needs_gpu=False, needs_weights=False,
                      work_megapixels=None, size_multiple=1)

    def __init__(self, presets: Presets, lang: str = "ko") -> None:
        self.presets = presets
        self.lang = lang

    # -- choices --------------------------------------------------------------------------
    def backdrop_for(self, job: InpaintJob) -> tuple[str, list[str], str]:
        """(kind, palette, lighting hint) for a job, following the rules in the module doc."""
        industry = self.presets.industry(job.industry)
        style = next((s for s in self.presets.styles if s.id == job.style), None)
        kind = job.extras.get("backdrop") or (style.backdrop if style else industry.backdrop)
        if kind not in KINDS:
            log.warning("unknown backdrop %r in job extras; using %s", kind, industry.backdrop)
            kind = industry.backdrop
        palette = list(job.extras.get("palette") or industry.palette)
        lighting = style.lighting_en if style else ""
        return str(kind), palette, lighting

    # -- run ------------------------------------------------------------------------------
    def _inputs(self, job: InpaintJob) -> tuple[np.ndarray, np.ndarray]:
        w, h = int(job.width), int(job.height)
        if w < 16 or h < 16:
            raise InputError("engine.lite.bad_size", w=w, h=h)
        image = job.image.convert("RGB")
        mask = job.mask.convert("L")
        if image.size != (w, h):
            log.warning("lite: image %s resized to job size %s (the workflow should pass it at size)",
                        image.size, (w, h))
            image = image.resize((w, h), Image.LANCZOS)
        if mask.size != (w, h):
            mask = mask.resize((w, h), Image.BILINEAR)
        return np.asarray(image), np.asarray(mask)

    def inpaint(self, job: InpaintJob, progress: "ProgressFn | None" = None,
                cancel: "CancelToken | None" = None) -> EngineResult:
        start = time.perf_counter()
        photo, mask = self._inputs(job)
        h, w = mask.shape
        n = max(1, int(job.num_images))
        total = STAGES_PER_IMAGE * n
        kind, palette, lighting = self.backdrop_for(job)
        geo = _subject_geometry(mask)
        arrangement = str(job.extras.get("layout", "cutout"))
        product = job.subject == "product" and arrangement == "cutout"
        layout = "tabletop" if product else "wall"
        horizon = 0.62
        if geo is not None and product:
            y0, y1 = geo.box[1], geo.box[3]
            horizon = (y0 + 0.45 * (y1 - y0)) / h
        touches_bottom = geo is not None and geo.box[3] >= h - 2
        want_shadow = bool(job.extras.get("shadow", product)) and product and geo is not None and not touches_bottom
        want_reflection = bool(job.extras.get("reflection", False)) and product and geo is not None and not touches_bottom
        flat_mask = mask.reshape(-1)
        keep_idx = np.flatnonzero(flat_mask == 0)
        soft_idx = np.flatnonzero((flat_mask > 0) & (flat_mask < 255))
        flat_photo = photo.reshape(-1, 3)
        soft_a = ((255.0 - flat_mask[soft_idx].astype(np.float32)) * (1.0 / 255.0))[:, None]
        soft_photo = flat_photo[soft_idx].astype(np.float32) * soft_a
        outputs: list[Image.Image] = []

        def tick(step: int, key: str, i: int) -> None:
            if progress is not None:
                progress(step, total, t(key, self.lang, i=i + 1, n=n))

        for i in range(n):
            if cancel is not None:
                cancel.raise_if_cancelled()
            bd = render_backdrop(kind, (w, h), palette, job.seed + i, layout=layout,
                                 horizon=horizon, lighting_hint=lighting)
            bg = bd.rgb
            # fallbacks: the designed backdrop, never a blurred enlarged copy of the photo itself
            if arrangement in ("card", "extend") and geo is not None:
                apply_shadow(bg, card_shadow(mask, geo))
                if arrangement == "card":
                    card_frame(bg, geo)
            tick(i * STAGES_PER_IMAGE + 1, "engine.lite.stage.backdrop", i)
            if cancel is not None:
                cancel.raise_if_cancelled()
            if want_shadow and geo is not None:
                apply_shadow(bg, contact_shadow(mask, geo, bd.light_x,
                                                float(job.extras.get("shadow_strength", 1.0))))
            if want_reflection and geo is not None:
                apply_reflection(bg, photo, mask, geo)
            tick(i * STAGES_PER_IMAGE + 2, "engine.lite.stage.shadow", i)
            if cancel is not None:
                cancel.raise_if_cancelled()
            out = cv2.convertScaleAbs(bg, alpha=255.0)                 # rounds and saturates
            flat = out.reshape(-1, 3)
            flat[keep_idx] = flat_photo[keep_idx]                      # exact, not just close
            if soft_idx.size:
                mixed = soft_photo + bg.reshape(-1, 3)[soft_idx] * (255.0 * (1.0 - soft_a))
                flat[soft_idx] = np.clip(mixed + 0.5, 0, 255).astype(np.uint8)
            outputs.append(Image.fromarray(out, "RGB"))
            tick(i * STAGES_PER_IMAGE + 3, "engine.lite.stage.composite", i)
        log.info("lite: %d image(s) %dx%d, backdrop %s, %.0f ms", n, w, h, kind,
                 (time.perf_counter() - start) * 1000)
        return EngineResult(images=outputs)


def create_engine(settings: "Settings") -> LiteEngine:
    return LiteEngine(Presets(settings.presets_dir), lang=settings.lang)
