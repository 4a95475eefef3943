"""WCAG 2.x contrast, measured on real pixels.

`relative_luminance` follows WCAG 2.1 (sRGB linearisation); `contrast_ratio(a, b)` =
(L1 + 0.05) / (L2 + 0.05). For text on a photo we measure against every pixel right next to the
glyphs (`ring_pixels`): the worst one decides.
"""

from __future__ import annotations

import cv2
import numpy as np

AA_TEXT = 4.5  # WCAG AA for normal-size text

_LUT = np.array([(c / 255 / 12.92) if c / 255 <= 0.04045 else ((c / 255 + 0.055) / 1.055) ** 2.4
                 for c in range(256)], dtype=np.float32)


def hex_to_rgb(value: str) -> tuple[int, int, int]:
    v = value.strip().lstrip("#")
    if len(v) == 3:
        v = "".join(c * 2 for c in v)
    if len(v) != 6:
        raise ValueError(f"not a #rrggbb colour: {value!r}")
    return int(v[0:2], 16), int(v[2:4], 16), int(v[4:6], 16)


def luminance_map(rgb: np.ndarray) -> np.ndarray:
    """Relative luminance per pixel of an (..., 3) uint8 array."""
    lin = _LUT[rgb[..., :3]]
    return lin[..., 0] * 0.2126 + lin[..., 1] * 0.7152 + lin[..., 2] * 0.0722


def relative_luminance(rgb: tuple[int, int, int]) -> float:
    return float(luminance_map(np.array(rgb, dtype=np.uint8).reshape(1, 3))[0])


def contrast_ratio(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    la, lb = relative_luminance(a), relative_luminance(b)
    hi, lo = max(la, lb), min(la, lb)
    return (hi + 0.05) / (lo + 0.05)


def contrast_map(text_lum: float, bg_lum: np.ndarray) -> np.ndarray:
    hi = np.maximum(bg_lum, text_lum)
    lo = np.minimum(bg_lum, text_lum)
    return (hi + 0.05) / (lo + 0.05)


def ring_mask(mask: np.ndarray, radius: int) -> np.ndarray:
    """Pixels within `radius` of the glyphs but not touched by them (mask: uint8 coverage)."""
    ink = (mask > 0).astype(np.uint8)
    k = 2 * radius + 1
    grown = cv2.dilate(ink, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    return (grown > 0) & (ink == 0)


def worst_contrast(text_rgb: tuple[int, int, int], region_rgb: np.ndarray, ring: np.ndarray) -> float:
    """Lowest contrast between the text colour and any ring pixel of `region_rgb`."""
    if not ring.any():
        return 21.0
    bg = luminance_map(region_rgb[ring])
    return float(contrast_map(relative_luminance(text_rgb), bg).min())


def best_text_colour(region_rgb: np.ndarray, ring: np.ndarray,
                     candidates: list[tuple[int, int, int]]) -> tuple[tuple[int, int, int], float]:
    """The candidate with the highest worst-case contrast against the ring pixels."""
    bg = luminance_map(region_rgb[ring]) if ring.any() else np.array([0.5], dtype=np.float32)
    best, best_c = candidates[0], -1.0
    for cand in candidates:
        c = float(contrast_map(relative_luminance(cand), bg).min())
        if c > best_c + 1e-6:
            best, best_c = cand, c
    return best, best_c
