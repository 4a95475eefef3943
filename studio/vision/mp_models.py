"""MediaPipe's learned models (installed with the studio) run through OpenCV's TFLite importer.

No mediapipe package: `cv2.dnn.readNetFromTFLite` loads six of the `.tflite` files shipped in the
pinned mediapipe wheel (see `studio.runtime.bundled_models`), and the pre- and post-processing
that MediaPipe's graphs do around them (SSD anchors, rotated crops, landmark decoding) lives here.
Outputs are picked by shape (never by index: their order differs between OpenCV versions), and by
tensor name only where two outputs share a shape.

    BlazeFace      face boxes + 6 keypoints       face_detection_short_range.tflite (128x128, -1..1)
    FaceMesh       468 face landmarks + face flag face_landmark.tflite (192x192, 0..1)
    SelfieSeg      person probability map         selfie_segmentation[_landscape].tflite (256x256 / 256x144)
    BlazePose      33 body landmarks + body mask  pose_landmark_full.tflite (256x256, 0..1)
    PalmDetector   palm boxes + 7 keypoints       palm_detection_full.tflite (192x192, 0..1)
    HandLandmarks  21 hand landmarks + handedness hand_landmark_full.tflite (224x224, 0..1)

Anchor and ROI constants are MediaPipe's, from its graph files (face_detection_short_range.pbtxt,
palm_detection_cpu.pbtxt, face_landmark_front_cpu.pbtxt, pose_landmark_by_roi_cpu.pbtxt,
hand_landmark_cpu.pbtxt). All images are RGB uint8 numpy arrays; every coordinate returned is in
pixels of the image passed in.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)

FACE_DETECTOR_FILE = "face_detection_short_range.tflite"
FACE_MESH_FILE = "face_landmark.tflite"
SELFIE_FILE = "selfie_segmentation.tflite"
SELFIE_LANDSCAPE_FILE = "selfie_segmentation_landscape.tflite"
POSE_FILE = "pose_landmark_full.tflite"
PALM_FILE = "palm_detection_full.tflite"
HAND_FILE = "hand_landmark_full.tflite"

# FaceMesh's face oval (mediapipe/python/solutions/face_mesh_connections.py FACEMESH_FACE_OVAL),
# as a closed polygon of landmark indices.
FACE_OVAL: tuple[int, ...] = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152,
    148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -50.0, 50.0)))


class TFLiteNet:
    """One `.tflite` file loaded into OpenCV's dnn; thread-safe forward returning name -> array."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.net = cv2.dnn.readNetFromTFLite(str(self.path))
        self.net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        self.net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
        self.names = list(self.net.getUnconnectedOutLayersNames())
        self._lock = threading.Lock()

    def __call__(self, blob: np.ndarray) -> dict[str, np.ndarray]:
        with self._lock:
            self.net.setInput(np.ascontiguousarray(blob, dtype=np.float32))
            outs = self.net.forward(self.names)
        return {n: np.asarray(o) for n, o in zip(self.names, outs)}


def _by_size(outs: dict[str, np.ndarray], size: int) -> list[tuple[str, np.ndarray]]:
    return [(n, o) for n, o in outs.items() if o.size == size]


