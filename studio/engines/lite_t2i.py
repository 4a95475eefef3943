"""Lite text-to-image: stock assets that need no weights (CPU, well under a second each).

What stock buyers actually license without a camera: seamless patterns, textures, gradients and
backgrounds. This engine renders those procedurally, steered by the words of the prompt:

- the **family** (``mesh gradient``, ``marble``, ``watercolor``, ``pattern`` with a motif, ``bokeh``,
  ``terrazzo``, ``concrete``, ``wood``, ``linen``) comes from the first family word found in the
  prompt (``"marble"``, ``"polka dot"``, ``"stripes"``, ``"bokeh"``...), else from the seed;
- the **palette** comes from mood/subject words (``pastel``, ``coffee``, ``ocean``, ``christmas``,
  ``luxury``...), else from the seed;
- the seed picks everything else (layout, scale, angle, veins), so ``seed + i`` varies.

Patterns and textures are computed from periodic functions (FFT noise, lattice motifs) and tile
seamlessly: ``extras["seamless"]`` is reported in the image info. No random colour squares: every
family has a light model, soft anti-aliased edges and a fine grain, like the assets stock sites
sell as "background", "texture" and "seamless pattern".
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import cv2
import numpy as np
from PIL import Image

from studio.engines.base import EngineCaps, EngineResult, Text2ImageJob
from studio.errors import CancelledError, InputError
from studio.text.lite_words import FAMILY_WORDS, MOTIFS, PALETTE_WORDS, find_word as _find

if TYPE_CHECKING:
    from studio.config import Settings
    from studio.runtime.jobs import CancelToken, ProgressFn

log = logging.getLogger(__name__)

MIN_SIDE = 64
MAX_SIDE = 4096

# palette name -> colours (dark to light is not required); chosen by the words after the "|"
PALETTES: dict[str, tuple[str, ...]] = {
    "pastel": ("#f6d6e0", "#cfe3f2", "#e6dcf5", "#fbe8c8", "#d4efe4"),
    "coffee": ("#3b2418", "#7a4b2e", "#b07d56", "#e3c6a4", "#f4ead9"),
    "ocean": ("#0b2545", "#13315c", "#1f6f8b", "#8ecae6", "#e0f4f8"),
    "forest": ("#1d3b2a", "#3e6b48", "#7fa36b", "#c8d8a8", "#eef2e2"),
    "sunset": ("#2d1e4a", "#7b2d5c", "#d9536f", "#f6a55c", "#fde3a7"),
    "night": ("#0d0f1e", "#1c2140", "#3a3f7a", "#8a7fd6", "#e5d9ff"),
    "spring": ("#f9c5d1", "#fbe3a1", "#c9e7a8", "#a8d8ea", "#fff8ef"),
    "autumn": ("#5a2a12", "#a2441b", "#d9822b", "#efc27a", "#f7ead2"),
    "christmas": ("#0f3d2e", "#1f6b46", "#b3202b", "#e4c17a", "#f7f1e6"),
    "luxury": ("#121212", "#2b2b2b", "#8c6d3f", "#d4af6a", "#f3e6c4"),
    "minimal": ("#f7f5f2", "#e9e4dc", "#d3ccc0", "#a8a195", "#5f5a52"),
    "citrus": ("#ff8c42", "#ffd166", "#f6f7d7", "#9bd770", "#2e8b57"),
    "rose": ("#4a1c2b", "#a83e5a", "#e88ca5", "#f6c9d3", "#fdf0f3"),
    "mint": ("#0f4c4c", "#2a9d8f", "#8fd8c8", "#d8f3ec", "#fbfffd"),
}
FAMILIES: tuple[str, ...] = tuple(FAMILY_WORDS)
SEAMLESS_FAMILIES = frozenset({"pattern", "terrazzo", "concrete", "linen", "marble", "wood"})


def _hex(code: str) -> np.ndarray:
    code = code.lstrip("#")
    return np.array([int(code[i:i + 2], 16) for i in (0, 2, 4)], dtype=np.float32) / 255.0


@dataclass(frozen=True)
class AssetPlan:
    family: str
    palette: str
    motif: str | None
    seamless: bool


def plan_asset(prompt: str, seed: int) -> AssetPlan:
    """What the prompt asks for: family, palette, motif (seed decides what the words leave open)."""
    rng = np.random.default_rng(seed)
    family = _find(prompt, FAMILY_WORDS) or FAMILIES[int(rng.integers(len(FAMILIES)))]
    palette = _find(prompt, PALETTE_WORDS) or list(PALETTES)[int(rng.integers(len(PALETTES)))]
    motif = None
    if family == "pattern":
        motif = _find(prompt, MOTIFS) or list(MOTIFS)[int(rng.integers(len(MOTIFS)))]
    return AssetPlan(family, palette, motif, family in SEAMLESS_FAMILIES)


# --- building blocks --------------------------------------------------------------------------
def fractal_noise(h: int, w: int, rng: np.random.Generator, beta: float = 2.2, low_cut: float = 1.0) -> np.ndarray:
    """Periodic (tileable) 1/f^beta noise in [0, 1] via the FFT."""
    fy = np.fft.fftfreq(h)[:, None] * h
    fx = np.fft.rfftfreq(w)[None, :] * w
    f = np.sqrt(fy * fy + fx * fx)
    amp = np.where(f >= low_cut, 1.0 / np.maximum(f, 1e-6) ** (beta / 2.0), 0.0)
    spec = (rng.standard_normal(amp.shape) + 1j * rng.standard_normal(amp.shape)) * amp
    field = np.fft.irfft2(spec, s=(h, w)).astype(np.float32)
    lo, hi = np.percentile(field, (0.5, 99.5))
    return np.clip((field - lo) / max(hi - lo, 1e-6), 0.0, 1.0)


def _ramp(pal: list[np.ndarray], t: np.ndarray) -> np.ndarray:
    """Map t in [0,1] through the palette colours (piecewise linear)."""
    stops = np.linspace(0.0, 1.0, len(pal))
    out = np.empty(t.shape + (3,), dtype=np.float32)
    for c in range(3):
        out[..., c] = np.interp(t, stops, [p[c] for p in pal])
    return out


def _smooth(edge: np.ndarray, width: float) -> np.ndarray:
    """Anti-aliased step: 1 inside (edge < 0), 0 outside, over `width` pixels."""
    return np.clip(0.5 - edge / max(width, 1e-6), 0.0, 1.0)


def _grain(img: np.ndarray, rng: np.random.Generator, amount: float = 0.012) -> np.ndarray:
    return img + rng.standard_normal(img.shape[:2])[..., None].astype(np.float32) * amount


def _by_luma(pal: list[np.ndarray]) -> list[np.ndarray]:
    return sorted(pal, key=lambda c: float(c @ np.array([0.299, 0.587, 0.114], dtype=np.float32)))


# --- families ---------------------------------------------------------------------------------
def _gradient(h: int, w: int, pal: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """A soft mesh gradient: a few large colour fields blended with Gaussian weights."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    yy /= h
    xx /= w
    k = int(rng.integers(4, 7))
    acc = np.zeros((h, w, 3), np.float32)
    wsum = np.zeros((h, w), np.float32)
    for i in range(k):
        cy, cx = rng.uniform(-0.15, 1.15, 2)
        s = rng.uniform(0.25, 0.5)
        wgt = np.exp(-(((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s)))
        acc += wgt[..., None] * pal[i % len(pal)]
        wsum += wgt
    img = acc / np.maximum(wsum, 1e-6)[..., None]
    warp = fractal_noise(h, w, rng, beta=3.0)
    img = img * (0.94 + 0.1 * warp[..., None])
    return _grain(img, rng, 0.008)


def _marble(h: int, w: int, pal: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Polished stone: a cloudy base, broad soft veins and a few sharp ones, all following one flow."""
    pal = _by_luma(pal)
    base = 0.55 * pal[-1] + 0.45 * np.array([0.96, 0.95, 0.93], np.float32)
    vein = pal[0]
    accent = pal[len(pal) // 2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    k = int(rng.integers(1, 3))  # integer periods keep it tileable
    j = int(rng.integers(1, 3))
    flow = fractal_noise(h, w, rng, beta=3.8)
    detail = fractal_noise(h, w, rng, beta=2.6)
    phase = 2 * np.pi * (k * xx / w + j * yy / h) + 5.0 * flow + 0.8 * detail
    broad = np.clip(1.0 - np.abs(np.sin(phase)), 0.0, 1.0) ** 4
    sharp = cv2.GaussianBlur(np.clip(1.0 - np.abs(np.sin(phase * 2.0 + 1.3)), 0.0, 1.0) ** 16, (0, 0), 0.8)
    fine = np.clip(1.0 - np.abs(np.sin(2 * np.pi * (2 * xx / w - 3 * yy / h) + 6.0 * detail + 3.0 * flow)),
                   0.0, 1.0) ** 24
    mask = fractal_noise(h, w, rng, beta=3.0)          # veins fade in and out along their length
    broad *= 0.35 + 0.65 * mask
    sharp *= np.clip(mask * 1.6 - 0.3, 0.0, 1.0)
    cloud = fractal_noise(h, w, rng, beta=3.2)
    img = base[None, None, :] * (0.94 + 0.06 * cloud[..., None])
    img = img * (1 - 0.28 * broad[..., None]) + vein * 0.28 * broad[..., None]
    img = img * (1 - 0.7 * sharp[..., None]) + vein * 0.7 * sharp[..., None]
    img = img * (1 - 0.35 * fine[..., None]) + accent * 0.35 * fine[..., None]
    return _grain(img, rng, 0.005)


def _watercolor(h: int, w: int, pal: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    paper = np.array([0.98, 0.97, 0.95], np.float32)
    img = np.ones((h, w, 3), np.float32) * paper
    fibre = fractal_noise(h, w, rng, beta=1.2)
    for i in range(int(rng.integers(3, 6))):
        field = fractal_noise(h, w, rng, beta=3.4)
        level = rng.uniform(0.5, 0.68)
        wash = np.clip((field - level) / 0.18, 0.0, 1.0)
        edge = np.exp(-((field - level) / 0.02) ** 2) * 0.35  # pigment pools at the wet edge
        alpha = np.clip(wash * 0.55 + edge, 0.0, 0.9)[..., None]
        colour = pal[int(rng.integers(len(pal)))]
        img = img * (1 - alpha) + (img * colour) * alpha  # multiply glaze like real pigment
    img *= (0.96 + 0.04 * fibre[..., None])
    return img


def _pattern(h: int, w: int, pal: list[np.ndarray], rng: np.random.Generator, motif: str) -> np.ndarray:
    pal = _by_luma(pal)
    bg = pal[-1] if rng.random() < 0.6 else pal[0]
    fg_choices = [c for c in pal if not np.allclose(c, bg)]
    fg = fg_choices[int(rng.integers(len(fg_choices)))]
    fg2 = fg_choices[int(rng.integers(len(fg_choices)))]
    # cells per tile side: an integer divisor grid keeps the whole image a seamless tile
    n = int(rng.integers(6, 13))
    cell = w / n
    ny = max(1, round(h / cell))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    u = xx / w * n          # cell coordinates
    v = yy / h * ny
    px = n / w              # one pixel in cell units (anti-aliasing width)
    img = np.ones((h, w, 3), np.float32) * bg
    if motif == "dots":
        r = rng.uniform(0.16, 0.3)
        for off, col in ((0.0, fg), (0.5, fg2)):
            du = (u + off) % 1.0 - 0.5
            dv = (v + off) % 1.0 - 0.5
            d = np.sqrt(du * du + dv * dv) - r
            a = _smooth(d, px)[..., None]
            img = img * (1 - a) + col * a
    elif motif == "stripes":
        k = int(rng.integers(1, 3))
        s = (u * k + v * k * (1 if rng.random() < 0.5 else 0)) % 1.0
        widths = rng.uniform(0.2, 0.45)
        d = np.abs(s - 0.5) - widths / 2
        a = _smooth(d, px * 2)[..., None]
        thin = _smooth(np.abs(((s + 0.5) % 1.0) - 0.5) - 0.03, px * 2)[..., None]
        img = img * (1 - a) + fg * a
        img = img * (1 - thin) + fg2 * thin
    elif motif == "chevron":
        s = (v + np.abs((u % 1.0) - 0.5)) % 1.0
        d = np.abs(s - 0.5) - 0.18
        a = _smooth(d, px * 2)[..., None]
        img = img * (1 - a) + fg * a
    elif motif == "waves":
        s = (v + 0.18 * np.sin(2 * np.pi * u)) % 1.0
        d = np.abs(s - 0.5) - 0.14
        a = _smooth(d, px * 2)[..., None]
        img = img * (1 - a) + fg * a
    elif motif == "gingham":
        a1 = _smooth(np.abs((u % 1.0) - 0.5) - 0.25, px)
        a2 = _smooth(np.abs((v % 1.0) - 0.5) - 0.25, px)
        img = img * (1 - 0.45 * a1[..., None]) + fg * 0.45 * a1[..., None]
        img = img * (1 - 0.45 * a2[..., None]) + fg * 0.45 * a2[..., None]
    elif motif == "hexagon":
        # hexagonal lattice by two offset rectangular lattices, distance to nearest centre
        q = np.stack([(u % 1.0) - 0.5, ((v * 1.0) % 1.0) - 0.5], -1)
        q2 = np.stack([((u + 0.5) % 1.0) - 0.5, ((v + 0.5) % 1.0) - 0.5], -1)
        d1 = np.maximum(np.abs(q[..., 0]) * 0.866 + np.abs(q[..., 1]) * 0.5, np.abs(q[..., 1]))
        d2 = np.maximum(np.abs(q2[..., 0]) * 0.866 + np.abs(q2[..., 1]) * 0.5, np.abs(q2[..., 1]))
        d = np.minimum(d1, d2)
        a = _smooth(d - 0.33, px)[..., None]
        inner = _smooth(d - 0.22, px)[..., None]
        img = img * (1 - a) + fg * a
        img = img * (1 - inner) + fg2 * inner
    else:  # scales (seigaiha)
        out = img.copy()
        for row_off in (0.0, 0.5):
            du = ((u + row_off) % 1.0) - 0.5
            dv = ((v + row_off * 1.0) % 1.0)
            d = np.sqrt(du * du + dv * dv)
            rings = (np.floor(d * 6) % 2).astype(np.float32)
            inside = _smooth(d - 0.5, px)
            colour = np.where(rings[..., None] > 0, fg, fg2)
            out = np.where(inside[..., None] > 0.5, colour, out)
        img = cv2.GaussianBlur(out, (0, 0), 0.6)
    paper = fractal_noise(h, w, rng, beta=1.0)
    img = img * (0.97 + 0.03 * paper[..., None])
    return img


def _terrazzo(h: int, w: int, pal: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    pal = _by_luma(pal)
    base = pal[-1]
    img = np.ones((h, w, 3), np.float32) * base
    img *= (0.95 + 0.05 * fractal_noise(h, w, rng, beta=2.5))[..., None]
    scale = min(h, w)
    count = int(rng.integers(260, 420) * (h * w) / (1024 * 1024))
    canvas = (img * 255).astype(np.uint8)
    big = np.zeros((h + 2 * scale // 8, w + 2 * scale // 8, 3), np.uint8)
    pad = scale // 8
    big[pad:pad + h, pad:pad + w] = canvas
    for _ in range(count):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        r = rng.uniform(0.008, 0.03) * scale
        sides = int(rng.integers(4, 8))
        ang = np.sort(rng.uniform(0, 2 * np.pi, sides))
        rad = r * rng.uniform(0.55, 1.0, sides)
        colour = tuple(int(c * 255) for c in pal[int(rng.integers(0, len(pal) - 1))])
        for ox in (-w, 0, w):           # wrap chips across the edges: the tile stays seamless
            for oy in (-h, 0, h):
                pts = np.stack([cx + ox + pad + rad * np.cos(ang), cy + oy + pad + rad * np.sin(ang)], -1)
                if pts[:, 0].max() < 0 or pts[:, 1].max() < 0 or pts[:, 0].min() > w + 2 * pad or pts[:, 1].min() > h + 2 * pad:
                    continue
                cv2.fillPoly(big, [np.round(pts * 4).astype(np.int32)], colour, lineType=cv2.LINE_AA, shift=2)
    img = big[pad:pad + h, pad:pad + w].astype(np.float32) / 255.0
    return _grain(img, rng, 0.01)


def _concrete(h: int, w: int, pal: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    pal = _by_luma(pal)
    tone = 0.5 * pal[len(pal) // 2] + 0.5 * np.array([0.72, 0.71, 0.69], np.float32)
    big = fractal_noise(h, w, rng, beta=2.6)
    fine = fractal_noise(h, w, rng, beta=0.8)
    pits = (fractal_noise(h, w, rng, beta=0.3) > 0.93).astype(np.float32)
    pits = cv2.GaussianBlur(pits, (0, 0), 0.8)
    shade = 0.82 + 0.22 * big + 0.08 * (fine - 0.5) - 0.25 * pits
    return tone[None, None, :] * shade[..., None]


def _stretched_noise(h: int, w: int, rng: np.random.Generator, stretch: int, beta: float) -> np.ndarray:
    """Periodic noise stretched along x (wood grain): computed narrow, resized with wrap-around."""
    narrow = fractal_noise(h, max(8, w // stretch), rng, beta=beta)
    tiled = np.concatenate([narrow, narrow, narrow], axis=1)
    big = cv2.resize(tiled, (3 * w, h), interpolation=cv2.INTER_CUBIC)
    return big[:, w:2 * w]


def _wood(h: int, w: int, pal: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Planks of wood: grain stretched along the boards, growth rings, a darker seam between planks."""
    pal = _by_luma(pal)
    natural_dark, natural_light = np.array([0.36, 0.22, 0.13], np.float32), np.array([0.74, 0.56, 0.38], np.float32)
    dark = 0.65 * natural_dark + 0.35 * pal[max(0, len(pal) // 2 - 1)]
    light = 0.65 * natural_light + 0.35 * pal[min(len(pal) - 1, len(pal) // 2 + 1)]
    yy = np.mgrid[0:h, 0:w][0].astype(np.float32)
    planks = int(rng.integers(3, 7))
    plank_idx = np.floor(yy / h * planks)
    offset = rng.uniform(0, 1, planks + 1).astype(np.float32)[plank_idx.astype(int)]
    flow = _stretched_noise(h, w, rng, 10, 3.0)
    grain = _stretched_noise(h, w, rng, 24, 1.2)
    k = int(rng.integers(18, 34))
    rings = 0.5 + 0.5 * np.sin(2 * np.pi * (k * yy / h + offset * 7) + 9.0 * flow)
    rings = rings ** 2.2
    t = np.clip(0.25 + 0.45 * rings + 0.3 * (grain - 0.5) + 0.15 * (offset - 0.5), 0, 1)
    img = dark[None, None, :] * (1 - t[..., None]) + light[None, None, :] * t[..., None]
    seam = np.abs(((yy / h * planks) % 1.0) - 0.5) > 0.496
    img[seam] *= 0.5
    return _grain(img, rng, 0.008)


def _linen(h: int, w: int, pal: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    pal = _by_luma(pal)
    tone = pal[-2] if len(pal) > 1 else pal[0]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    threads = int(min(h, w) / 3.2)
    warp = 0.5 + 0.5 * np.sin(2 * np.pi * threads * xx / w + 2.0 * fractal_noise(h, w, rng, beta=2.0))
    weft = 0.5 + 0.5 * np.sin(2 * np.pi * threads * yy / h + 2.0 * fractal_noise(h, w, rng, beta=2.0))
    slub = fractal_noise(h, w, rng, beta=1.6)
    shade = 0.86 + 0.08 * warp * weft + 0.05 * (slub - 0.5) + 0.06 * fractal_noise(h, w, rng, beta=3.0)
    return tone[None, None, :] * shade[..., None]


def _bokeh(h: int, w: int, pal: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    pal = _by_luma(pal)
    base = _gradient(h, w, [pal[0], pal[1], pal[0] * 0.6], rng) * 0.8
    lights = np.zeros((h, w, 3), np.float32)
    scale = min(h, w)
    for _ in range(int(rng.integers(25, 55))):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        r = rng.uniform(0.015, 0.07) * scale
        colour = pal[int(rng.integers(len(pal) // 2, len(pal)))] * rng.uniform(0.35, 0.8)
        layer = np.zeros((h, w), np.float32)
        cv2.circle(layer, (int(cx), int(cy)), int(r), 1.0, -1, lineType=cv2.LINE_AA)
        lights += layer[..., None] * colour
    lights = cv2.GaussianBlur(lights, (0, 0), scale * 0.006)
    img = 1 - (1 - np.clip(base, 0, 1)) * (1 - np.clip(lights, 0, 1))  # screen blend
    return _grain(img, rng, 0.01)


_RENDER: dict[str, Callable[..., np.ndarray]] = {
    "gradient": _gradient, "marble": _marble, "watercolor": _watercolor, "terrazzo": _terrazzo,
    "concrete": _concrete, "wood": _wood, "linen": _linen, "bokeh": _bokeh,
}


def render_asset(prompt: str, width: int, height: int, seed: int) -> tuple[Image.Image, AssetPlan]:
    """One asset for the prompt, deterministic for (prompt, size, seed)."""
    plan = plan_asset(prompt, seed)
    rng = np.random.default_rng([seed & 0xFFFFFFFF, 7])
    pal = [_hex(c) for c in PALETTES[plan.palette]]
    order = rng.permutation(len(pal))
    pal = [pal[i] for i in order]
    if plan.family == "pattern":
        arr = _pattern(height, width, pal, rng, plan.motif or "dots")
    else:
        arr = _RENDER[plan.family](height, width, pal, rng)
    img = Image.fromarray((np.clip(arr, 0.0, 1.0) * 255 + 0.5).astype(np.uint8), "RGB")
    img.info["asset"] = f"{plan.family}:{plan.motif or '-'}:{plan.palette}"
    # what was drawn, for metadata made from the image rather than from the words typed (issue 21)
    img.info["drawn"] = {"family": plan.family, "motif": plan.motif, "palette": plan.palette,
                         "periodic": plan.seamless}
    return img, plan


class LiteT2IEngine:
    """Text-to-image without weights: procedural stock assets (patterns, textures, backgrounds)."""

    name = "lite"
    caps = EngineCaps(inpaint=False, text2image=True, work_megapixels=None, size_multiple=1)

    def text2image(self, job: Text2ImageJob, progress: "ProgressFn | None" = None,
                   cancel: "CancelToken | None" = None) -> EngineResult:
        if not (MIN_SIDE <= job.width <= MAX_SIDE and MIN_SIDE <= job.height <= MAX_SIDE):
            raise InputError("engine.bad_size", mult=1, min=MIN_SIDE, max=MAX_SIDE, w=job.width, h=job.height)
        images: list[Image.Image] = []
        for i in range(max(1, job.num_images)):
            if cancel is not None and cancel.cancelled:
                raise CancelledError()
            img, plan = render_asset(job.prompt or "", job.width, job.height, job.seed + i)
            images.append(img)
            if progress is not None:
                progress(i + 1, job.num_images, "generate")
            log.debug("lite t2i %s seed %d", img.info.get("asset"), job.seed + i)
        return EngineResult(images=images)

    def close(self) -> None:
        return None


def create_engine(settings: "Settings") -> LiteT2IEngine:
    return LiteT2IEngine()


def _periodic_check(img: Image.Image) -> float:
    """Mean absolute jump across the wrap seam relative to inside (tests: seamless ~ 1)."""
    a = np.asarray(img, np.float32)
    seam = np.abs(a[:, 0] - a[:, -1]).mean() + np.abs(a[0] - a[-1]).mean()
    inside = np.abs(a[:, 1] - a[:, 0]).mean() + np.abs(a[1] - a[0]).mean()
    return float(seam / max(inside, 1e-6)) if math.isfinite(inside) else float("inf")
