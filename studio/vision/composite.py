"""Compositing at full resolution: paste the kept region back, colour match, contact shadow.

`paste_back` blends with integer arithmetic, so where the feathered keep mask is 255 the result
is the original pixel, bit for bit (the owner's face or product stays exactly as photographed).
The blend band is `feather_px` wide on each side of the keep mask's edge (see `masks.feather`).
`seamless=True` adds OpenCV's Poisson blend, which by design shifts the kept region's colours
towards its new surroundings; use it for products, not faces.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np
from PIL import Image

from studio.vision import masks
from studio.vision.base import to_rgb_array

log = logging.getLogger(__name__)


def _blend(top: np.ndarray, bottom: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """(top * a + bottom * (255 - a)) / 255, rounded, in integers: a = 255 gives `top` exactly."""
    out = bottom.copy()
    cv2.copyTo(top, (alpha == 255).astype(np.uint8), out)
    soft = ((alpha > 0) & (alpha < 255)).astype(np.uint8)
    x, y, w, h = cv2.boundingRect(soft)
    if w == 0 or h == 0:
        return out
    sl = (slice(y, y + h), slice(x, x + w))
    a = alpha[sl].astype(np.uint16)[:, :, None]
    # at most 255 * 255 + 127 = 65152: fits uint16
    mixed = (top[sl].astype(np.uint16) * a + bottom[sl].astype(np.uint16) * (255 - a) + 127) // 255
    band = soft[sl].astype(bool)
    out[sl][band] = mixed.astype(np.uint8)[band]
    return out


def match_colour(original: np.ndarray, generated: np.ndarray, keep: np.ndarray, strength: float = 0.35,
                 ring_px: int = 24, max_shift: float = 12.0) -> np.ndarray:
    """Shift the kept region's Lab mean by `strength` of the change its surroundings went through
    (generated ring minus original ring), capped at `max_shift` Lab units. Returns a new RGB array."""
    hard = masks.binarize(keep) > 0
    if not hard.any() or hard.all():
        return original.copy()
    ring = (masks.dilate(hard.astype(np.uint8) * 255, ring_px) > 0) & ~hard
    if not ring.any():
        return original.copy()
    lab_o = cv2.cvtColor(original, cv2.COLOR_RGB2LAB).astype(np.float32)
    lab_g = cv2.cvtColor(generated, cv2.COLOR_RGB2LAB).astype(np.float32)
    shift = (lab_g[ring].mean(axis=0) - lab_o[ring].mean(axis=0)) * float(strength)
    shift = np.clip(shift, -max_shift, max_shift)
    shifted = lab_o.copy()
    shifted[hard] += shift
    rgb = cv2.cvtColor(np.clip(np.rint(shifted), 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)
    out = original.copy()
    out[hard] = rgb[hard]  # the Lab round trip is lossy: touch only the kept region
    return out


def _poisson(src: np.ndarray, dst: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """cv2.seamlessClone of the kept region of `src` into `dst` at the same place."""
    hard = masks.binarize(keep)
    hard[[0, -1], :] = 0
    hard[:, [0, -1]] = 0  # seamlessClone needs the mask clear of the border
    ys, xs = np.nonzero(hard)
    if ys.size == 0:
        return dst.copy()
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    centre = (int(x0 + (x1 - x0) // 2), int(y0 + (y1 - y0) // 2))
    out = cv2.seamlessClone(cv2.cvtColor(src, cv2.COLOR_RGB2BGR), cv2.cvtColor(dst, cv2.COLOR_RGB2BGR),
                            hard, centre, cv2.NORMAL_CLONE)
    return cv2.cvtColor(out, cv2.COLOR_BGR2RGB)


def paste_back(generated: Image.Image | np.ndarray, original: Image.Image | np.ndarray, keep_mask: np.ndarray,
               feather_px: float = 6.0, seamless: bool = False, color_match: bool = False,
               color_strength: float = 0.35) -> Image.Image:
    """Put the kept region of `original` (keep_mask 255 = keep) over `generated`, at the original's
    full resolution (the generated image is resized to it). Outside the blend band, kept pixels
    equal the original exactly unless `seamless` or `color_match` is asked for."""
    orig = to_rgb_array(original)
    h, w = orig.shape[:2]
    gen = to_rgb_array(generated)
    if gen.shape[:2] != (h, w):
        gen = np.asarray(Image.fromarray(gen).resize((w, h), Image.Resampling.LANCZOS))
    keep = masks.resize_mask(np.asarray(keep_mask), (w, h))
    src = orig
    if color_match:
        src = match_colour(orig, gen, keep, strength=color_strength)
    base = gen
    if seamless:
        base = _poisson(src, gen, keep)
        src = np.where((masks.binarize(keep) > 0)[:, :, None], base, src)
    alpha = masks.feather(keep, feather_px)
    return Image.fromarray(_blend(src, base, alpha), "RGB")


def add_contact_shadow(image: Image.Image | np.ndarray, subject_mask: np.ndarray, strength: float = 0.5,
                       spread: float = 0.06) -> Image.Image:
    """Darken the floor under a product: a soft elliptical contact shadow at the subject's base
    plus a faint, squashed drop shadow. Subject pixels are left unchanged."""
    rgb = to_rgb_array(image)
    h, w = rgb.shape[:2]
    subj = masks.resize_mask(np.asarray(subject_mask), (w, h))
    hard = masks.binarize(subj)
    stats = masks.mask_stats(hard)
    if stats.bbox is None or strength <= 0:
        return Image.fromarray(rgb.copy(), "RGB")
    x0, y0, x1, y1 = stats.bbox
    bw, bh = x1 - x0, y1 - y0
    shadow = np.zeros((h, w), np.float32)
    # contact ellipse centred on the base line
    cx, cy = (x0 + x1) // 2, y1 - 1
    axes = (max(int(bw * 0.48), 2), max(int(bh * spread), 2))
    cv2.ellipse(shadow, (int(cx), int(cy)), axes, 0, 0, 360, 1.0, -1)
    blur = max(3, int(round(max(axes[1], 2) * 1.5)) | 1)
    shadow = cv2.GaussianBlur(shadow, (blur * 2 + 1, blur * 2 + 1), blur / 2.0)
    # squashed drop shadow: the silhouette flattened onto the floor behind the base
    squash = cv2.resize(hard, (bw, max(int(bh * 0.18), 1)), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    drop = np.zeros((h, w), np.float32)
    ty0 = max(y1 - squash.shape[0] // 2, 0)
    ty1 = min(ty0 + squash.shape[0], h)
    drop[ty0:ty1, x0:x1] = squash[: ty1 - ty0]
    k = max(5, int(bw * 0.05) | 1)
    drop = cv2.GaussianBlur(drop, (k * 2 + 1, k * 2 + 1), k / 2.0) * 0.5
    dark = np.clip(np.maximum(shadow, drop) * float(np.clip(strength, 0.0, 1.0)), 0.0, 0.95)
    out = rgb.astype(np.float32) * (1.0 - dark[:, :, None])
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    # the subject itself stays as it was (soft edge: blend by its own mask)
    out = _blend(rgb, out, subj)
    return Image.fromarray(out, "RGB")
