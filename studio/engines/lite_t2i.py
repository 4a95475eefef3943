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
# Each mood has several palettes in its spirit: every item of a batch draws its own (by seed), so a
# keyword batch ("카페") is not all one brown. The first of each list is the mood's own palette.
MOOD_VARIANTS: dict[str, tuple[tuple[str, ...], ...]] = {
    "coffee": (("#2b1a12", "#5c3a26", "#a47551", "#d9bf9f", "#f3e9dc"),      # espresso
               ("#6f4e37", "#c8a27c", "#e8d5b9", "#f5ede0", "#fffaf3"),      # latte cream
               ("#3d2b1f", "#b86b2e", "#e0a458", "#f2e2c4", "#2f6f73"),      # caramel and teal
               ("#4b2e2a", "#8a5a4b", "#d8a48f", "#f2d7cf", "#fbf4ef"),      # mocha and blush
               ("#1f3d33", "#3f6b57", "#c9b79c", "#efe6d6", "#8c5a3c"),      # cafe green
               ("#5a2e1f", "#b5563a", "#e39b7b", "#f4dcc8", "#fbf3ea"),      # terracotta
               ("#4a5a2f", "#8ea46a", "#d6ddb8", "#f4f1e4", "#7a5230"),      # matcha latte
               ("#1d2a3a", "#3e5c76", "#c6a27a", "#eadbc8", "#f8f4ee")),     # navy and sand
    "minimal": (("#eceae6", "#d7d2ca", "#b9b2a6", "#8c857a", "#4a463f"),
                ("#f4f4f2", "#dcdedf", "#b8bcbf", "#7d8388", "#3b4044"),     # cool grey
                ("#f6efe6", "#e6d6c3", "#c9ae8e", "#9b7f63", "#3e352c"),     # sand
                ("#f3f1ec", "#dfe3da", "#b7c2b0", "#7f8e7a", "#3d4639"),     # sage grey
                ("#faf7f2", "#eadfd6", "#d1b8ac", "#a0837a", "#4d3c37")),    # clay
    "pastel": (("#f6d6e0", "#cfe3f2", "#e6dcf5", "#fbe8c8", "#d4efe4"),
               ("#ffd6d6", "#ffe8c2", "#fff6c7", "#d9f2d0", "#cde7f7"),      # rainbow sherbet
               ("#e3d7f7", "#cfd8f7", "#f7d7ef", "#fdf1f7", "#9e8cc8"),      # lilac
               ("#d4efe4", "#bfe3e0", "#fbe8c8", "#fffaf0", "#78b8a8"),      # mint cream
               ("#fde2d3", "#f8c9b5", "#fbe8c8", "#fffaf4", "#d99a80")),     # peach
    "luxury": (("#121212", "#2b2b2b", "#8c6d3f", "#d4af6a", "#f3e6c4"),
               ("#0c1a2b", "#1d3557", "#b08d57", "#e6c88f", "#f6efe0"),      # navy and gold
               ("#1b2e25", "#2f4f3e", "#a8864f", "#d9bd83", "#f1e9d6"),      # emerald and gold
               ("#2a0f16", "#5b1a2a", "#b98b5e", "#e2c39a", "#f7ece0"),      # burgundy and gold
               ("#f5f1ea", "#e4dccf", "#c2b49b", "#9c8a6c", "#2b2620")),     # ivory and bronze
    "forest": (("#1d3b2a", "#3e6b48", "#7fa36b", "#c8d8a8", "#eef2e2"),
               ("#22332b", "#4f6f52", "#a3b18a", "#dad7cd", "#f6f4ee"),      # sage
               ("#2e3b1f", "#6b7b3a", "#c2a35a", "#eadfb8", "#f9f5e8"),      # olive and mustard
               ("#0f3b3a", "#2a6f66", "#8cc0a8", "#e3f0e6", "#c96f4a")),     # pine and rust
    "ocean": (("#0b2545", "#13315c", "#1f6f8b", "#8ecae6", "#e0f4f8"),
              ("#023e5a", "#0a7b93", "#58c4c6", "#f2e6cf", "#fffaf0"),       # lagoon and sand
              ("#14213d", "#274c77", "#6096ba", "#a3cef1", "#e7ecef"),       # denim
              ("#003049", "#1e6091", "#f4a261", "#f7e1c4", "#fdfaf5")),      # sea and coral
    "rose": (("#4a1c2b", "#a83e5a", "#e88ca5", "#f6c9d3", "#fdf0f3"),
             ("#5b3a3a", "#b57f7a", "#e7bfb5", "#f7e4dc", "#fffaf7"),        # dusty rose
             ("#3e2240", "#8e5c8a", "#d8a7c9", "#f3dfee", "#fdf7fb"),        # mauve
             ("#6a1f2f", "#c44b5c", "#f5a3a0", "#ffe3d8", "#2f4f4f")),       # berry and slate
    "autumn": (("#5a2a12", "#a2441b", "#d9822b", "#efc27a", "#f7ead2"),
               ("#3b2a1a", "#7f5539", "#b08968", "#ddb892", "#ede0d4"),      # walnut
               ("#4a2c2a", "#9c3d2f", "#d98e56", "#f3d9b1", "#57634a")),     # rust and moss
}
FAMILIES: tuple[str, ...] = tuple(FAMILY_WORDS)
SEAMLESS_FAMILIES = frozenset({"pattern", "terrazzo", "concrete", "linen", "marble", "wood"})


