"""The detail pass: hands and generated faces repaired after an AI engine made a Person/Advanced ad.

1. Find: hands (21 landmarks -> convex hull, dilated) and generated faces (every face the
   detector finds that is not one of the kept faces -> an ellipse over the face box). Each
   region's mask leaves out the keep mask: the pass never redraws a kept pixel.
2. Repair each region: crop it with padding, resize the crop to the engine's native working size
   (its `caps.work_megapixels`, e.g. ~1 MP = 1024x1024 for FLUX, in its `size_multiple`), inpaint
   it with the ACTIVE engine (the same object the ad was made with, so the model manager keeps one
   copy), a detail prompt and the region's mask, and paste it back with a feathered edge.
3. Re-apply the kept pixels at the end: wherever keep > 0 the result is the input, byte for byte.

The engine is only called through `call(job)`, so the pass's own cost is measured apart from it
(benchmarks/detail.py). Cancel is checked before every region and inside the engine's steps.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
from PIL import Image

from studio.engines.base import Engine, InpaintJob
from studio.runtime.jobs import CancelToken, ProgressFn
from studio.schema import Notice

Box = tuple[int, int, int, int]

DEFAULT_STRENGTH = 0.6
MIN_STRENGTH, MAX_STRENGTH = 0.1, 1.0
MAX_REGIONS = 6            # largest first; more would multiply the run time
PAD = 0.6                  # crop padding, as a fraction of the region's larger side (each way)
MIN_CROP = 96              # px: a smaller crop has too little context
MIN_FACE = 16              # px: faces smaller than this are left alone
KEPT_FACE_COVER = 0.35     # a face whose box is this much under the keep mask is a kept face
KEPT_REGION_LEFT = 0.15    # a region with less than this fraction outside the keep mask is skipped

HAND_PROMPT = "a natural human hand with five well-formed fingers, detailed realistic skin, sharp focus"
FACE_PROMPT = "a natural human face, detailed realistic eyes and skin, sharp focus"


@dataclass
class Region:
    kind: str                      # "hand" | "face"
    box: Box                       # the region's tight box in image px
    mask: np.ndarray               # H x W uint8, 255 = redraw (zero wherever keep > 0)

    @property
    def area(self) -> int:
        return int((self.mask > 0).sum())


@dataclass
class DetailResult:
    image: Image.Image
    hands: int = 0
    faces: int = 0
    engine_calls: int = 0
    crops: list[tuple[Box, tuple[int, int]]] = field(default_factory=list)  # (crop box, engine size)
    found_hands: int = 0
    found_faces: int = 0
    skipped_kept: int = 0
    hands_checked: bool = True
    engine_s: float = 0.0
    total_s: float = 0.0

    @property
    def overhead_s(self) -> float:
        return max(0.0, self.total_s - self.engine_s)

    def notice(self) -> Notice:
        """What the owner is told: what was redrawn, or why nothing was."""
        if self.hands and self.faces:
            return Notice("detail.fixed_both", {"hands": self.hands, "faces": self.faces})
        if self.hands:
            return Notice("detail.fixed_hands", {"n": self.hands})
        if self.faces:
            return Notice("detail.fixed_faces", {"n": self.faces})
        if self.skipped_kept:
            return Notice("detail.none_kept")
        if not self.hands_checked and not self.found_hands:
            return Notice("detail.none_no_hand_model")
        return Notice("detail.none_found")

    def settings(self, strength: float) -> dict:
        return {"detail_pass": True, "detail_strength": round(float(strength), 2), "detail_hands": self.hands,
                "detail_faces": self.faces}


def clamp_strength(value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return DEFAULT_STRENGTH
    if v != v:
        return DEFAULT_STRENGTH
    return min(MAX_STRENGTH, max(MIN_STRENGTH, v))


def applies(engine: Engine) -> bool:
    """Only an engine that draws people (invents clothes, hands, faces) gets the pass; Lite doesn't."""
    return bool(getattr(engine.caps, "changes_outfit", False)) and bool(engine.caps.inpaint)


# ------------------------------------------------------------------------------------------
# finding
# ------------------------------------------------------------------------------------------
def _clip(box: Sequence[float], w: int, h: int) -> Box:
    x0, y0, x1, y1 = box
    return (int(max(0, min(w, math.floor(x0)))), int(max(0, min(h, math.floor(y0)))),
            int(max(0, min(w, math.ceil(x1)))), int(max(0, min(h, math.ceil(y1)))))


def hand_mask(size: tuple[int, int], hand: Any) -> np.ndarray:
    """The hand's convex hull (its 21 landmarks), grown by a fifth of the hand's size: fingers
    reach past the joints. An ellipse over the box when the landmarks are missing."""
    import cv2

    w, h = size
    out = np.zeros((h, w), np.uint8)
    x0, y0, x1, y1 = _clip(hand.box, w, h)
    side = max(x1 - x0, y1 - y0, 1)
    pts = np.asarray(getattr(hand, "points", None) if getattr(hand, "points", None) is not None else [], np.float64)
    if pts.ndim == 2 and pts.shape[0] >= 3 and np.ptp(pts[:, 0]) > 1 and np.ptp(pts[:, 1]) > 1:
        hull = cv2.convexHull(np.round(pts).astype(np.int32).reshape(-1, 1, 2))
        cv2.fillConvexPoly(out, hull, 255)
    else:
        cv2.ellipse(out, (((x0 + x1) / 2, (y0 + y1) / 2), (max(1, x1 - x0), max(1, y1 - y0)), 0.0), 255, -1)
    grow = max(3, int(round(side * 0.2)))
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    return cv2.dilate(out, k)