def to_blob(rgb_square: np.ndarray, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
    """HxWx3 uint8 RGB -> 1x3xHxW float32 scaled to lo..hi (NCHW, as OpenCV's importer wants)."""
    x = rgb_square.astype(np.float32) * ((hi - lo) / 255.0) + lo
    return x.transpose(2, 0, 1)[None]


# -- rotated square crops (MediaPipe's ImageToTensor with a rotated ROI) --------------------------
@dataclass(frozen=True)
class Roi:
    cx: float
    cy: float
    size: float             # side of the square, in image pixels
    angle: float = 0.0      # radians; positive = the content is rotated clockwise in the image

    def matrix(self, out: int) -> np.ndarray:
        """2x3 affine: image pixels -> crop pixels (0..out)."""
        s = out / max(self.size, 1e-6)
        c, si = math.cos(-self.angle), math.sin(-self.angle)
        # translate ROI centre to origin, rotate by -angle, scale, move to crop centre
        a = np.array([[c * s, -si * s, 0.0], [si * s, c * s, 0.0]], np.float64)
        a[:, 2] = np.array([out / 2.0, out / 2.0]) - a[:, :2] @ np.array([self.cx, self.cy])
        return a

    def crop(self, rgb: np.ndarray, out: int) -> tuple[np.ndarray, np.ndarray]:
        m = self.matrix(out)
        patch = cv2.warpAffine(rgb, m, (out, out), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        return patch, cv2.invertAffineTransform(m)


def apply_affine(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    pts = np.asarray(pts, np.float64).reshape(-1, 2)
    return pts @ m[:, :2].T + m[:, 2]


def letterbox(rgb: np.ndarray, out_w: int, out_h: int) -> tuple[np.ndarray, float, float, float]:
    """Fit into out_w x out_h keeping aspect, pad with black; returns (img, scale, pad_x, pad_y)."""
    h, w = rgb.shape[:2]
    s = min(out_w / w, out_h / h)
    nw, nh = max(1, int(round(w * s))), max(1, int(round(h * s)))
    small = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    canvas = np.zeros((out_h, out_w, 3), np.uint8)
    px, py = (out_w - nw) // 2, (out_h - nh) // 2
    canvas[py:py + nh, px:px + nw] = small
    return canvas, s, float(px), float(py)


# -- SSD anchors (mediapipe/calculators/tflite/ssd_anchors_calculator.cc, fixed_anchor_size) -----
def ssd_anchor_centres(input_size: int, strides: tuple[int, ...], anchors_per_layer: int = 2) -> np.ndarray:
    """(N, 2) anchor centres in 0..1; layers with the same stride are merged as MediaPipe does."""
    out = []
    i = 0
    while i < len(strides):
        stride = strides[i]
        n = 0
        while i < len(strides) and strides[i] == stride:
            n += anchors_per_layer
            i += 1
        g = int(math.ceil(input_size / stride))
        ys, xs = np.mgrid[0:g, 0:g]
        c = np.stack([(xs + 0.5) / g, (ys + 0.5) / g], axis=-1).reshape(-1, 1, 2)
        out.append(np.repeat(c, n, axis=1).reshape(-1, 2))
    return np.concatenate(out).astype(np.float32)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, extra: np.ndarray, iou_thr: float = 0.3
                 ) -> list[tuple[np.ndarray, float, np.ndarray]]:
    """MediaPipe's WEIGHTED non-max suppression: overlapping candidates are averaged by score."""
    order = np.argsort(-scores)
    boxes, scores, extra = boxes[order], scores[order], extra[order]
    used = np.zeros(len(boxes), bool)
    out = []
    for i in range(len(boxes)):
        if used[i]:
            continue
        iou = box_iou(boxes[i], boxes)
        group = (~used) & (iou >= iou_thr)
        used |= group
        w = scores[group][:, None]
        out.append(((boxes[group] * w).sum(0) / w.sum(), float(scores[i]),
                    (extra[group] * w[:, :, None] if extra.ndim == 3 else extra[group] * w).sum(0) / w.sum()))
    return out


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of one box (4,) x0y0x1y1 against many (N, 4)."""
    b = np.asarray(b, np.float64).reshape(-1, 4)
    ix = np.clip(np.minimum(a[2], b[:, 2]) - np.maximum(a[0], b[:, 0]), 0, None)
    iy = np.clip(np.minimum(a[3], b[:, 3]) - np.maximum(a[1], b[:, 1]), 0, None)
    inter = ix * iy
    area = lambda x: (x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1])  # noqa: E731
    return inter / np.maximum(area(np.asarray(a, np.float64)) + area(b) - inter, 1e-9)


# -- BlazeFace -----------------------------------------------------------------------------------
@dataclass
class Detection:
    box: np.ndarray          # (4,) x0, y0, x1, y1 image pixels
    score: float
    keypoints: np.ndarray    # (K, 2) image pixels


class BlazeFace:
    """Short-range BlazeFace over the whole photo and over overlapping windows (small faces).

    The model sees faces that fill about 10-70 % of its 128 px input; windows of decreasing size
    bring faces down to ~32 px within that range. Candidates from all windows are merged by
    weighted NMS."""

    INPUT = 128
    STRIDES = (8, 16, 16, 16)
    SCORE = 0.5

    def __init__(self, path: Path | str) -> None:
        self.net = TFLiteNet(path)
        self.anchors = ssd_anchor_centres(self.INPUT, self.STRIDES)

    def _detections(self, raw: np.ndarray, scores: np.ndarray, s: float, px: float, py: float,
                    min_score: float) -> list[Detection]:
        """Decode one input's (896, 16) regressors and (896,) scores into its tile's pixels."""
        out = []
        for i in np.where(scores >= min_score)[0]:
            r = raw[i] / self.INPUT
            ax, ay = self.anchors[i]
            cx, cy, w, h = r[0] + ax, r[1] + ay, r[2], r[3]
            box = np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]) * self.INPUT
            kps = (r[4:16].reshape(6, 2) + self.anchors[i]) * self.INPUT
            out.append(Detection((box - [px, py, px, py]) / s, float(scores[i]), (kps - [px, py]) / s))
        return out

    def _run_tile(self, tile: np.ndarray, min_score: float) -> list[Detection]:
        """Detections on one tile (any aspect), in tile pixels. One tile per forward pass: OpenCV's
        TFLite import of this model mixes up a batch."""
        sq, s, px, py = letterbox(tile, self.INPUT, self.INPUT)
        outs = self.net(to_blob(sq, -1.0, 1.0))
        scores = sigmoid(next(o for _, o in _by_size(outs, 896)).reshape(896))
        raw = next(o for _, o in _by_size(outs, 896 * 16)).reshape(896, 16)
        return self._detections(raw, scores, s, px, py, min_score)

    def windows(self, w: int, h: int, min_face: int = 32) -> list[tuple[int, int, int, int]]:
        """The whole photo, then square windows shrinking by half until a `min_face` face would
        cover at least ~12 % of the model's input."""
        wins = [(0, 0, w, h)]
        limit = max(int(min_face / 0.12), 96)
        side = min(w, h) // 2
        while min(w, h) > limit and side >= 64:
            step = max(int(side * 0.8), 1)
            xs = list(range(0, max(w - side, 0) + 1, step))
            ys = list(range(0, max(h - side, 0) + 1, step))
            if xs[-1] != max(w - side, 0):
                xs.append(max(w - side, 0))
            if ys[-1] != max(h - side, 0):
                ys.append(max(h - side, 0))
            wins += [(x, y, x + side, y + side) for y in ys for x in xs]
            if side <= limit:
                break
            side //= 2
        return wins

    def __call__(self, rgb: np.ndarray, min_face: int = 32, min_score: float | None = None,
                 people: np.ndarray | None = None) -> list[Detection]:
        """`people`: a person probability map (image size); windows without people are skipped
        (the whole photo is always searched)."""
        h, w = rgb.shape[:2]
        thr = self.SCORE if min_score is None else min_score
        cands: list[Detection] = []
        wins = self.windows(w, h, min_face)
        if people is not None:
            # a head is at the top of its person: keep the windows that hold a stretch of a
            # person's upper outline (person here, none a little above)
            body = people > 0.3
            k = max(4, int(0.012 * max(h, w)))
            above = np.zeros_like(body)
            above[k:] = body[:-k]
            top = (body & ~above).astype(np.float32)
            integral = cv2.integral(top)

            def share(x0: int, y0: int, x1: int, y1: int) -> float:
                tot = integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]
                return float(tot) / max((x1 - x0) * (y1 - y0), 1)
            wins = [wins[0]] + [b for b in wins[1:] if share(*b) >= 0.004]
        for x0, y0, x1, y1 in wins:
            for d in self._run_tile(rgb[y0:y1, x0:x1], thr):
                d.box = d.box + [x0, y0, x0, y0]
                d.keypoints = d.keypoints + [x0, y0]
                cands.append(d)
        if not cands:
            return []
        boxes = np.array([d.box for d in cands])
        scores = np.array([d.score for d in cands])
        kps = np.array([d.keypoints for d in cands])
        merged = weighted_nms(boxes, scores, kps, 0.3)
        out = [Detection(b, s, k) for b, s, k in merged]
        # a face seen in a big window is also partly seen at the edge of small ones: drop boxes
        # mostly inside a stronger one
        out.sort(key=lambda d: -d.score)
        kept: list[Detection] = []
        for d in out:
            if any(_inside(d.box, k.box) > 0.6 for k in kept):
                continue
            kept.append(d)
        return kept


def _inside(a: np.ndarray, b: np.ndarray) -> float:
    """Share of box a's area inside box b."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    area = max((a[2] - a[0]) * (a[3] - a[1]), 1e-9)
    return ix * iy / area


def face_roi(box: np.ndarray, keypoints: np.ndarray, scale: float = 1.5) -> Roi:
    """FaceMesh's crop from a detection: square, 1.5x the box, rotated so the eyes are level
    (face_detection_front_detection_to_roi.pbtxt: keypoints 0 and 1, target angle 0)."""
    re, le = keypoints[0], keypoints[1]
    angle = math.atan2(le[1] - re[1], le[0] - re[0])
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    side = max(box[2] - box[0], box[3] - box[1]) * scale
    return Roi(float(cx), float(cy), float(side), float(angle))


class FaceMesh:
    """468 landmarks on a face crop; `face_flag` is the model's own "is this a face" probability."""

    INPUT = 192

    def __init__(self, path: Path | str) -> None:
        self.net = TFLiteNet(path)

    def __call__(self, rgb: np.ndarray, roi: Roi) -> tuple[np.ndarray, float]:
        patch, inv = roi.crop(rgb, self.INPUT)
        outs = self.net(to_blob(patch))
        pts = next(o for _, o in _by_size(outs, 1404)).reshape(468, 3)
        flag = float(sigmoid(next(o for _, o in _by_size(outs, 1)).reshape(-1))[0])
        return apply_affine(inv, pts[:, :2]), flag


# -- selfie segmentation -------------------------------------------------------------------------
class SelfieSeg:
    """Person probability (0..1, float32, image size). Picks the landscape model for wide photos."""

    def __init__(self, square: Path | str, landscape: Path | str | None = None) -> None:
        self.square = TFLiteNet(square)
        self.landscape = TFLiteNet(landscape) if landscape else None

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        net, (iw, ih) = (self.landscape, (256, 144)) if self.landscape is not None and w > h * 1.3 \
            else (self.square, (256, 256))
        # stretch, as MediaPipe's selfie graph does (no letterbox), then stretch the mask back
        x = cv2.resize(rgb, (iw, ih), interpolation=cv2.INTER_AREA)
        outs = net(to_blob(x))
        prob = next(o for _, o in _by_size(outs, iw * ih)).reshape(ih, iw).astype(np.float32)
        return cv2.resize(prob, (w, h), interpolation=cv2.INTER_LINEAR)


# -- BlazePose landmarks (full) ------------------------------------------------------------------
@dataclass
class PoseLandmarks:
    points: np.ndarray       # (33, 2) image pixels
    visibility: np.ndarray   # (33,) 0..1
    presence: float          # the model's pose flag 0..1
    mask: np.ndarray         # (H, W) float32 body probability in image pixels


class BlazePose:
    """BlazePose GHUM full on a person crop. The crop (Roi) comes from the person's box."""

    INPUT = 256

    def __init__(self, path: Path | str) -> None:
        self.net = TFLiteNet(path)

    def __call__(self, rgb: np.ndarray, roi: Roi) -> PoseLandmarks:
        h, w = rgb.shape[:2]
        patch, inv = roi.crop(rgb, self.INPUT)
        outs = self.net(to_blob(patch))
        lm = next(o for _, o in _by_size(outs, 195)).reshape(39, 5)
        flag = float(next(o for _, o in _by_size(outs, 1)).reshape(-1)[0])
        seg = next(o for _, o in _by_size(outs, self.INPUT * self.INPUT)).reshape(self.INPUT, self.INPUT)
        pts = apply_affine(inv, lm[:33, :2])
        vis = sigmoid(lm[:33, 3])
        mask = cv2.warpAffine(sigmoid(seg).astype(np.float32), inv, (w, h), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return PoseLandmarks(pts, vis.astype(np.float32), flag, mask)


def person_roi(box: tuple[float, float, float, float], scale: float = 1.25) -> Roi:
    """A square crop around a person's box (BlazePose's ROI is 1.25x the body, upright)."""
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0) * scale
    return Roi((x0 + x1) / 2.0, (y0 + y1) / 2.0, float(side), 0.0)


# -- hands ---------------------------------------------------------------------------------------
class PalmDetector:
    INPUT = 192
    STRIDES = (8, 16, 16, 16)
    SCORE = 0.5

    def __init__(self, path: Path | str) -> None:
        self.net = TFLiteNet(path)
        self.anchors = ssd_anchor_centres(self.INPUT, self.STRIDES)

    def __call__(self, rgb: np.ndarray, min_score: float | None = None) -> list[Detection]:
        thr = self.SCORE if min_score is None else min_score
        sq, s, px, py = letterbox(rgb, self.INPUT, self.INPUT)
        outs = self.net(to_blob(sq))
        n = len(self.anchors)
        scores = sigmoid(next(o for _, o in _by_size(outs, n)).reshape(-1))
        raw = next(o for _, o in _by_size(outs, n * 18)).reshape(-1, 18)
        keep = np.where(scores >= thr)[0]
        if len(keep) == 0:
            return []
        r = raw[keep] / self.INPUT
        a = self.anchors[keep]
        cx, cy, bw, bh = r[:, 0] + a[:, 0], r[:, 1] + a[:, 1], r[:, 2], r[:, 3]
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1) * self.INPUT
        kps = (r[:, 4:18].reshape(-1, 7, 2) + a[:, None, :]) * self.INPUT
        boxes = (boxes - [px, py, px, py]) / s
        kps = (kps - [px, py]) / s
        return [Detection(b, sc, k) for b, sc, k in weighted_nms(boxes, scores[keep], kps, 0.3)]


