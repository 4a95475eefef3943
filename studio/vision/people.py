"""People as masks: who is in the photo, and exactly where, from MediaPipe's learned models.

`person_mask(kit, rgb, face, faces)` is the picked person's mask (255 = person) on the photo:

1. Selfie segmentation gives every person's pixels (probability map); a person small in the
   photo is segmented again on a square crop around them (`closer_look`).
2. The piece holding the picked face is kept. When other faces share it (people touching), it is
   split: BlazePose's body mask on the picked person's crop says which pixels are theirs; where
   the pose model is unsure, each pixel goes to the nearest face's column.
3. For a full body (a tall figure, small face) the pose model's body mask is added: selfie
   segmentation is trained on upper bodies and fades at the legs. When the pose model is sure,
   selfie pixels far from its body (spectators behind an arm) are dropped, and how far the two
   models agree is returned (`PersonMask.agreement`: the workflow lays out an unsure figure whole).
4. The edge band is refined on the full-resolution photo (guided filter, `matting._refine_full_size`).

The notices that count who was kept read the FINAL keep mask (`workflows.common.face_shown`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from studio.vision import masks

log = logging.getLogger(__name__)

SELFIE_THRESHOLD = 0.5
POSE_THRESHOLD = 0.5


@dataclass
class PersonMask:
    mask: np.ndarray            # uint8 255 = person
    backend: str                # "selfie", "selfie+pose"; "selfie+group" when the picked person
                                #  touches others and only the whole group could be kept
    pose: object | None = None  # mp_models.PoseLandmarks of the picked person, when run
    agreement: float | None = None  # IoU of the selfie and pose masks of a whole figure, when both ran


def _face_centre(face) -> tuple[int, int]:
    x0, y0, x1, y1 = face.box
    return int((x0 + x1) / 2), int((y0 + y1) / 2)


def body_box(face_box, size: tuple[int, int], full: bool = False) -> tuple[float, float, float, float]:
    """Where a person's body is expected below their face (for the pose crop)."""
    x0, y0, x1, y1 = face_box
    w, h = x1 - x0, y1 - y0
    cx = (x0 + x1) / 2
    W, H = size
    down = 7.5 if full else 4.0
    return (max(0.0, cx - 2.0 * w), max(0.0, y0 - 0.5 * h), min(float(W), cx + 2.0 * w), min(float(H), y1 + down * h))


def _component_at(binary: np.ndarray, point: tuple[int, int]) -> np.ndarray:
    n, labels = cv2.connectedComponents(binary.astype(np.uint8))
    x, y = point
    h, w = binary.shape
    x, y = min(max(x, 0), w - 1), min(max(y, 0), h - 1)
    lab = labels[y, x]
    if lab == 0:
        # the face centre fell just outside (hair, a hat): the nearest piece within a face width
        ys, xs = np.nonzero(labels)
        if ys.size == 0:
            return np.zeros_like(binary, dtype=bool)
        d = (xs - x) ** 2 + (ys - y) ** 2
        i = int(np.argmin(d))
        lab = labels[ys[i], xs[i]]
    return labels == lab


