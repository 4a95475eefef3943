"""Masks: pure numpy/cv2 helpers. Every mask is a 2-D uint8 array, 0..255.

Two conventions meet here:
- a *keep* mask (face or product): 255 = the owner's pixel stays;
- the engine's *regenerate* mask (`studio.engines.base`): 255 = regenerate, 0 = keep.
`invert(keep)` turns one into the other.

`feather(mask, px)` is a Gaussian blur whose kernel is truncated at `px` pixels (sigma = px / 3),
so the soft band is exactly `px` wide on each side of an edge: pixels further than `px` from the
edge keep their value exactly. Paste-back relies on that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

if TYPE_CHECKING:
    from studio.vision.faces import FaceBox

Size = tuple[int, int]  # (width, height)


def _check(mask: np.ndarray) -> np.ndarray:
    arr = np.asarray(mask)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim != 2:
        raise ValueError(f"a mask must be 2-D (H x W), got shape {arr.shape}")
    if arr.dtype == np.bool_:
        return np.where(arr, 255, 0).astype(np.uint8)
    if arr.dtype != np.uint8:
        return np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    return arr


def empty(size: Size) -> np.ndarray:
    w, h = size
    return np.zeros((int(h), int(w)), np.uint8)


def _eye_angle(landmarks: np.ndarray | None) -> float:
    """Roll angle (degrees) of the line through the two eyes, 0 when unknown."""
    if landmarks is None or np.asarray(landmarks).shape[0] < 2:
        return 0.0
    pts = np.asarray(landmarks, dtype=np.float64)
    (x0, y0), (x1, y1) = pts[0], pts[1]
    if x1 < x0:  # order left-to-right in the image
        x0, y0, x1, y1 = x1, y1, x0, y0
    angle = math.degrees(math.atan2(y1 - y0, x1 - x0))
    return float(np.clip(angle, -45.0, 45.0))


def face_region_mask(size: Size, face: "FaceBox", include_hair: bool = True,
                     include_neck: bool = False) -> np.ndarray:
    """255 over the face (an ellipse around the box, turned with the eye line, grown to hold the
    landmarks' convex hull), optionally the hair above it and the neck below it."""
    w, h = int(size[0]), int(size[1])
    mask = empty((w, h))
    x0, y0, x1, y1 = (float(v) for v in face.box)
    bw, bh = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    angle = _eye_angle(face.landmarks)
    oval = getattr(face, "oval", None)
    if oval is not None and len(oval) >= 8:
        # the face's own outline (FaceMesh): exact, turned and shaped as the face is
        cv2.fillPoly(mask, [np.rint(np.asarray(oval, np.float64)).astype(np.int32).reshape(-1, 1, 2)], 255)
    else:
        # detector boxes stop at the brows and the chin: widen a little, lengthen more
        axes = (bw * 0.55, bh * 0.68)
        centre = (cx, cy + bh * 0.04)
        cv2.ellipse(mask, (int(round(centre[0])), int(round(centre[1]))),
                    (max(int(round(axes[0])), 1), max(int(round(axes[1])), 1)), angle, 0, 360, 255, -1)
    if face.landmarks is not None and len(face.landmarks) >= 3:
        hull = cv2.convexHull(np.asarray(face.landmarks, dtype=np.float32).reshape(-1, 1, 2))
        cv2.fillConvexPoly(mask, np.rint(hull).astype(np.int32), 255)
    if include_hair:
        hair_c = (int(round(cx)), int(round(cy - bh * 0.22)))
        cv2.ellipse(mask, hair_c, (max(int(round(bw * 0.68)), 1), max(int(round(bh * 0.72)), 1)),
                    angle, 180, 360, 255, -1)  # upper half-ellipse: crown and sides
        cv2.ellipse(mask, hair_c, (max(int(round(bw * 0.68)), 1), max(int(round(bh * 0.35)), 1)),
                    angle, 0, 180, 255, -1)    # sides down to the ears
    if include_neck:
        nx0, nx1 = int(round(cx - bw * 0.32)), int(round(cx + bw * 0.32))
        ny0, ny1 = int(round(cy)), int(round(y1 + bh * 0.65))
        cv2.rectangle(mask, (nx0, ny0), (nx1, ny1), 255, -1)
    return mask


def box_mask(size: Size, box: tuple[int, int, int, int]) -> np.ndarray:
    mask = empty(size)
    x0, y0, x1, y1 = (int(v) for v in box)
    mask[max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)] = 255
    return mask


def dilate(mask: np.ndarray, px: int) -> np.ndarray:
    """Grow (px > 0) or shrink (px < 0) with an elliptical structuring element."""
    m = _check(mask)
    px = int(px)
    if px == 0:
        return m.copy()
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(px) + 1, 2 * abs(px) + 1))
    return cv2.dilate(m, k) if px > 0 else cv2.erode(m, k, borderValue=0)


def erode(mask: np.ndarray, px: int) -> np.ndarray:
    return dilate(mask, -int(px))


