"""Hands with 21 landmarks each, from MediaPipe's palm detector and hand landmark model.

`find_hands(image, models_dir)` -> `list[Hand]` (largest first); [] when the bundled models are
not installed. Used by the detail pass that repairs generated hands, and by anything else that
needs to know where hands are. The palm detector runs on the whole photo and, for photos where
hands are small, on the upper/lower halves; each palm's rotated crop then goes to the landmark
model, whose own hand flag confirms it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

HAND_FLAG_MIN = 0.5


@dataclass
class Hand:
    box: tuple[int, int, int, int]     # x0, y0, x1, y1 image pixels (the landmarks' bounds, padded)
    points: np.ndarray                 # (21, 2) float image pixels, MediaPipe's hand landmark order
    score: float                       # the landmark model's hand flag, 0..1
    handedness: str                    # "right" | "left" (as the person's hand)

    @property
    def area(self) -> int:
        return max(0, self.box[2] - self.box[0]) * max(0, self.box[3] - self.box[1])


def _windows(w: int, h: int) -> list[tuple[int, int, int, int]]:
    wins = [(0, 0, w, h)]
    if max(w, h) >= 480:
        side = int(min(w, h) * 0.6)
        step = max(1, int(side * 0.7))
        for y in sorted({*range(0, max(h - side, 0) + 1, step), max(h - side, 0)}):
            for x in sorted({*range(0, max(w - side, 0) + 1, step), max(w - side, 0)}):
                wins.append((x, y, x + side, y + side))
    return wins


def find_hands(image: np.ndarray, models_dir: Path | str, kit=None, max_hands: int = 8) -> list[Hand]:
    """Hands in an RGB image (see the module doc)."""
    from studio.vision.mp_models import available, box_iou, palm_to_hand_roi, shared_kit
    from studio.vision.base import to_rgb_array

    if kit is None:
        if not available(models_dir):
            return []
        kit = shared_kit(models_dir)
    rgb = to_rgb_array(image)
    h, w = rgb.shape[:2]
    palms = []
    for x0, y0, x1, y1 in _windows(w, h):
        for d in kit.palm(rgb[y0:y1, x0:x1]):
            d.box = d.box + [x0, y0, x0, y0]
            d.keypoints = d.keypoints + [x0, y0]
            palms.append(d)
    palms.sort(key=lambda d: -d.score)
    out: list[Hand] = []
    for d in palms:
        pts, flag, right = kit.hand(rgb, palm_to_hand_roi(d))
        if flag < HAND_FLAG_MIN:
            continue
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        pad = 0.15 * float(max(hi - lo))
        box = (int(max(0, lo[0] - pad)), int(max(0, lo[1] - pad)), int(min(w, hi[0] + pad)), int(min(h, hi[1] + pad)))
        if box[2] - box[0] < 4 or box[3] - box[1] < 4:
            continue
        if out and float(box_iou(np.array(box, float), np.array([o.box for o in out], float)).max()) > 0.4:
            continue
        out.append(Hand(box, pts.astype(np.float32), flag, "right" if right >= 0.5 else "left"))
        if len(out) >= max_hands:
            break
    return sorted(out, key=lambda hd: -hd.area)


def models_present(models_dir: Path | str) -> bool:
    """Are the bundled hand models installed (the detail pass says why it found no hands)?"""
    from studio.vision.mp_models import available

    return available(models_dir)