def person_mask(kit, rgb: np.ndarray, face, faces: list | None = None, prob: np.ndarray | None = None,
                refine: bool = True) -> PersonMask:
    """The picked person's mask (see the module doc)."""
    h, w = rgb.shape[:2]
    faces = list(faces or [face])
    fx0, fy0, fx1, fy1 = face.box
    fh = max(1, fy1 - fy0)
    # the face itself (its outline, and the neck under it): never the drawn hair ellipse, which
    # would carry the backdrop around the head into the cut-out - the model's mask holds the hair
    head = masks.face_region_mask((w, h), face, include_hair=False, include_neck=True) > 0
    if prob is None:
        prob = closer_look(kit, rgb, kit.selfie(rgb), head, face)
    # the face itself is always kept; the drawn neck only where the model sees some person (a
    # tilted face's neck box reaches into the wall beside the shoulder)
    face_only = masks.face_region_mask((w, h), face, include_hair=False, include_neck=False) > 0
    head = face_only | (head & (prob >= 0.1))
    binary = prob >= SELFIE_THRESHOLD
    mine = _component_at(binary | head, _face_centre(face))
    backend = "selfie"
    pose = None
    agreement = None
    ys, xs = np.nonzero(mine & ~head)
    weak = ys.size < 0.5 * float(head.sum())          # selfie model saw no body (grey photos, far away)
    tall = ys.size > 0 and (ys.max() - ys.min()) > 5.0 * fh
    sharing = [f for f in faces if f is not face and mine[min(_face_centre(f)[1], h - 1), min(_face_centre(f)[0], w - 1)]]
    if weak or tall or sharing:
        if sharing:
            # several people in one piece: the crop below this face, as tight and as tall as
            # works best (the model's own presence score decides)
            tries = [(body_box(face.box, (w, h), full=False), 1.25), (body_box(face.box, (w, h), full=True), 1.0),
                     (body_box(face.box, (w, h), full=False), 1.0)]
        else:
            box = body_box(face.box, (w, h), full=tall or weak)
            if ys.size and tall:
                box = (float(min(xs.min(), box[0])), float(min(ys.min(), box[1])),
                       float(max(xs.max() + 1, box[2])), float(max(ys.max() + 1, box[3])))
            tries = [(box, 1.25)]
        from studio.vision.mp_models import person_roi

        for box, scale in tries:
            res = kit.pose(rgb, person_roi(box, scale))
            if pose is None or res.presence > pose.presence:
                pose = res
            if pose.presence >= 0.8:
                break
        body = pose.mask >= POSE_THRESHOLD
        if pose.presence >= 0.5 and body.any():
            backend = "selfie+pose"
            if sharing:
                # split the shared piece: only what the pose model calls this person's body
                mine = mine & masks.dilate(body.astype(np.uint8) * 255, max(2, int(0.03 * fh))).astype(bool)
            elif weak:
                mine = mine | (body & _component_at(body | head, _face_centre(face)))
                prob = np.maximum(prob, pose.mask)
            elif pose.presence >= 0.8:
                # a whole figure the pose model is sure of: its body mask is this one person,
                # while the selfie model also takes the spectators and passers-by behind an arm
                # or a leg - what lies off the body by more than a few pixels is theirs
                near = masks.dilate(body.astype(np.uint8) * 255, max(2, int(0.15 * fh))) > 0
                agreement = float((mine & body).sum()) / max(float((mine | body).sum()), 1.0)
                mine = (mine & near) | (body & (prob > 0.1))
            else:
                mine = mine | (body & (prob > 0.1))
        elif sharing:
            # no pose: the nearest face's column, within the body's expected box
            cx = np.array([_face_centre(f)[0] for f in [face] + sharing], np.float32)
            cols = np.arange(w, dtype=np.float32)
            bx0, by0, bx1, by1 = (int(v) for v in body_box(face.box, (w, h)))
            inside = np.zeros((h, w), bool)
            inside[by0:by1, bx0:bx1] = True
            mine = mine & inside & (np.argmin(np.abs(cols[None, :] - cx[:, None]), axis=0) == 0)[None, :]
    mine = mine | head
    if sharing:
        # a neighbour's face cut in two is worse than a neighbour kept: when the split runs
        # through another face, the whole piece (everyone touching) is kept and said so
        whole = _component_at(binary | head, _face_centre(face))
        for other in sharing:
            their_head = masks.face_region_mask((w, h), other, include_hair=True) > 0
            inside = float((mine & their_head).sum()) / max(float(their_head.sum()), 1.0)
            if inside > 0.03:
                log.info("the split through the group takes part of another head (%.0f %%): keeping the whole group",
                         inside * 100)
                mine = whole | head
                backend = "selfie+group"
                break
    out = _clean(mine, _face_centre(face))
    if refine:
        from studio.vision.matting import _refine_full_size

        soft = np.clip(np.rint(prob * 255.0), 0, 255).astype(np.uint8)
        hard = out
        out = _refine_full_size(rgb, _blend_edge(out, soft), max(2, int(round(0.01 * max(h, w)))))
        # the edge filter must not thin away what the model is sure of (an outstretched arm)
        out = np.maximum(out, np.where((hard > 0) & (prob >= 0.8), 255, 0).astype(np.uint8))
    return PersonMask(out, backend, pose, agreement)


def closer_look(kit, rgb: np.ndarray, prob: np.ndarray, head: np.ndarray, face) -> np.ndarray:
    """A second selfie pass on a crop around a person who is small in the photo.

    The model sees the whole photo at 256x256 (256x144 landscape): a footballer 200 px tall in a
    wide photo is then 60 model pixels tall and an outstretched arm is two pixels thick, so it
    fades. Cropped to the person (a square with room around them), the same model sees them four
    to eight times larger; the crop's answer replaces the first one inside the crop."""
    h, w = rgb.shape[:2]
    piece = _component_at((prob >= SELFIE_THRESHOLD) | head, _face_centre(face))
    ys, xs = np.nonzero(piece)
    if ys.size == 0:
        return prob
    bx0, by0, bx1, by1 = body_box(face.box, (w, h), full=True)
    x0, y0 = min(float(xs.min()), bx0), min(float(ys.min()), by0)
    x1, y1 = max(float(xs.max() + 1), bx1), max(float(ys.max() + 1), by1)
    side = 1.3 * max(x1 - x0, y1 - y0)
    if side >= 0.8 * max(h, w):
        return prob                              # the person already fills the model's view
    side = min(side, float(min(h, w)))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    sx0 = int(round(min(max(cx - side / 2, 0.0), max(w - side, 0.0))))
    sy0 = int(round(min(max(cy - side / 2, 0.0), max(h - side, 0.0))))
    sx1, sy1 = min(w, sx0 + int(round(side))), min(h, sy0 + int(round(side)))
    if (sx1 - sx0) < 16 or (sy1 - sy0) < 16:
        return prob
    crop = kit.selfie(np.ascontiguousarray(rgb[sy0:sy1, sx0:sx1]))
    out = prob.copy()
    out[sy0:sy1, sx0:sx1] = crop
    return out


def _blend_edge(hard: np.ndarray, soft: np.ndarray) -> np.ndarray:
    """The hard decision inside and out, the model's soft value on the edge (for the guided filter)."""
    grown, shrunk = masks.dilate(hard, 2), masks.erode(hard, 2)
    out = hard.copy()
    edge = (grown > 0) & (shrunk == 0)
    out[edge] = soft[edge]
    return out


def _clean(mask: np.ndarray, keep_point: tuple[int, int]) -> np.ndarray:
    """One piece (the one holding the face), small holes filled, as uint8 0/255."""
    m = mask.astype(np.uint8) * 255
    m = cv2.morphologyEx(m, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))
    piece = _component_at(m > 0, keep_point)
    m = piece.astype(np.uint8) * 255
    # fill holes smaller than 2 % of the person (a gap under an arm stays open)
    area = float((m > 0).sum())
    cs, hier = cv2.findContours(m, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hier is not None:
        holes = [c for c, row in zip(cs, hier[0]) if row[3] >= 0 and cv2.contourArea(c) < 0.02 * area]
        if holes:
            cv2.drawContours(m, holes, -1, 255, thickness=cv2.FILLED)
    return m