_STYLE: dict[str, str] = {}   # the look a renderer chose for the image being drawn (render_asset reads it)


def _hex(code: str) -> np.ndarray:
    code = code.lstrip("#")
    return np.array([int(code[i:i + 2], 16) for i in (0, 2, 4)], dtype=np.float32) / 255.0


@dataclass(frozen=True)
class AssetPlan:
    family: str
    palette: str
    motif: str | None
    seamless: bool


def mood_palette(mood: str, seed: int, prompt: str = "") -> list[np.ndarray]:
    """The colours of one item: one of the mood's palettes (by seed), shifted by the prompt's colour
    words (pastel lighter, vibrant richer, muted/earth softer), so the items of a batch differ."""
    rng = np.random.default_rng([seed & 0xFFFFFFFF, 11])
    variants = MOOD_VARIANTS.get(mood)
    if variants is None:
        base = [_hex(c) for c in PALETTES[mood]]
        # a mood without hand-made variants: its palette with a small hue turn per item
        turn = float(rng.uniform(-0.08, 0.08))
        pal = [_hue_turn(c, turn) for c in base]
    else:
        # consecutive items (seed + i) walk through the mood's palettes in turn
        pal = [_hex(c) for c in variants[(int(seed) + sum(map(ord, mood))) % len(variants)]]
    low = prompt.lower()
    grey = lambda c, k: c * (1 - k) + float(c.mean()) * k  # noqa: E731
    if "pastel" in low:
        pal = [c * 0.7 + 0.3 for c in pal]
    elif "vibrant" in low:
        pal = [np.clip(grey(c, -0.35), 0, 1) for c in pal]
    elif "muted" in low or "earth" in low or "monochrome" in low:
        pal = [grey(c, 0.35 if "monochrome" not in low else 0.55) for c in pal]
    return [np.clip(c, 0.0, 1.0).astype(np.float32) for c in pal]