def face_mask(size: tuple[int, int], box: Box) -> np.ndarray:
    """An ellipse a little larger than the face box (chin and hairline included)."""
    import cv2

    w, h = size
    out = np.zeros((h, w), np.uint8)
    x0, y0, x1, y1 = box
    cv2.ellipse(out, (((x0 + x1) / 2, (y0 + y1) / 2), (max(1.0, (x1 - x0) * 1.15), max(1.0, (y1 - y0) * 1.3)), 0.0),
                255, -1)
    return out


def _box_of(mask: np.ndarray) -> Box | None:
    ys = np.flatnonzero(mask.any(axis=1))
    if ys.size == 0:
        return None
    xs = np.flatnonzero(mask.any(axis=0))
    return int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1


def find_regions(size: tuple[int, int], keep: np.ndarray, hands: Sequence[Any], faces: Sequence[Any],
                 kept_boxes: Sequence[Box] = ()) -> tuple[list[Region], int]:
    """(regions to repair, largest first, at most MAX_REGIONS; how many were skipped as kept).

    A face is kept when its box lies under the keep mask (or overlaps one of `kept_boxes`, the
    kept faces mapped into the ad); every other face was generated. Each mask leaves out the keep
    mask; a region mostly inside it (the owner's own hand in the photo) is skipped."""
    w, h = size
    free = keep == 0
    regions: list[Region] = []
    skipped = 0

    def add(kind: str, raw: np.ndarray) -> None:
        nonlocal skipped
        total = int((raw > 0).sum())
        if total == 0:
            return
        m = np.where(free, raw, 0).astype(np.uint8)
        left = int((m > 0).sum())
        if left < KEPT_REGION_LEFT * total:
            skipped += 1
            return
        box = _box_of(m > 0)
        if box is not None:
            regions.append(Region(kind, box, m))

    for hand in hands:
        add("hand", hand_mask(size, hand))
    for face in faces:
        x0, y0, x1, y1 = _clip(face.box, w, h)
        if min(x1 - x0, y1 - y0) < MIN_FACE:
            continue
        cover = float(keep[y0:y1, x0:x1].mean()) / 255.0 if (x1 > x0 and y1 > y0) else 0.0
        if cover >= KEPT_FACE_COVER or any(_iou((x0, y0, x1, y1), k) > 0.3 for k in kept_boxes):
            continue
        add("face", face_mask(size, (x0, y0, x1, y1)))
    regions.sort(key=lambda r: -r.area)
    return regions[:MAX_REGIONS], skipped


def _iou(a: Box, b: Box) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


# ------------------------------------------------------------------------------------------
# repairing
# ------------------------------------------------------------------------------------------
def crop_box(region: Box, size: tuple[int, int], pad: float = PAD, min_side: int = MIN_CROP) -> Box:
    """A square crop around the region, padded by `pad` x its larger side each way (at least
    `min_side`), shifted (not shrunk) to stay inside the image where it can."""
    w, h = size
    x0, y0, x1, y1 = region
    side = max(x1 - x0, y1 - y0)
    s = int(round(max(min_side, side * (1 + 2 * pad))))
    s = min(s, w, h)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    bx = int(round(min(max(cx - s / 2, 0), w - s)))
    by = int(round(min(max(cy - s / 2, 0), h - s)))
    return bx, by, bx + s, by + s


def native_size(engine: Engine, crop: tuple[int, int]) -> tuple[int, int]:
    """The engine's own working size for a crop of this shape: `work_megapixels` (FLUX: 1 MP ->
    1024 x 1024 for a square) in multiples of `size_multiple`. An engine without a working size
    works at the crop's size."""
    caps = engine.caps
    cw, ch = crop
    if caps.work_megapixels is None:
        return cw, ch
    m = max(1, caps.size_multiple)
    k = math.sqrt(caps.work_megapixels * 1024 * 1024 / max(1, cw * ch))
    return max(m, int(round(cw * k / m)) * m), max(m, int(round(ch * k / m)) * m)


