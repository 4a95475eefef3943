"""Smart crops: fit an image to an SNS size around the subject instead of the centre.

`smart_crop(image, w, h, focus_box, keep=None)` takes the largest window of the target aspect
ratio that fits in the image, centres it on the subject and slides it back inside the image. The
subject is the focus box (a face or product box from the generation record) joined with the keep
mask's bounding box (the owner's pixels). A subject too WIDE for that window (a long product in a
9:16 story) is never cut: the window grows to hold it with a margin and the part beyond the photo
is filled with a blurred, enlarged copy of the photo. A subject only too TALL keeps its top part
(faces sit high in a portrait). Without any subject, a cheap saliency map (gradient energy +
colour rarity, weighted towards the centre) gives the centre of interest.
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


def subject_box(focus_box: Sequence[float] | None, keep: np.ndarray | None,
                size: tuple[int, int]) -> Box | None:
    """The union of `focus_box` and the keep mask's bounding box (mask > 127), in image pixels."""
    boxes: list[Box] = []
    if focus_box is not None and len(focus_box) == 4:
        try:
            b = tuple(float(v) for v in focus_box)
        except (TypeError, ValueError):
            b = None
        if b is not None and all(np.isfinite(b)) and b[2] > b[0] and b[3] > b[1]:
            boxes.append(b)  # type: ignore[arg-type]
    if keep is not None:
        mask = np.asarray(keep)
        if mask.shape[:2] == (size[1], size[0]):
            ys, xs = np.nonzero(mask > 127)
            if xs.size:
                boxes.append((float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)))
    if not boxes:
        return None
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def _too_wide(box: Box, img_w: int, img_h: int, target_w: int, target_h: int, margin: float) -> bool:
    aspect = target_w / target_h
    cw = img_h * aspect if img_w / img_h > aspect else float(img_w)
    return (box[2] - box[0]) * (1 + 2 * margin) > cw + 1e-6


def _padded_window(image: Image.Image, box: Box, target_w: int, target_h: int, margin: float) -> Image.Image:
    """A window of the target aspect holding the whole subject (plus margin); where it reaches
    past the photo, a blurred, enlarged copy of the photo fills in (the subject's pixels untouched)."""
    w, h = image.size
    aspect = target_w / target_h
    bw = (box[2] - box[0]) * (1 + 2 * margin)
    bh = (box[3] - box[1]) * (1 + 2 * margin)
    win_w = max(bw, bh * aspect, min(float(w), h * aspect))
    win_h = win_w / aspect
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    # stay inside the photo wherever the window allows, so as little as possible is filled in
    x0 = (w - win_w) / 2 if win_w >= w else min(max(cx - win_w / 2, 0.0), w - win_w)
    y0 = (h - win_h) / 2 if win_h >= h else min(max(cy - win_h / 2 + 0.06 * win_h, 0.0), h - win_h)
    scale = target_w / win_w
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    cover = max(target_w / w, target_h / h)
    bg = rgb.resize((max(1, round(w * cover)), max(1, round(h * cover))), Image.Resampling.BILINEAR)
    left, top = (bg.width - target_w) // 2, (bg.height - target_h) // 2
    bg = bg.crop((left, top, left + target_w, top + target_h))
    bg = Image.fromarray(cv2.GaussianBlur(np.asarray(bg), (0, 0), max(8.0, target_w / 40)))
    fg = rgb.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS)
    bg.paste(fg, (int(round(-x0 * scale)), int(round(-y0 * scale))))
    return bg


def smart_crop(image: Image.Image, target_w: int, target_h: int,
               focus_box: Sequence[float] | None = None, keep: np.ndarray | None = None,
               margin: float = 0.04) -> Image.Image:
    """Exactly `target_w` x `target_h` (RGB), around the subject (`focus_box` joined with the keep
    mask), never cutting the subject's sides; or around the salient centre without a subject."""
    if target_w <= 0 or target_h <= 0:
        raise ValueError(f"target size must be positive, got {target_w}x{target_h}")
    w, h = image.size
    if (w, h) == (target_w, target_h):
        return image.copy()
    focus_box = subject_box(focus_box, keep, (w, h))
    if focus_box is not None and _too_wide(focus_box, w, h, target_w, target_h, margin):
        return _padded_window(image, focus_box, target_w, target_h, margin)
    valid_box = focus_box is not None
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