def _hue_turn(c: np.ndarray, turn: float) -> np.ndarray:
    import colorsys

    h, l, s_ = colorsys.rgb_to_hls(*[float(x) for x in c])
    return np.array(colorsys.hls_to_rgb((h + turn) % 1.0, l, s_), np.float32)


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
        s = rng.uniform(0.18, 0.4)
        wgt = np.exp(-(((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))) ** 1.5
        acc += wgt[..., None] * pal[i % len(pal)]
        wsum += wgt
    img = acc / np.maximum(wsum, 1e-6)[..., None]
    warp = fractal_noise(h, w, rng, beta=3.0)
    img = img * (0.94 + 0.1 * warp[..., None])
    return _grain(img, rng, 0.008)


def _marble(h: int, w: int, pal: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Polished stone: a cloudy base, broad soft veins and a few sharp ones, all following one flow."""
    pal = _by_luma(pal)
    tier = rng.random()
    _STYLE["style"] = "dark" if tier < 0.3 else ("coloured" if tier < 0.55 else "light")
    if tier < 0.3:   # dark stone (nero / emperador) with light veins
        base = 0.8 * pal[0] + 0.2 * np.array([0.08, 0.08, 0.08], np.float32)
        vein = 0.6 * pal[-1] + 0.4 * np.array([0.95, 0.93, 0.88], np.float32)
        accent = pal[-2]
    elif tier < 0.55:  # coloured stone (verde, rosa, travertine) in a mid colour of the palette
        base = 0.75 * pal[len(pal) // 2 + 1] + 0.25 * pal[-1]
        vein = 0.5 * pal[-1] + 0.5 * np.array([0.97, 0.96, 0.93], np.float32)
        accent = pal[1]
    else:
        base = 0.55 * pal[-1] + 0.45 * np.array([0.96, 0.95, 0.93], np.float32)
        vein = pal[0] if rng.random() < 0.6 else pal[1]
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
    """Watercolour on cold-press paper: two or three glazes of related colours with smooth outlines,
    pigment pooled at the wet edges and granulation, over plenty of white paper. Half of them are a
    graded wash (colour running in from one side), the rest loose pools."""
    paper = np.array([0.985, 0.975, 0.955], np.float32)
    img = np.ones((h, w, 3), np.float32) * paper
    fibre = fractal_noise(h, w, rng, beta=1.2)
    gran = fractal_noise(h, w, rng, beta=0.6)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    graded = rng.random() < 0.5
    _STYLE["style"] = "graded" if graded else "loose"
    ang = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(ang) * (xx / w - 0.5) + np.sin(ang) * (yy / h - 0.5)) * 1.4 + 0.5
    pigments = _by_luma(pal)[1:]                     # the darkest colour is never a pigment
    start = int(rng.integers(len(pigments)))
    for i in range(int(rng.integers(2, 4))):
        field = fractal_noise(h, w, rng, beta=rng.uniform(3.6, 4.2))
        if graded:
            field = 0.55 * field + 0.45 * np.clip(ramp + rng.uniform(-0.15, 0.15), 0, 1)
        level = rng.uniform(0.5, 0.62)
        wash = np.clip((field - level) / 0.25, 0.0, 1.0) ** 0.8
        edge = np.exp(-((field - level) / 0.03) ** 2) * 0.22   # pigment pools at the wet edge
        edge = cv2.GaussianBlur(edge, (0, 0), max(0.6, min(h, w) * 0.0015))
        alpha = np.clip(wash * (0.5 + 0.2 * gran) + edge, 0.0, 0.9)[..., None]
        colour = pigments[(start + i) % len(pigments)]
        lum = float(colour @ np.array([0.299, 0.587, 0.114], np.float32))
        if lum < 0.4:   # a near-black in the palette would read as dirt: dilute it like a wash
            colour = colour + (paper - colour) * (0.4 - lum) / 0.5
        chroma = float(colour.max() - colour.min())
        if chroma < 0.25:   # a greyish colour would wash out as mud: a little more pigment
            colour = np.clip(colour.mean() + (colour - colour.mean()) * 1.5, 0.02, 1.0)
        elif chroma > 0.45:  # a loud one (lime, neon) is toned down, as a wash would be
            colour = colour.mean() + (colour - colour.mean()) * 0.55
        colour = np.clip(colour, 0.02, 1.0) ** (1.0 + 2.5 * max(0.0, lum - 0.55))   # pale pigment: richer
        img = img * (1 - alpha) + (img * colour) * alpha  # multiply glaze like real pigment
    img *= (0.965 + 0.035 * fibre[..., None])
    return img


def _pattern(h: int, w: int, pal: list[np.ndarray], rng: np.random.Generator, motif: str) -> np.ndarray:
    pal = _by_luma(pal)
    bg = pal[-1] if rng.random() < 0.6 else pal[0]
    fg_choices = [c for c in pal if not np.allclose(c, bg)]
    fg = fg_choices[int(rng.integers(len(fg_choices)))]
    luma = np.array([0.299, 0.587, 0.114], np.float32)
    if abs(float((fg - bg) @ luma)) < 0.2:   # too faint to read as a pattern: the most contrasting colour
        fg = max(fg_choices, key=lambda c: abs(float((c - bg) @ luma)))
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
    count = int(rng.integers(700, 1100) * (h * w) / (1024 * 1024)) + 20
    canvas = (img * 255).astype(np.uint8)
    big = np.zeros((h + 2 * scale // 8, w + 2 * scale // 8, 3), np.uint8)
    pad = scale // 8
    big[pad:pad + h, pad:pad + w] = canvas
    for _ in range(count):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        r = rng.uniform(0.008, 0.03) * scale * (2.2 if rng.random() < 0.12 else 1.0)   # a few large chips
        sides = int(rng.integers(4, 8))
        ang = np.sort(rng.uniform(0, 2 * np.pi, sides))
        rad = r * rng.uniform(0.55, 1.0, sides)
        chip = pal[int(rng.integers(0, len(pal) - 1))]
        luma = np.array([0.299, 0.587, 0.114], np.float32)
        if abs(float((chip - base) @ luma)) < 0.18:   # a chip as pale as the ground would vanish
            chip = chip * 0.62
        colour = tuple(int(c * 255) for c in chip)
        for ox in (-w, 0, w):           # wrap chips across the edges: the tile stays seamless
            for oy in (-h, 0, h):
                pts = np.stack([cx + ox + pad + rad * np.cos(ang), cy + oy + pad + rad * np.sin(ang)], -1)
                if pts[:, 0].max() < 0 or pts[:, 1].max() < 0 or pts[:, 0].min() > w + 2 * pad or pts[:, 1].min() > h + 2 * pad:
                    continue
                cv2.fillPoly(big, [np.round(pts * 4).astype(np.int32)], colour, lineType=cv2.LINE_AA, shift=2)
    img = big[pad:pad + h, pad:pad + w].astype(np.float32) / 255.0
    return _grain(img, rng, 0.01)


def _concrete(h: int, w: int, pal: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Cast concrete: cloudy stains at several scales, sand grain, air holes with a dark core and a
    light rim, and (often) formwork panel joints with tie holes, the look stock sites sell as
    "concrete wall". Everything lies on a periodic lattice, so the tile repeats seamlessly."""
    pal = _by_luma(pal)
    grey = np.array([0.66, 0.65, 0.63], np.float32)
    tone = 0.85 * grey + 0.15 * pal[int(rng.integers(1, len(pal) - 1))]   # concrete is grey, barely tinted
    tone *= rng.uniform(0.8, 1.15)
    scale = min(h, w)
    stains = fractal_noise(h, w, rng, beta=3.0)
    mid = fractal_noise(h, w, rng, beta=2.0)
    sand = fractal_noise(h, w, rng, beta=0.4)
    speck = (fractal_noise(h, w, rng, beta=0.2) > 0.8).astype(np.float32) - \
        (fractal_noise(h, w, rng, beta=0.2) > 0.85).astype(np.float32)
    shade = 0.74 + 0.40 * stains + 0.16 * (mid - 0.5) + 0.10 * (sand - 0.5) + 0.05 * speck
    # water marks: darker streaks running down from a few points
    streak = _stretched_noise(w, h, rng, 14, 2.2).T
    shade -= 0.06 * np.clip(streak - 0.6, 0, 1) / 0.4
    img = tone[None, None, :] * shade[..., None]
    # air holes (bug holes), wrapped across the edges
    holes = np.zeros((h, w), np.float32)
    rims = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(150, 320) * (h * w) / (1024 * 1024)) + 12):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        r = max(1.0, rng.uniform(0.0015, 0.006) * scale)
        for ox in (-w, 0, w):
            for oy in (-h, 0, h):
                x, y = cx + ox, cy + oy
                if -2 * r < x < w + 2 * r and -2 * r < y < h + 2 * r:
                    cv2.circle(holes, (int(x * 4), int(y * 4)), int(r * 4), 1.0, -1, cv2.LINE_AA, 2)
                    cv2.circle(rims, (int(x * 4), int(y * 4 + r * 2)), int(r * 4.6), 1.0, -1, cv2.LINE_AA, 2)
    rims = np.clip(rims - holes, 0, 1)
    img = img * (1 + 0.10 * rims[..., None])
    img = img * (1 - 0.55 * holes[..., None])
    if rng.random() < 0.65:   # formwork panels with tie holes
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        nx = int(rng.integers(1, 3))
        ny = int(rng.integers(1, 4))
        u = (xx / w * nx + 0.5) % 1.0
        v = (yy / h * ny + 0.5) % 1.0
        jx = np.clip(1 - np.abs(u - 0.0) * w / nx / 1.6, 0, 1) + np.clip(1 - np.abs(u - 1.0) * w / nx / 1.6, 0, 1)
        jy = np.clip(1 - np.abs(v - 0.0) * h / ny / 1.6, 0, 1) + np.clip(1 - np.abs(v - 1.0) * h / ny / 1.6, 0, 1)
        joint = np.clip(jx + jy, 0, 1)
        img = img * (1 - 0.22 * joint[..., None])
        # tie holes: a 2x2 (or 3x2) grid per panel, a dark cone with a soft shadow
        k = int(rng.integers(2, 4))
        tu = (u * k) % 1.0 - 0.5
        tv = (v * 2) % 1.0 - 0.5
        d = np.sqrt((tu * w / nx / k) ** 2 + (tv * h / ny / 2) ** 2)
        r = 0.011 * scale
        hole = _smooth(d - r, 1.2)
        ring = _smooth(np.abs(d - r * 1.25) - r * 0.25, 1.2)
        img = img * (1 - 0.5 * hole[..., None]) * (1 - 0.12 * ring[..., None])
    return _grain(img, rng, 0.012)


