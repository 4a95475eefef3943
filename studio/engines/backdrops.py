"""Procedural product-photo backdrops for the lite engine: numpy + OpenCV, no weights.

`render_backdrop(kind, (w, h), palette, seed, layout=..., horizon=...)` returns an `(h, w, 3)`
float32 RGB array in [0, 1]. Six kinds (the `Backdrop` literal in `studio.presets`):

- ``sweep``  seamless studio paper: soft vertical falloff, a light hotspot, vignette.
- ``split``  two-tone pop colour: horizontal, diagonal or arch block (picked by the seed).
- ``bokeh``  out-of-focus light discs over a soft gradient.
- ``marble`` / ``wood`` / ``linen``  textures built from value-noise fields.

Two layouts: ``tabletop`` (products): a textured surface below `horizon` (a fraction of the
height) seen in perspective, with depth-of-field blur towards the back, and a soft wall above;
``wall`` (people): the texture fills the frame, defocused like a background behind a portrait.

Everything is vectorised and deterministic per seed. Different seeds rotate the palette, move
the light and change the kind's own layout (bokeh discs, vein angle, planks, split shape).
Noise fields, coordinate grids and perspective maps are cached in small LRUs keyed by
(size, seed, scale), so a warm re-render at 1080x1350 costs tens of milliseconds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, Sequence

import cv2
import numpy as np

log = logging.getLogger(__name__)

BackdropKind = Literal["sweep", "split", "bokeh", "marble", "wood", "linen"]
KINDS: tuple[str, ...] = ("sweep", "split", "bokeh", "marble", "wood", "linen")
Layout = Literal["tabletop", "wall"]

_WHITE = np.ones(3, np.float32)
_KIND_SALT = {k: i * 7919 for i, k in enumerate(KINDS)}


@dataclass(frozen=True)
class Backdrop:
    rgb: np.ndarray            # (h, w, 3) float32 in [0, 1]
    kind: str
    layout: str
    horizon_px: int | None     # first surface row for tabletop layouts
    light_x: float             # -1 (light from the left) .. 1 (from the right)


# --------------------------------------------------------------------------------------------
# the owner's scene words
# --------------------------------------------------------------------------------------------
# word (Korean or English, lower case) -> (backdrop kind or None, palette or None)
SCENE_WORDS: dict[str, tuple[str | None, tuple[str, ...] | None]] = {
    "우드": ("wood", None), "나무": ("wood", None), "원목": ("wood", None), "wood": ("wood", None),
    "wooden": ("wood", None), "테이블": ("wood", None), "table": ("wood", None),
    "대리석": ("marble", None), "마블": ("marble", None), "marble": ("marble", None),
    "린넨": ("linen", None), "리넨": ("linen", None), "linen": ("linen", None), "천": ("linen", None),
    "콘크리트": ("sweep", ("#9a9a96", "#c9c8c3", "#6f6f6b")), "concrete": ("sweep", ("#9a9a96", "#c9c8c3", "#6f6f6b")),
    "파스텔": ("split", ("#f6d6e0", "#d7e9f7", "#fdf1c7")), "pastel": ("split", ("#f6d6e0", "#d7e9f7", "#fdf1c7")),
    "야외": ("bokeh", ("#8fbf6a", "#e9f0c8", "#5c8a45")), "outdoor": ("bokeh", ("#8fbf6a", "#e9f0c8", "#5c8a45")),
    "공원": ("bokeh", ("#8fbf6a", "#e9f0c8", "#5c8a45")), "숲": ("bokeh", ("#4f7d3a", "#a9c98a", "#2f5128")),
    "카페": ("bokeh", ("#c08a5b", "#f1d9b5", "#5a3a28")), "cafe": ("bokeh", ("#c08a5b", "#f1d9b5", "#5a3a28")),
    "스튜디오": ("sweep", None), "studio": ("sweep", None),
    "따뜻한": (None, ("#d9a066", "#f3dcc0", "#8a5a3b")), "warm": (None, ("#d9a066", "#f3dcc0", "#8a5a3b")),
    "시원한": (None, ("#a9d2e8", "#e8f4fa", "#4b7f9c")), "cool": (None, ("#a9d2e8", "#e8f4fa", "#4b7f9c")),
    "화이트": (None, ("#f4f2ee", "#dcd8d0")), "흰": (None, ("#f4f2ee", "#dcd8d0")), "white": (None, ("#f4f2ee", "#dcd8d0")),
    "블랙": (None, ("#1d1d1f", "#3a3a3e")), "검은": (None, ("#1d1d1f", "#3a3a3e")), "black": (None, ("#1d1d1f", "#3a3a3e")),
    "핑크": (None, ("#f4c2d0", "#fbe5ec")), "pink": (None, ("#f4c2d0", "#fbe5ec")),
    "봄": (None, ("#f6d6e0", "#e8f3d2", "#fdf1c7")), "spring": (None, ("#f6d6e0", "#e8f3d2", "#fdf1c7")),
    "가을": (None, ("#c7773a", "#efd1a8", "#7d4a26")), "autumn": (None, ("#c7773a", "#efd1a8", "#7d4a26")),
}


@dataclass(frozen=True)
class SceneChoice:
    kind: str | None
    palette: tuple[str, ...] | None
    used: tuple[str, ...]
    unused: tuple[str, ...]


def scene_from_words(text: str) -> SceneChoice:
    """Which backdrop family and colours the owner's words ask for (Korean or English).

    Each word (split on spaces and commas; a Korean particle after a known stem still counts)
    is matched against `SCENE_WORDS`; the first word naming a kind wins, palettes from several
    words are merged. Returns the words used and the ones the lite engine cannot draw."""
    import re

    kind: str | None = None
    palette: list[str] = []
    used: list[str] = []
    unused: list[str] = []
    for word in (w for w in re.split(r"[\s,./·]+", text or "") if w):
        low = word.lower()
        hit = SCENE_WORDS.get(low) or next((v for k, v in SCENE_WORDS.items() if len(k) >= 2 and low.startswith(k)), None)
        if hit is None:
            unused.append(word)
            continue
        used.append(word)
        if hit[0] and kind is None:
            kind = hit[0]
        if hit[1]:
            palette.extend(c for c in hit[1] if c not in palette)
    return SceneChoice(kind, tuple(palette) or None, tuple(used), tuple(unused))


# --------------------------------------------------------------------------------------------
# colour helpers
# --------------------------------------------------------------------------------------------
def hex_to_rgb(code: str) -> np.ndarray:
    code = code.lstrip("#")
    return np.array([int(code[i:i + 2], 16) for i in (0, 2, 4)], np.float32) / 255.0


def luma(rgb: np.ndarray) -> float:
    return float(rgb @ np.array([0.2126, 0.7152, 0.0722], np.float32))


def mix(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    return (a * (1.0 - t) + b * t).astype(np.float32)


def _palette(colours: Sequence[str]) -> list[np.ndarray]:
    pal = [hex_to_rgb(c) for c in colours] or [hex_to_rgb("#e9e4dc"), hex_to_rgb("#8a8a8a")]
    if len(pal) == 1:
        pal.append(mix(pal[0], _WHITE, 0.6))
    return pal


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


# --------------------------------------------------------------------------------------------
# cached fields
# --------------------------------------------------------------------------------------------
@lru_cache(maxsize=48)
def value_noise(h: int, w: int, seed: int, cell_y: float, cell_x: float, octaves: int = 4) -> np.ndarray:
    """Fractal value noise (zero mean, unit std), smooth at `cell` pixels; cached, read-only."""
    rng = np.random.default_rng(seed)
    out = np.zeros((h, w), np.float32)
    amp = 1.0
    cy, cx = float(cell_y), float(cell_x)
    for _ in range(octaves):
        gh = int(np.ceil(h / cy)) + 3
        gw = int(np.ceil(w / cx)) + 3
        grid = rng.standard_normal((gh, gw)).astype(np.float32)
        big = cv2.resize(grid, (int(gw * cx), int(gh * cy)), interpolation=cv2.INTER_CUBIC)
        oy = int(rng.integers(0, max(1, big.shape[0] - h)))
        ox = int(rng.integers(0, max(1, big.shape[1] - w)))
        out += amp * big[oy:oy + h, ox:ox + w]
        amp *= 0.5
        cy, cx = max(cy / 2.0, 1.0), max(cx / 2.0, 1.0)
    out -= out.mean()
    out /= max(float(out.std()), 1e-6)
    out.setflags(write=False)
    return out


@lru_cache(maxsize=8)
def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Normalised coordinates: x in [-1, 1] (left..right), y in [0, 1] (top..bottom)."""
    x = np.linspace(-1.0, 1.0, w, dtype=np.float32)[None, :].repeat(h, 0)
    y = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None].repeat(w, 1)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