def feather(mask: np.ndarray, px: float) -> np.ndarray:
    """Gaussian feather with a kernel truncated at `px` pixels (sigma = px / 3)."""
    m = _check(mask)
    if px <= 0:
        return m.copy()
    radius = int(math.ceil(px))
    sigma = max(px / 3.0, 0.3)
    k = 2 * radius + 1
    # Only the neighbourhood of non-zero pixels can change: blur that window, not the whole image.
    x, y, bw, bh = cv2.boundingRect(m)
    out = np.zeros_like(m)
    if bw == 0 or bh == 0:
        return out
    y0, y1 = max(y - radius - 1, 0), min(y + bh + radius + 1, m.shape[0])
    x0, x1 = max(x - radius - 1, 0), min(x + bw + radius + 1, m.shape[1])
    blurred = cv2.GaussianBlur(m[y0:y1, x0:x1].astype(np.float32), (k, k), sigmaX=sigma, sigmaY=sigma,
                               borderType=cv2.BORDER_REPLICATE)
    out[y0:y1, x0:x1] = np.clip(np.rint(blurred), 0, 255).astype(np.uint8)
    return out


def invert(mask: np.ndarray) -> np.ndarray:
    return (255 - _check(mask)).astype(np.uint8)


def _fold(op: Any, what: str, masks: tuple[np.ndarray, ...]) -> np.ndarray:
    if not masks:
        raise ValueError(f"{what} needs at least one mask")
    out = _check(masks[0]).copy()
    for m in masks[1:]:
        out = op(out, _check(m))
    return out


def union(*masks: np.ndarray) -> np.ndarray:
    return _fold(np.maximum, "union", masks)


def intersection(*masks: np.ndarray) -> np.ndarray:
    return _fold(np.minimum, "intersection", masks)


def binarize(mask: np.ndarray, threshold: int = 128) -> np.ndarray:
    return np.where(_check(mask) >= threshold, 255, 0).astype(np.uint8)


def work_copy(mask: np.ndarray, side: int) -> tuple[float, Size, np.ndarray]:
    """The mask on a copy no longer than `side` (never enlarged), for measuring its shape:
    (scale, (w, h) of the copy, uint8 0/1 where the resized mask is at least half set)."""
    h, w = mask.shape[:2]
    s = min(1.0, side / float(max(h, w)))
    size = (max(8, int(round(w * s))), max(8, int(round(h * s))))
    return s, size, (cv2.resize(mask, size, interpolation=cv2.INTER_AREA) >= 128).astype(np.uint8)


def inner_outline(m: np.ndarray) -> np.ndarray:
    """The mask's own pixels on its outline (a 0/1 or bool mask in, bool out)."""
    m = m.astype(np.uint8)
    return (cv2.morphologyEx(m, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0) & (m > 0)


def engine_size(width: int, height: int, multiple: int = 16) -> Size:
    """Nearest size in multiples of `multiple` (at least one multiple per side)."""
    if multiple <= 0:
        raise ValueError("multiple must be positive")
    w = max(int(width / multiple + 0.5) * multiple, multiple)   # halves round up
    h = max(int(height / multiple + 0.5) * multiple, multiple)
    return w, h


def resize_to_engine(mask: np.ndarray, width: int, height: int, multiple: int = 16) -> np.ndarray:
    """Resize to the engine's size, rounded to multiples of `multiple`. Soft edges stay soft."""
    m = _check(mask)
    w, h = engine_size(width, height, multiple)
    if (m.shape[1], m.shape[0]) == (w, h):
        return m.copy()
    shrinking = w * h < m.shape[0] * m.shape[1]
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(m, (w, h), interpolation=interp)


def resize_mask(mask: np.ndarray, size: Size) -> np.ndarray:
    m = _check(mask)
    w, h = int(size[0]), int(size[1])
    if (m.shape[1], m.shape[0]) == (w, h):
        return m
    interp = cv2.INTER_AREA if w * h < m.size else cv2.INTER_LINEAR
    return cv2.resize(m, (w, h), interpolation=interp)


@dataclass(frozen=True)
class MaskStats:
    coverage: float        # share of pixels >= 128 (what a hard threshold would select)
    mean: float            # mean value / 255 (soft coverage)
    soft_fraction: float   # share of pixels strictly between 0 and 255 (the blend band)
    bbox: tuple[int, int, int, int] | None  # x0, y0, x1, y1 (exclusive) of pixels > 0

    @property
    def empty(self) -> bool:
        return self.bbox is None


def coverage(mask: np.ndarray) -> float:
    """Share of the image a mask selects (pixels >= 128), 0..1."""
    m = _check(mask)
    return float(np.count_nonzero(m >= 128)) / float(max(m.size, 1))


def mask_stats(mask: np.ndarray) -> MaskStats:
    m = _check(mask)
    n = float(max(m.size, 1))
    ys, xs = np.nonzero(m)
    bbox = None if xs.size == 0 else (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    soft = np.count_nonzero((m > 0) & (m < 255))
    return MaskStats(coverage=coverage(m), mean=float(m.mean()) / 255.0, soft_fraction=soft / n, bbox=bbox)