def _stretched_noise(h: int, w: int, rng: np.random.Generator, stretch: int, beta: float) -> np.ndarray:
    """Periodic noise stretched along x (wood grain): computed narrow, resized with wrap-around."""
    narrow = fractal_noise(h, max(8, w // stretch), rng, beta=beta)
    tiled = np.concatenate([narrow, narrow, narrow], axis=1)
    big = cv2.resize(tiled, (3 * w, h), interpolation=cv2.INTER_CUBIC)
    return big[:, w:2 * w]


WOOD_TONES: tuple[tuple[tuple[float, float, float], tuple[float, float, float]], ...] = (
    ((0.36, 0.22, 0.13), (0.74, 0.56, 0.38)),     # oak
    ((0.22, 0.13, 0.08), (0.48, 0.31, 0.19)),     # walnut
    ((0.55, 0.42, 0.30), (0.88, 0.78, 0.64)),     # ash / birch
    ((0.40, 0.18, 0.10), (0.72, 0.40, 0.25)),     # cherry
    ((0.30, 0.29, 0.27), (0.66, 0.63, 0.58)),     # weathered grey
    ((0.62, 0.52, 0.40), (0.93, 0.88, 0.80)),     # whitewashed
)


def _wood(h: int, w: int, pal: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Wooden planks as a floor or table top: every board its own grain (fine dark growth lines that
    bend around knots, long fibres), its own tone, staggered butt joints and bevelled edges. Boards
    and joints are placed so that the wrap-around edges fall inside a board: the tile repeats."""
    pal = _by_luma(pal)
    nd, nl = (np.array(c, np.float32) for c in WOOD_TONES[int(rng.integers(len(WOOD_TONES)))])
    dark = 0.85 * nd + 0.15 * pal[max(0, len(pal) // 2 - 1)]
    light = 0.85 * nl + 0.15 * pal[min(len(pal) - 1, len(pal) // 2 + 1)]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    planks = int(rng.integers(3, 7))
    pv = yy / h * planks + 0.5                      # the wrap row falls mid-board
    plank = np.floor(pv).astype(np.int64) % planks
    local = pv % 1.0                                # 0..1 across the board
    # butt joints: per board row 1-2 joints away from the left/right edge; the last segment and
    # the first are the same board (it continues across the wrap)
    nseg = int(rng.integers(1, 3))
    cuts = np.sort(rng.uniform(0.12, 0.88, (planks, nseg)), axis=1) * w
    seg = np.zeros((h, w), np.int64)
    for j in range(nseg):
        seg += (xx >= cuts[plank, j]).astype(np.int64)
    seg %= (nseg + 1) if nseg > 0 else 1
    seg[seg == nseg] = 0                            # after the last cut = the first board again
    board = plank * 4 + seg
    nb = planks * 4
    freq = rng.uniform(5.0, 11.0, nb).astype(np.float32)[board]
    phase = rng.uniform(0, 1, nb).astype(np.float32)[board]
    bend = rng.uniform(0.8, 2.2, nb).astype(np.float32)[board]
    tone = rng.uniform(-0.12, 0.12, nb).astype(np.float32)[board]
    flow = _stretched_noise(h, w, rng, 14, 3.2)
    flow2 = _stretched_noise(h, w, rng, 5, 3.6)
    # knots: the growth lines bend around a few points (wrapped distance)
    knot = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(0, 4))):
        kx, ky = rng.uniform(0, w), rng.uniform(0, h)
        dx = np.minimum(np.abs(xx - kx), w - np.abs(xx - kx)) / (0.05 * w)
        dy = np.minimum(np.abs(yy - ky), h - np.abs(yy - ky)) / (0.2 * h / planks)
        knot += np.exp(-(dx * dx + dy * dy))
    lines_t = freq * local + phase + bend * (flow - 0.5) * 1.1 + 0.5 * flow2 + 1.2 * knot
    ring = np.abs((lines_t % 1.0) - 0.5) * 2.0       # 0 at a growth line
    late = np.clip(1.0 - ring, 0, 1) ** 6            # thin dark latewood lines
    early = 0.5 + 0.5 * np.cos(2 * np.pi * lines_t)  # broad soft bands
    fibre = _stretched_noise(h, w, rng, 60, 0.8)     # long fine fibres
    t = np.clip(0.62 + 0.12 * (early - 0.5) - 0.40 * late + 0.30 * (fibre - 0.5) + tone
                - 0.25 * np.clip(knot - 0.6, 0, 1), 0, 1)
    img = dark[None, None, :] * (1 - t[..., None]) + light[None, None, :] * t[..., None]
    # bevelled board edges: light on the upper edge, a dark gap and shadow on the lower
    edge_px = max(1.0, 0.004 * min(h, w))
    dist_top = local * h / planks
    dist_bot = (1 - local) * h / planks
    img *= (1 + 0.10 * np.exp(-dist_top / edge_px))[..., None]
    img *= (1 - 0.55 * np.exp(-dist_bot / (edge_px * 0.7)))[..., None]
    # butt joints: a thin dark line where a board ends
    jd = np.full((h, w), np.inf, np.float32)
    for j in range(nseg):
        jd = np.minimum(jd, np.abs(xx - cuts[plank, j]))
    img *= (1 - 0.5 * np.exp(-jd / (edge_px * 0.8)))[..., None]
    return _grain(img, rng, 0.006)


def _linen(h: int, w: int, pal: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Woven linen: visible threads both ways (each thread its own thickness and shade along its
    length: the slubs that make linen read as linen even small), plain over-under weave, a soft
    crease-like light falloff. Thread counts are whole numbers per tile: it repeats seamlessly."""
    pal = _by_luma(pal)
    tone = pal[-2] if len(pal) > 1 else pal[0]
    tone = 0.6 * tone + 0.4 * np.array([0.86, 0.82, 0.74], np.float32) * rng.uniform(0.75, 1.05)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    threads = max(16, int(min(h, w) / rng.uniform(4.5, 7.0)))
    tx = threads
    ty = max(16, int(round(threads * h / w)))
    u = xx / w * tx + 0.5          # the wrap-around edge falls mid-thread
    v = yy / h * ty + 0.5
    iu = np.floor(u).astype(np.int64) % tx
    iv = np.floor(v).astype(np.int64) % ty
    # per-thread shade varying slowly along the thread (slubs), periodic along it
    warp_shade = _stretched_noise(w, h, rng, 20, 1.4).T          # varies along y slowly
    weft_shade = _stretched_noise(h, w, rng, 20, 1.4)
    wrand = rng.uniform(-1, 1, tx).astype(np.float32)[iu]
    frand = rng.uniform(-1, 1, ty).astype(np.float32)[iv]
    fu = u % 1.0
    fv = v % 1.0
    warp_prof = np.sin(np.pi * fu) ** 0.8                         # round thread cross-section
    weft_prof = np.sin(np.pi * fv) ** 0.8
    over = ((iu + iv) % 2 == 0)                                  # plain weave: over, under
    # thicker threads (slubs) here and there, thread by thread
    wthick = (rng.random(tx) < 0.12).astype(np.float32)[iu]
    fthick = (rng.random(ty) < 0.12).astype(np.float32)[iv]
    warp_v = warp_prof ** (1 - 0.5 * wthick) * (0.85 + 0.16 * wrand + 0.45 * (warp_shade - 0.5))
    weft_v = weft_prof ** (1 - 0.5 * fthick) * (0.85 + 0.16 * frand + 0.45 * (weft_shade - 0.5))
    cloth = np.where(over, np.maximum(warp_v, 0.75 * weft_v), np.maximum(weft_v, 0.75 * warp_v))
    light = fractal_noise(h, w, rng, beta=3.4)
    shade = 0.62 + 0.38 * cloth + 0.12 * (light - 0.5)
    return tone[None, None, :] * shade[..., None]


def _bokeh(h: int, w: int, pal: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Defocused lights in one of four looks stock sites sell: night lights on a dark ground, high-key
    (pale ground, soft white and pastel discs), a garland band of lights across the frame, or fine
    glitter. Discs are round or hexagonal (a six-blade aperture), with a brighter rim."""
    pal = _by_luma(pal)
    look = ("night", "airy", "garland", "glitter")[int(rng.integers(4))]
    _STYLE["style"] = look
    scale = min(h, w)
    if look == "airy":
        base = _gradient(h, w, [pal[-2], pal[len(pal) // 2], 0.6 * pal[-1] + 0.4 * pal[1]], rng) * 0.9
        lights_pal = [0.4 * c + 0.6 for c in pal[-2:]] + [np.ones(3, np.float32)]
    else:
        base = _gradient(h, w, [pal[0], pal[1], pal[0] * 0.6], rng) * 0.8
        lights_pal = pal[len(pal) // 2:]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if look == "glitter":
        n, rmin, rmax = int(rng.integers(120, 220)), 0.004, 0.018
    elif look == "garland":
        n, rmin, rmax = int(rng.integers(40, 70)), 0.015, 0.055
    else:
        n, rmin, rmax = int(rng.integers(22, 50)), 0.015, 0.08
    hexagon = rng.random() < 0.35
    lights = np.zeros((h, w, 3), np.float32)
    a0, a1 = rng.uniform(-0.4, 0.4), rng.uniform(0.15, 0.35)     # the garland's curve
    for _ in range(n):
        if look == "garland":
            cx = rng.uniform(0, w)
            cy = h * (0.5 + a0 * (cx / w - 0.5) + a1 * math.sin(math.pi * cx / w) - a1 * 0.6) \
                + rng.normal(0, 0.06 * h)
        else:
            cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        r = rng.uniform(rmin, rmax) * scale
        colour = lights_pal[int(rng.integers(len(lights_pal)))] * rng.uniform(0.35, 0.85)
        x0, x1 = int(max(0, cx - r - 2)), int(min(w, cx + r + 3))
        y0, y1 = int(max(0, cy - r - 2)), int(min(h, cy + r + 3))
        if x1 <= x0 or y1 <= y0:
            continue
        dx, dy = xx[y0:y1, x0:x1] - cx, yy[y0:y1, x0:x1] - cy
        if hexagon:
            ang = np.arctan2(dy, dx)
            d = np.sqrt(dx * dx + dy * dy) * np.cos(((ang + np.pi / 6) % (np.pi / 3)) - np.pi / 6) / math.cos(0)
        else:
            d = np.sqrt(dx * dx + dy * dy)
        disc = _smooth(d - r, max(1.0, r * 0.08))
        rim = np.exp(-((d - r * 0.9) / max(1.0, r * 0.08)) ** 2) * 0.35
        lights[y0:y1, x0:x1] += (disc * (0.8 + 0.2 * rng.random()) + rim)[..., None] * colour
    lights = cv2.GaussianBlur(lights, (0, 0), scale * 0.002)
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
    pal = mood_palette(plan.palette, seed, prompt)
    order = rng.permutation(len(pal))
    pal = [pal[i] for i in order]
    _STYLE.clear()
    if plan.family == "pattern":
        arr = _pattern(height, width, pal, rng, plan.motif or "dots")
    else:
        arr = _RENDER[plan.family](height, width, pal, rng)
    style = _STYLE.pop("style", "")
    img = Image.fromarray((np.clip(arr, 0.0, 1.0) * 255 + 0.5).astype(np.uint8), "RGB")
    img.info["asset"] = f"{plan.family}:{plan.motif or '-'}:{plan.palette}"
    # what was drawn, for metadata made from the image rather than from the words typed (issue 21)
    img.info["drawn"] = {"family": plan.family, "motif": plan.motif, "palette": plan.palette,
                         "periodic": plan.seamless, "style": style}
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