def palm_to_hand_roi(det: Detection) -> Roi:
    """palm_detection_detection_to_roi.pbtxt: rotate so wrist (kp 0) -> middle finger base (kp 2)
    points up; scale 2.6, shift up by 0.5 of the box."""
    wrist, middle = det.keypoints[0], det.keypoints[2]
    angle = math.pi / 2 - math.atan2(-(middle[1] - wrist[1]), middle[0] - wrist[0])
    angle = (angle + math.pi) % (2 * math.pi) - math.pi
    bw, bh = det.box[2] - det.box[0], det.box[3] - det.box[1]
    cx, cy = (det.box[0] + det.box[2]) / 2, (det.box[1] + det.box[3]) / 2
    # shift_y -0.5 in the rotated frame
    sx, sy = 0.0, -0.5 * bh
    cx += sx * math.cos(angle) - sy * math.sin(angle)
    cy += sx * math.sin(angle) + sy * math.cos(angle)
    side = max(bw, bh) * 2.6
    return Roi(float(cx), float(cy), float(side), float(angle))


class HandLandmarks:
    INPUT = 224

    def __init__(self, path: Path | str) -> None:
        self.net = TFLiteNet(path)

    def __call__(self, rgb: np.ndarray, roi: Roi) -> tuple[np.ndarray, float, float]:
        """(21, 2) image pixels, presence 0..1, right-handedness 0..1."""
        patch, inv = roi.crop(rgb, self.INPUT)
        outs = self.net(to_blob(patch))
        # two (1, 63) outputs: screen landmarks (input pixels, range ~0..224) and world landmarks
        # (metres, |v| < 1): told apart by their spread
        l63 = sorted(_by_size(outs, 63), key=lambda no: -float(np.ptp(no[1])))
        pts = l63[0][1].reshape(21, 3)
        ones = dict(_by_size(outs, 1))
        # two (1, 1) outputs share a shape: MediaPipe names them Identity_1 (hand flag) and
        # Identity_2 (handedness) in this file
        presence = float(ones.get("Identity_1", np.zeros(1)).reshape(-1)[0])
        handed = float(ones.get("Identity_2", np.zeros(1)).reshape(-1)[0])
        return apply_affine(inv, pts[:, :2]), presence, handed