def feather_alpha(mask: np.ndarray, feather_px: float) -> np.ndarray:
    """0..1 float alpha: the mask eroded by half the feather then blurred, so the blend band sits
    on the mask's edge and the alpha is 0 well outside it."""
    import cv2

    m = (mask > 0).astype(np.uint8) * 255
    if feather_px <= 0:
        return m.astype(np.float32) / 255.0
    r = max(1, int(round(feather_px / 2)))
    m = cv2.erode(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    a = cv2.GaussianBlur(m.astype(np.float32) / 255.0, (0, 0), sigmaX=max(0.5, feather_px / 2.5))
    a[mask == 0] = 0.0
    return a


def paste_feathered(base: np.ndarray, patch: np.ndarray, alpha: np.ndarray, box: Box) -> None:
    """`base[box] = patch * alpha + base[box] * (1 - alpha)`, in place (uint8 RGB)."""
    x0, y0, x1, y1 = box
    dst = base[y0:y1, x0:x1].astype(np.float32)
    a = alpha[..., None]
    base[y0:y1, x0:x1] = np.clip(patch.astype(np.float32) * a + dst * (1.0 - a) + 0.5, 0, 255).astype(np.uint8)


EngineCall = Callable[[InpaintJob], Image.Image]


def repair(image: Image.Image, keep: np.ndarray, regions: Sequence[Region], engine: Engine, *, prompt: str,
           steps: int, guidance: float, strength: float, seed: int, cancel: CancelToken | None = None,
           progress: ProgressFn | None = None, call: EngineCall | None = None,
           result: DetailResult | None = None) -> DetailResult:
    """Redraw each region through the engine and paste it back feathered; kept pixels restored."""
    import cv2

    t0 = time.perf_counter()
    out = result or DetailResult(image=image)
    before = np.asarray(image.convert("RGB"))
    arr = before.copy()
    size = image.size
    strength = clamp_strength(strength)
    steps = max(int(steps), math.ceil(1.0 / strength))   # at least one denoising step is left
    total = max(1, len(regions))
    if call is None:
        def call(job: InpaintJob) -> Image.Image:
            res = engine.inpaint(job, _scaled(progress, out.engine_calls, total, job.steps), cancel)
            return res.images[0]

    for i, region in enumerate(regions):
        if cancel is not None:
            cancel.raise_if_cancelled()
        box = crop_box(region.box, size)
        x0, y0, x1, y1 = box
        cw, ch = x1 - x0, y1 - y0
        ew, eh = native_size(engine, (cw, ch))
        cmask = region.mask[y0:y1, x0:x1]
        # OpenCV resizes (a few ms; PIL's Lanczos to 1 MP costs ~10x more): cubic up, area down
        up = cv2.resize(arr[y0:y1, x0:x1], (ew, eh), interpolation=cv2.INTER_CUBIC)
        job = InpaintJob(image=Image.fromarray(up, "RGB"),
                         mask=Image.fromarray(cv2.resize(cmask, (ew, eh), interpolation=cv2.INTER_LINEAR), "L"),
                         prompt=f"{HAND_PROMPT if region.kind == 'hand' else FACE_PROMPT}, {prompt}".strip(", "),
                         width=ew, height=eh, seed=int(seed) + 7919 * (i + 1), steps=steps, guidance=guidance,
                         strength=strength, subject="person", extras={"detail": region.kind})
        te = time.perf_counter()
        made = call(job)
        out.engine_s += time.perf_counter() - te
        out.engine_calls += 1
        out.crops.append((box, (ew, eh)))
        patch = cv2.resize(np.asarray(made.convert("RGB")), (cw, ch), interpolation=cv2.INTER_AREA)
        feather = max(3.0, 0.06 * max(cw, ch))
        alpha = feather_alpha(cmask, feather)
        paste_feathered(arr, patch, alpha, box)
        if region.kind == "hand":
            out.hands += 1
        else:
            out.faces += 1
    held = keep > 0          # the owner's pixels, restored exactly (the masks already avoid them)
    arr[held] = before[held]
    out.image = Image.fromarray(arr, "RGB") if regions else image
    out.total_s += time.perf_counter() - t0
    return out


def _scaled(progress: ProgressFn | None, done: int, total: int, steps: int) -> ProgressFn | None:
    if progress is None:
        return None

    def inner(step: int, _total: int, desc: str = "") -> None:
        progress(done * steps + step, total * steps, "detail")

    return inner


def run_pass(image: Image.Image, keep: np.ndarray, engine: Engine, *, find_hands: Callable[[np.ndarray], list],
             find_faces: Callable[[Image.Image], list], kept_boxes: Sequence[Box] = (), hands_checked: bool = True,
             prompt: str = "", steps: int = 28, guidance: float = 30.0, strength: float = DEFAULT_STRENGTH,
             seed: int = 0, cancel: CancelToken | None = None, progress: ProgressFn | None = None,
             call: EngineCall | None = None) -> DetailResult:
    """Find the regions on `image` (the finished ad), then repair them."""
    t0 = time.perf_counter()
    rgb = np.asarray(image.convert("RGB"))
    hands = list(find_hands(rgb))   # `hands_checked` only words the notice when none is found
    if cancel is not None:
        cancel.raise_if_cancelled()
    faces = list(find_faces(image))
    regions, skipped = find_regions(image.size, keep, hands, faces, kept_boxes)
    res = DetailResult(image=image, found_hands=len(hands), found_faces=len(faces), skipped_kept=skipped,
                       hands_checked=hands_checked)
    res.total_s = time.perf_counter() - t0
    return repair(image, keep, regions, engine, prompt=prompt, steps=steps, guidance=guidance, strength=strength,
                  seed=seed, cancel=cancel, progress=progress, call=call, result=res)