@lru_cache(maxsize=8)
def _dither(h: int, w: int, seed: int) -> np.ndarray:
    """Tiny grain (about 1/255) so smooth gradients do not band after quantisation."""
    d = np.random.default_rng(seed).random((h, w, 1), dtype=np.float32)
    d = (d - 0.5) * (1.6 / 255.0)
    d.setflags(write=False)
    return d


@lru_cache(maxsize=8)
def _perspective_maps(w: int, h: int, horizon: int, tex_w: int, tex_h: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """cv2.remap maps that lay a flat texture on a table seen at an angle, and a depth weight."""
    rows = h - horizon
    s = (np.arange(rows, dtype=np.float32) + 0.5) / max(rows, 1)     # 0 far .. 1 near
    s0 = 0.55
    inv = 1.0 / (s + s0)
    near, far = 1.0 / (1.0 + s0), 1.0 / s0
    v = (inv - near) / (far - near)                                  # 0 near .. 1 far
    map_y = (tex_h - 1) * (1.0 - v)
    scale = inv / near * 0.85                                        # wider footprint far away
    xs = np.arange(w, dtype=np.float32) - (w - 1) / 2.0
    map_x = (tex_w - 1) / 2.0 + xs[None, :] * (scale[:, None] * tex_w / w)
    map_y2 = np.repeat(map_y[:, None], w, axis=1)
    depth = np.repeat(v[:, None], w, axis=1)
    for a in (map_x, map_y2, depth):
        a.setflags(write=False)
    return map_x.astype(np.float32), map_y2.astype(np.float32), depth.astype(np.float32)


def _low_res(fn, h: int, w: int, factor: int = 8) -> np.ndarray:
    """Evaluate a smooth field at 1/factor resolution and upsample (cheap lighting)."""
    lh, lw = max(2, h // factor), max(2, w // factor)
    small = fn(lh, lw)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


# --------------------------------------------------------------------------------------------
# lighting
# --------------------------------------------------------------------------------------------
def _light_field(h: int, w: int, light_x: float, horizon: float, strength: float, vignette: float) -> np.ndarray:
    def fn(lh: int, lw: int) -> np.ndarray:
        x, y = _grid(lh, lw)
        hx, hy = light_x * 0.45, max(horizon - 0.12, 0.15)
        r2 = ((x - hx) / 1.1) ** 2 + ((y - hy) / 0.75) ** 2
        hot = np.exp(-r2 * 1.6) * strength
        side = (x * light_x) * 0.05                                  # brighter on the light side
        vig = ((x ** 2) * 0.6 + ((y - 0.5) * 1.6) ** 2) * vignette
        return (1.0 - strength * 0.5 + hot + side - vig).astype(np.float32)

    return _low_res(fn, h, w)[..., None]


# --------------------------------------------------------------------------------------------
# kinds
# --------------------------------------------------------------------------------------------
def _sweep(h: int, w: int, pal: list[np.ndarray], rng: np.random.Generator, horizon: float,
           layout: str) -> np.ndarray:
    c = pal[int(rng.integers(len(pal)))]
    dark = luma(c) < 0.22
    base = c if dark else mix(c, _WHITE, float(rng.uniform(0.25, 0.45)))
    top = mix(base, pal[int(rng.integers(len(pal)))], 0.12) * (1.35 if dark else 0.9)
    hz = horizon if layout == "tabletop" else 0.85

    def fn(lh: int, lw: int) -> np.ndarray:
        _, y = _grid(lh, lw)
        t = _smoothstep(0.0, hz + 0.1, y)[..., None]
        img = top[None, None, :] * (1 - t) + base[None, None, :] * t
        if layout == "tabletop":  # the paper curves into a floor that falls off a little
            fl = _smoothstep(hz, 1.0, y)[..., None]
            img = img * (1.0 - 0.07 * fl)
        return img.astype(np.float32)

    return _low_res(fn, h, w)


def _split(h: int, w: int, pal: list[np.ndarray], rng: np.random.Generator, horizon: float,
           layout: str) -> np.ndarray:
    i = int(rng.integers(len(pal)))
    a = pal[i]
    # the partner: the palette colour with the most contrast to `a`
    b = max((p for j, p in enumerate(pal) if j != i), key=lambda p: float(np.abs(p - a).sum()))
    if rng.random() < 0.5:
        a, b = b, a
    a = mix(a, _WHITE, 0.08)
    b = mix(b, _WHITE, 0.08)
    x, y = _grid(h, w)
    aspect = w / h
    variant = int(rng.integers(3))
    soft = 1.2 / h
    if variant == 0:           # horizontal: wall / floor
        hz = horizon if layout == "tabletop" else float(rng.uniform(0.55, 0.7))
        field = y - hz
    elif variant == 1:         # diagonal
        tilt = float(rng.uniform(0.15, 0.35)) * (1 if rng.random() < 0.5 else -1)
        field = y - (horizon + x * tilt * 0.5)
    else:                      # an arch of colour b behind the subject
        ax, aw = float(rng.uniform(-0.12, 0.12)), float(rng.uniform(0.5, 0.66))
        top = float(rng.uniform(0.1, 0.2))
        cy = top + aw * aspect * 0.5                     # centre of the round top
        dx = (x - ax) / aw
        dy = (y - cy) / (aw * aspect * 0.5)
        d = np.where(y >= cy, 1.0 - np.abs(dx), 1.0 - np.sqrt(dx ** 2 + dy ** 2))
        field = d
        soft = 1.2 / (aw * w * 0.5)
    t = _smoothstep(-soft, soft, field)[..., None]
    return (a[None, None, :] * (1 - t) + b[None, None, :] * t).astype(np.float32)


def _bokeh(h: int, w: int, pal: list[np.ndarray], rng: np.random.Generator, horizon: float,
           layout: str, seed: int) -> np.ndarray:
    order = rng.permutation(len(pal))
    c0, c1 = pal[order[0]], pal[order[1 % len(pal)]]
    pastel = (luma(c0) + luma(c1)) / 2 > 0.45
    top = mix(c0, np.zeros(3, np.float32), 0.15 if pastel else 0.55)
    bottom = mix(c1, _WHITE, 0.25) if pastel else mix(c1, np.zeros(3, np.float32), 0.35)
    f = 4
    lh, lw = max(8, h // f), max(8, w // f)
    xx = np.arange(lw, dtype=np.float32)[None, :]
    yy = np.arange(lh, dtype=np.float32)[:, None]
    t = (yy / lh)[..., None]
    img = top[None, None, :] * (1 - t) + bottom[None, None, :] * t
    img = np.repeat(img, lw, axis=1) if img.shape[1] == 1 else img
    n = int(rng.integers(24, 40))
    limit = horizon if layout == "tabletop" else 1.0
    cx = rng.uniform(0, lw, n)
    cy = rng.beta(1.4, 2.0, n) * lh * limit
    r = rng.uniform(0.025, 0.09, n) * lw
    glow = np.zeros((lh, lw, 3), np.float32)
    for k in range(n):                      # each disc only touches its own window
        rad = r[k] + 2
        ya, yb = max(0, int(cy[k] - rad)), min(lh, int(cy[k] + rad) + 1)
        xa, xb = max(0, int(cx[k] - rad)), min(lw, int(cx[k] + rad) + 1)
        col = mix(pal[int(rng.integers(len(pal)))], _WHITE, float(rng.uniform(0.35, 0.7)))
        gain = float(rng.uniform(0.12, 0.35))
        if ya >= yb or xa >= xb:
            continue
        d = np.sqrt((xx[:, xa:xb] - cx[k]) ** 2 + (yy[ya:yb] - cy[k]) ** 2) / r[k]
        disc = _smoothstep(1.0, 0.86, d) * (0.85 + 0.25 * _smoothstep(0.55, 0.95, d))
        glow[ya:yb, xa:xb] += disc[..., None] * (col * gain)[None, None, :]
    glow = cv2.GaussianBlur(glow, (0, 0), 1.2)
    img = 1.0 - (1.0 - img) * (1.0 - np.clip(glow, 0, 1))           # screen blend
    if layout == "tabletop":
        hz = int(horizon * lh)
        surf = mix(bottom, top, 0.35 if pastel else 0.1)
        refl = img[max(0, 2 * hz - lh):hz][::-1]
        s = np.zeros((lh - hz, lw, 3), np.float32) + surf
        s[:refl.shape[0]] = s[:refl.shape[0]] * 0.8 + cv2.GaussianBlur(refl, (0, 0), 3) * 0.2
        ramp = _smoothstep(0, 1, np.linspace(0, 1, lh - hz, dtype=np.float32))[:, None, None]
        img[hz:] = s * (1.0 - 0.12 * ramp)
    return cv2.resize(img.astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)


def _marble(h: int, w: int, pal: list[np.ndarray], rng: np.random.Generator, seed: int) -> np.ndarray:
    x, y = _grid(h, w)
    light = max(pal, key=luma)
    darkest = min(pal, key=luma)
    base = mix(mix(light, _WHITE, 0.6), np.array([0.88, 0.88, 0.87], np.float32), 0.5)
    vein_col = mix(np.array([0.36, 0.36, 0.38], np.float32), darkest, float(rng.uniform(0.1, 0.4)))
    warp = value_noise(h, w, seed + 11, w / 2.2, w / 2.2, 4)
    fine = value_noise(h, w, seed + 13, w / 12.0, w / 12.0, 3)
    clouds = value_noise(h, w, seed + 12, w / 2.0, w / 2.0, 3)
    ang = float(rng.uniform(0.35, 1.2)) * (1 if rng.random() < 0.5 else -1)
    period = float(rng.uniform(0.9, 1.4))
    yy = y * 2.0 * (h / w)
    t = (x * np.cos(ang) + yy * np.sin(ang)) / period + warp * 0.3 + fine * 0.08
    ridge = 1.0 - np.abs(np.sin(np.pi * t))
    r2 = ridge * ridge
    r4 = r2 * r2
    r8 = r4 * r4
    r32 = (r8 * r8) * (r8 * r8)
    thin = r32 * r8                                      # ridge**40: crisp main veins
    soft = r4 * ridge                                    # ridge**5: the cloudy halo around them
    t2 = (x * np.cos(ang + 0.5) + yy * np.sin(ang + 0.5)) / (period * 0.37) + warp * 0.5 + fine * 0.08
    q = 1.0 - np.abs(np.sin(np.pi * t2))
    q4 = (q * q) * (q * q)
    q16 = q4 * q4 * q4 * q4
    hair = q16 * q16 * q16 * q16 * q4                    # **68: faint secondary hairlines
    fade = _smoothstep(-0.6, 1.0, clouds)                # veins come and go
    veins = np.clip(thin * 0.8 * fade + soft * 0.16 * (0.4 + 0.6 * fade) + hair * 0.3 * (1 - fade), 0, 1)
    shade = (1.0 + 0.03 * clouds + 0.012 * fine)[..., None]
    img = base[None, None, :] * shade
    v = veins[..., None]
    img = img * (1 - v) + vein_col[None, None, :] * v
    return img.astype(np.float32)


def _wood_base(pal: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    oak = hex_to_rgb("#b08158")
    tones = [oak, hex_to_rgb("#8a5a3b"), hex_to_rgb("#c9a27e")]
    woody = [p for p in pal if p[0] > p[1] > p[2] + 0.05 and 0.15 < luma(p) < 0.7]
    base = tones[int(rng.integers(len(tones)))]
    if woody:
        base = mix(base, woody[int(rng.integers(len(woody)))], 0.35)
    return base


def _wood(h: int, w: int, pal: list[np.ndarray], rng: np.random.Generator, seed: int) -> np.ndarray:
    base = _wood_base(pal, rng)
    n_planks = int(rng.integers(5, 8))
    ph = h / n_planks
    y = np.arange(h, dtype=np.float32)
    off = float(rng.uniform(0, ph))
    idx = np.floor((y + off) / ph).astype(np.int64)
    local = ((y + off) - idx * ph) / ph
    n_idx = int(idx.max()) + 1
    tone = rng.uniform(0.86, 1.1, n_idx).astype(np.float32)[idx]
    phase = rng.uniform(0, 10, n_idx).astype(np.float32)[idx]
    freq = rng.uniform(2.5, 5.0, n_idx).astype(np.float32)[idx]
    grain = value_noise(h, w, seed + 21, max(ph / 3.0, 4.0), w / 1.5, 3)
    fibre = value_noise(h, w, seed + 22, 1.0, w / 8.0, 2)
    knots = value_noise(h, w, seed + 23, ph * 0.8, ph * 1.6, 2)
    rings = (local * freq + phase)[:, None] + grain * 0.55 + knots * 0.12
    ring = np.abs(np.sin(np.pi * rings)) ** 0.6
    seam = np.exp(-((np.minimum(local, 1 - local) * ph) / 1.4) ** 2)[:, None]
    shade = (0.8 + 0.2 * ring) * (1.0 + 0.05 * fibre) * tone[:, None] * (1 - 0.55 * seam)
    return (base[None, None, :] * shade[..., None]).astype(np.float32)


def _linen(h: int, w: int, pal: list[np.ndarray], rng: np.random.Generator, seed: int,
           layout: str) -> np.ndarray:
    light = sorted(pal, key=luma)[-1 - int(rng.integers(min(2, len(pal))))]
    base = mix(light, hex_to_rgb("#e2dbcf"), float(rng.uniform(0.55, 0.75))) * 0.94
    period = max(2.4, w / 180.0)
    xs = np.arange(w, dtype=np.float32)[None, :]
    ys = np.arange(h, dtype=np.float32)[:, None]
    slub_x = value_noise(h, w, seed + 31, 1.0, 24.0, 2)
    slub_y = value_noise(h, w, seed + 32, 24.0, 1.0, 2)
    warp = np.cos(2 * np.pi * xs / period) * (0.5 + 0.5 * slub_y)
    weft = np.cos(2 * np.pi * ys / period) * (0.5 + 0.5 * slub_x)
    folds = value_noise(h, w, seed + 33, h / 2.0, w / 2.5, 3)
    fold_amp = 0.05 if layout == "tabletop" else 0.09
    shade = 1.0 + 0.035 * (warp + weft) * 0.5 + 0.03 * (slub_x + slub_y) * 0.5 + fold_amp * folds
    return (base[None, None, :] * shade[..., None]).astype(np.float32)


@lru_cache(maxsize=4)
def _texture(kind: str, th: int, tw: int, pal_key: tuple, seed: int, layout: str) -> np.ndarray:
    """The flat marble / wood / linen texture; cached (it is the expensive part), read-only."""
    pal = [np.array(p, np.float32) for p in pal_key]
    rng = np.random.default_rng([seed, _KIND_SALT[kind], 1])
    if kind == "marble":
        tex = _marble(th, tw, pal, rng, seed)
    elif kind == "wood":
        tex = _wood(th, tw, pal, rng, seed)
    else:
        tex = _linen(th, tw, pal, rng, seed, layout)
    tex.setflags(write=False)
    return tex


def _wall_colour(pal: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    light = sorted(pal, key=luma)[-1]
    return mix(light, _WHITE, float(rng.uniform(0.1, 0.35)))


def _on_table(tex: np.ndarray, h: int, w: int, horizon_px: int, wall: np.ndarray) -> np.ndarray:
    """Lay a flat texture on a receding table below the horizon; soft wall above."""
    th, tw = tex.shape[:2]
    mx, my, depth = _perspective_maps(w, h, horizon_px, tw, th)
    surf = cv2.remap(tex, mx, my, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    small = cv2.resize(surf, (max(1, w // 6), max(1, (h - horizon_px) // 6)), interpolation=cv2.INTER_AREA)
    blurred = cv2.resize(cv2.GaussianBlur(small, (0, 0), 1.5), (w, h - horizon_px), interpolation=cv2.INTER_LINEAR)
    k = (np.clip(depth, 0, 1) ** 0.8)[..., None]
    surf = surf * (1 - k) + blurred * k
    out = np.empty((h, w, 3), np.float32)
    out[horizon_px:] = surf

    def fn(lh: int, lw: int) -> np.ndarray:
        _, y = _grid(lh, lw)
        t = _smoothstep(0.0, max(horizon_px / h, 0.05), y)[..., None]
        return (wall[None, None, :] * (0.9 + 0.1 * t)).astype(np.float32)

    out[:horizon_px] = _low_res(fn, h, w)[:horizon_px]
    # a thin lit table edge blending the wall and the surface
    band = max(2, h // 300)
    lo, hi = max(0, horizon_px - band), min(h, horizon_px + band)
    if hi > lo:
        ramp = np.linspace(0, 1, hi - lo, dtype=np.float32)[:, None, None]
        out[lo:hi] = out[lo:hi] * 0.5 + (out[lo - 1 if lo > 0 else lo] * (1 - ramp) + out[hi - 1] * ramp) * 0.5 + 0.015
    return out


# --------------------------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------------------------
def render_backdrop(
    kind: str,
    size: tuple[int, int],
    palette: Sequence[str],
    seed: int = 0,
    *,
    layout: Layout = "tabletop",
    horizon: float = 0.62,
    lighting_hint: str = "",
) -> Backdrop:
    """Render one backdrop of `size` = (width, height). `horizon` is a fraction of the height."""
    if kind not in KINDS:
        log.warning("unknown backdrop kind %r; using sweep", kind)
        kind = "sweep"
    w, h = int(size[0]), int(size[1])
    if w < 2 or h < 2:
        raise ValueError(f"backdrop size too small: {size}")
    horizon = float(np.clip(horizon, 0.2, 0.85))
    seed = int(seed) & 0x7FFFFFFF
    rng = np.random.default_rng([seed, _KIND_SALT[kind]])
    pal = _palette(palette)
    rot = int(rng.integers(len(pal)))
    pal = pal[rot:] + pal[:rot]

    hint = lighting_hint.lower()
    if "left" in hint:
        light_x = -float(rng.uniform(0.5, 0.9))
    elif "right" in hint:
        light_x = float(rng.uniform(0.5, 0.9))
    else:
        light_x = float(rng.uniform(-0.9, 0.9))
    low_key = "low-key" in hint or "dramatic" in hint
    strength = 0.22 if low_key else 0.14
    vignette = 0.28 if low_key else 0.14
    horizon_px = int(round(horizon * h)) if layout == "tabletop" else None

    if kind == "sweep":
        img = _sweep(h, w, pal, rng, horizon, layout)
    elif kind == "split":   # flat colour blocks: draw at half size, upsample (edges stay ~2 px soft)
        img = cv2.resize(_split(max(2, h // 2), max(2, w // 2), pal, rng, horizon, layout), (w, h),
                         interpolation=cv2.INTER_LINEAR)
        vignette *= 0.6
    elif kind == "bokeh":
        img = _bokeh(h, w, pal, rng, horizon, layout, seed)
        strength *= 0.5
    else:
        # textures are drawn at reduced resolution: 2-4x cheaper, and the table's perspective
        # resampling / the wall's defocus soften them anyway
        ts = 0.65 if layout == "tabletop" else 0.5
        tw = max(8, int(w * ts))
        th = max(8, int(h * 0.9 * ts)) if layout == "tabletop" else max(8, int(h * ts))
        tex = _texture(kind, th, tw, tuple(tuple(float(v) for v in p) for p in pal), seed, layout)
        if layout == "tabletop" and horizon_px is not None:
            img = _on_table(tex, h, w, horizon_px, _wall_colour(pal, rng))
        else:  # a defocused wall behind a person
            tex = cv2.GaussianBlur(tex, (0, 0), max(0.8, tw / 500.0))
            img = cv2.resize(tex, (w, h), interpolation=cv2.INTER_CUBIC)
    img = np.multiply(img, _light_field(h, w, light_x, horizon, strength, vignette), dtype=np.float32)
    img += _dither(h, w, seed % 4)
    np.clip(img, 0.0, 1.0, out=img)
    return Backdrop(rgb=img.astype(np.float32, copy=False), kind=kind, layout=layout,
                    horizon_px=horizon_px, light_x=light_x)
