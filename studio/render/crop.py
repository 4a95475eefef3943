"""Smart crops: fit an image to an SNS size around the subject instead of the centre.

`smart_crop(image, w, h, focus_box)` takes the largest window of the target aspect ratio that fits
in the image, centres it on the focus box (a face or product box from the generation record) and
slides it back inside the image; a focus box larger than the window keeps its top part (faces
sit high in a portrait). Without a box, a cheap saliency map (gradient energy + colour rarity,
weighted towards the centre) gives the centre of interest.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from PIL import Image

Box = tuple[float, float, float, float]


def saliency_centre(image: Image.Image) -> tuple[float, float]:
    """(x, y) in image pixels of the saliency-weighted centre."""
    w, h = image.size
    scale = 96 / max(w, h)
    small = np.asarray(image.convert("RGB").resize((max(8, round(w * scale)), max(8, round(h * scale))),
                                                   Image.Resampling.BILINEAR), dtype=np.float32)
    lab = cv2.cvtColor(small / 255.0, cv2.COLOR_RGB2LAB)
    gx = cv2.Sobel(lab[..., 0], cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(lab[..., 0], cv2.CV_32F, 0, 1, ksize=3)
    grad = np.sqrt(gx * gx + gy * gy)
    rarity = np.linalg.norm(lab - lab.reshape(-1, 3).mean(axis=0), axis=2)
    sal = cv2.GaussianBlur(grad / (grad.max() + 1e-6) + rarity / (rarity.max() + 1e-6), (0, 0), 3)
    sh, sw = sal.shape
    yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float32)
    prior = np.exp(-(((xx - sw / 2) / (0.45 * sw)) ** 2 + ((yy - sh / 2) / (0.45 * sh)) ** 2))
    weight = (sal ** 2) * prior
    total = float(weight.sum())
    if total <= 1e-9:
        return w / 2, h / 2
    cx = float((weight * xx).sum() / total + 0.5) / scale
    cy = float((weight * yy).sum() / total + 0.5) / scale
    return min(max(cx, 0.0), w), min(max(cy, 0.0), h)


def crop_window(img_w: int, img_h: int, target_w: int, target_h: int,
                focus_box: Sequence[float] | None = None,
                centre: tuple[float, float] | None = None) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the crop window in the source image."""
    aspect = target_w / target_h
    if img_w / img_h > aspect:
        cw, ch = img_h * aspect, float(img_h)
    else:
        cw, ch = float(img_w), img_w / aspect
    if focus_box is not None:
        fx0, fy0, fx1, fy1 = (float(v) for v in focus_box)
        fx0, fx1 = sorted((min(max(fx0, 0), img_w), min(max(fx1, 0), img_w)))
        fy0, fy1 = sorted((min(max(fy0, 0), img_h), min(max(fy1, 0), img_h)))
        cx = (fx0 + fx1) / 2
        cy = (fy0 + fy1) / 2
        # subject taller than the window: keep its top (a face's eyes) with a small margin
        if fy1 - fy0 > ch:
            cy = fy0 - 0.05 * ch + ch / 2
        # leave headroom above a face/product: put its centre slightly above the window middle
        elif fy1 - fy0 < 0.8 * ch:
            cy = cy + 0.06 * ch
    elif centre is not None:
        cx, cy = centre
    else:
        cx, cy = img_w / 2, img_h / 2
    x0 = min(max(cx - cw / 2, 0.0), img_w - cw)
    y0 = min(max(cy - ch / 2, 0.0), img_h - ch)
    x0i, y0i = int(round(x0)), int(round(y0))
    return x0i, y0i, min(img_w, x0i + int(round(cw))), min(img_h, y0i + int(round(ch)))


def smart_crop(image: Image.Image, target_w: int, target_h: int,
               focus_box: Sequence[float] | None = None) -> Image.Image:
    """Exactly `target_w` x `target_h` (RGB), cropped around `focus_box` (or the salient centre)."""
    if target_w <= 0 or target_h <= 0:
        raise ValueError(f"target size must be positive, got {target_w}x{target_h}")
    w, h = image.size
    if (w, h) == (target_w, target_h):
        return image.copy()
    valid_box = focus_box is not None and len(focus_box) == 4 and \
        float(focus_box[2]) > float(focus_box[0]) and float(focus_box[3]) > float(focus_box[1])
    centre = None
    if not valid_box and abs(w / h - target_w / target_h) > 0.01:
        centre = saliency_centre(image)
    x0, y0, x1, y1 = crop_window(w, h, target_w, target_h, focus_box if valid_box else None, centre)
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    arr = np.asarray(rgb)[y0:y1, x0:x1]
    if arr.shape[1] != target_w or arr.shape[0] != target_h:
        shrinking = arr.shape[1] > target_w
        arr = cv2.resize(np.ascontiguousarray(arr), (target_w, target_h),
                         interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)
    return Image.fromarray(np.ascontiguousarray(arr))