class MediaPipeKit:
    """The loaded nets from models/mediapipe, each built on first use (after its hash check)."""

    def __init__(self, models_dir: Path | str, verify: bool = True) -> None:
        self.models_dir = Path(models_dir)
        self.verify = verify
        self._nets: dict[str, object] = {}
        self._lock = threading.Lock()

    def _path(self, file: str) -> Path:
        from studio.runtime import bundled_models

        if self.verify:
            return bundled_models.verify_file(self.models_dir, file)
        return bundled_models.model_path(self.models_dir, file)

    def _get(self, key: str, build) -> object:
        with self._lock:
            if key not in self._nets:
                self._nets[key] = build()
            return self._nets[key]

    @property
    def face_detector(self) -> BlazeFace:
        return self._get("face", lambda: BlazeFace(self._path(FACE_DETECTOR_FILE)))  # type: ignore[return-value]

    @property
    def face_mesh(self) -> FaceMesh:
        return self._get("mesh", lambda: FaceMesh(self._path(FACE_MESH_FILE)))  # type: ignore[return-value]

    @property
    def selfie(self) -> SelfieSeg:
        return self._get("selfie", lambda: SelfieSeg(self._path(SELFIE_FILE),  # type: ignore[return-value]
                                                     self._path(SELFIE_LANDSCAPE_FILE)))

    @property
    def pose(self) -> BlazePose:
        return self._get("pose", lambda: BlazePose(self._path(POSE_FILE)))  # type: ignore[return-value]

    @property
    def palm(self) -> PalmDetector:
        return self._get("palm", lambda: PalmDetector(self._path(PALM_FILE)))  # type: ignore[return-value]

    @property
    def hand(self) -> HandLandmarks:
        return self._get("hand", lambda: HandLandmarks(self._path(HAND_FILE)))  # type: ignore[return-value]


_kits: dict[Path, MediaPipeKit] = {}
_kits_lock = threading.Lock()


def shared_kit(models_dir: Path | str) -> MediaPipeKit:
    """One kit per models folder for the whole process: faces, people, pose and hands read the
    same loaded (and once hash-checked) nets instead of each loading its own copy."""
    key = Path(models_dir).resolve()
    with _kits_lock:
        if key not in _kits:
            _kits[key] = MediaPipeKit(key)
        return _kits[key]


def available(models_dir: Path | str) -> bool:
    from studio.runtime import bundled_models

    return bundled_models.all_present(models_dir)
