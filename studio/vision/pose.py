"""Pose guides for the ControlNet: an OpenPose-format skeleton (18 COCO keypoints on black).

Backends, picked from what is present in models/:
0. (last, but always there once the studio is set up) BlazePose (Apache-2.0, MediaPipe's
   pose_landmark_full, installed with the studio): 33 landmarks per person found by their face,
   converted to OpenPose's 18 (`blazepose_to_openpose`). The AI path then has a body guide with no
   OpenPose or DWPose weights.
1. DWPose (Apache-2.0): models/dwpose/yolox_l.onnx (person boxes) + dw-ll_ucoco_384.onnx
   (RTMPose whole-body, SimCC heads), run with onnxruntime; the 133 whole-body points are mapped
   to OpenPose's 18 as ControlNet's DWPose annotator does.
2. OpenPose body (CMU, non-commercial): controlnet_aux's `OpenposeDetector` built from the Body
   model alone, from models/annotators/body_pose_model.pth (no hub call; `from_pretrained` would
   want the hand and face models too).

`PoseEstimator.from_folder(models_dir)` is None without weights: the workflow then runs without
the ControlNet and says so (`VisionKit.pose_note`).
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from studio.errors import WeightsError
from studio.vision.base import BackendInfo, onnx_providers, to_rgb_array

log = logging.getLogger(__name__)


BACKENDS: tuple[str, ...] = ("dwpose", "openpose", "blazepose")
OPENPOSE_FILE = ("annotators", "body_pose_model.pth")
DWPOSE_FILES = ("dwpose", ("yolox_l.onnx", "dw-ll_ucoco_384.onnx"))
LICENCES: dict[str, tuple[str, bool]] = {
    "dwpose": ("Apache-2.0", True),
    "openpose": ("CMU OpenPose: non-commercial", False),
    "blazepose": ("Apache-2.0 (MediaPipe BlazePose)", True),
}

# BlazePose landmark index for each OpenPose-18 point (-1: the neck, the shoulders' midpoint).
# OpenPose: nose, neck, R shoulder, R elbow, R wrist, L shoulder, L elbow, L wrist, R hip, R knee,
# R ankle, L hip, L knee, L ankle, R eye, L eye, R ear, L ear.
# BlazePose (mediapipe/python/solutions/pose.py PoseLandmark): 0 nose, 2 left eye, 5 right eye,
# 7 left ear, 8 right ear, 11/12 left/right shoulder, 13/14 elbows, 15/16 wrists, 23/24 hips,
# 25/26 knees, 27/28 ankles.
BLAZEPOSE_TO_OPENPOSE: tuple[int, ...] = (0, -1, 12, 14, 16, 11, 13, 15, 24, 26, 28, 23, 25, 27, 5, 2, 8, 7)


def blazepose_to_openpose(points: np.ndarray, visibility: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """(33, 2) pixels + (33,) visibility -> (18, 3) OpenPose order (x, y, confidence; 0 = missing)."""
    pts = np.asarray(points, np.float64).reshape(33, 2)
    vis = np.asarray(visibility, np.float64).reshape(33)
    out = np.zeros((18, 3), np.float64)
    for j, b in enumerate(BLAZEPOSE_TO_OPENPOSE):
        if b < 0:
            c = min(vis[11], vis[12])
            xy = (pts[11] + pts[12]) / 2.0
        else:
            c, xy = vis[b], pts[b]
        if c >= threshold:
            out[j] = (xy[0], xy[1], c)
    return out
KEYPOINT_THRESHOLD = 0.3

# OpenPose's limbs (1-based keypoint pairs) and colours, as controlnet_aux draws them.
LIMBS: tuple[tuple[int, int], ...] = (
    (2, 3), (2, 6), (3, 4), (4, 5), (6, 7), (7, 8), (2, 9), (9, 10), (10, 11), (2, 12), (12, 13),
    (13, 14), (2, 1), (1, 15), (15, 17), (1, 16), (16, 18))
COLOURS: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0), (0, 255, 0),
    (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255), (0, 0, 255), (85, 0, 255),
    (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85))


@dataclass
class PoseResult:
    image: Image.Image          # RGB skeleton on black at the requested size
    keypoints: np.ndarray       # (18, 3) OpenPose/COCO order: x, y in output pixels, confidence (0 = missing)
    backend: str
    people: int = 0

    @property
    def found(self) -> bool:
        return bool(self.people > 0 and np.any(self.keypoints[:, 2] > 0))


def draw_openpose(people: np.ndarray, width: int, height: int) -> np.ndarray:
    """Draw (P, 18, 3) keypoints with x, y normalised to 0..1 (conf 0 = missing) on black RGB."""
    canvas = np.zeros((height, width, 3), np.uint8)
    stick = 4
    for person in np.asarray(people, dtype=np.float64).reshape(-1, 18, 3):
        for (a, b), colour in zip(LIMBS, COLOURS):
            p, q = person[a - 1], person[b - 1]
            if p[2] <= 0 or q[2] <= 0:
                continue
            ys = np.array([p[0], q[0]]) * float(width)
            xs = np.array([p[1], q[1]]) * float(height)
            mx, my = np.mean(xs), np.mean(ys)
            length = ((xs[0] - xs[1]) ** 2 + (ys[0] - ys[1]) ** 2) ** 0.5
            angle = math.degrees(math.atan2(xs[0] - xs[1], ys[0] - ys[1]))
            poly = cv2.ellipse2Poly((int(my), int(mx)), (int(length / 2), stick), int(angle), 0, 360, 1)
            cv2.fillConvexPoly(canvas, poly, [int(float(c) * 0.6) for c in colour])
        for kp, colour in zip(person, COLOURS):
            if kp[2] <= 0:
                continue
            cv2.circle(canvas, (int(kp[0] * width), int(kp[1] * height)), 4, colour, thickness=-1)
    return canvas


def find_weights(models_dir: Path) -> dict[str, list[Path]]:
    root = Path(models_dir)
    found: dict[str, list[Path]] = {"dwpose": [], "openpose": []}
    dw = [root / DWPOSE_FILES[0] / f for f in DWPOSE_FILES[1]]
    if all(p.is_file() for p in dw):
        found["dwpose"] = dw
    op = root.joinpath(*OPENPOSE_FILE)
    if op.is_file():
        found["openpose"] = [op]
    from studio.runtime import bundled_models
    from studio.vision import mp_models

    found["blazepose"] = []
    if bundled_models.all_present(root):
        found["blazepose"] = [bundled_models.model_path(root, mp_models.POSE_FILE)]
    return found


def _primary(people: np.ndarray) -> np.ndarray:
    """The person with the largest keypoint extent (ties: most keypoints)."""
    best, best_key = np.zeros((18, 3), np.float64), (-1.0, -1)
    for person in people:
        vis = person[person[:, 2] > 0]
        if len(vis) == 0:
            continue
        extent = float((vis[:, 0].max() - vis[:, 0].min()) * (vis[:, 1].max() - vis[:, 1].min()))
        key = (extent, len(vis))
        if key > best_key:
            best, best_key = person, key
    return best


def _resize_short(rgb: np.ndarray, short: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    k = float(short) / min(h, w)
    if abs(k - 1.0) < 1e-3:
        return rgb
    size = (max(int(round(w * k)), 1), max(int(round(h * k)), 1))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LANCZOS4)


# -- DWPose with onnxruntime ---------------------------------------------------------------
def _nms(boxes: np.ndarray, scores: np.ndarray, thr: float) -> list[int]:
    order = np.argsort(-scores)
    areas = (boxes[:, 2] - boxes[:, 0]).clip(0) * (boxes[:, 3] - boxes[:, 1]).clip(0)
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        xx0 = np.maximum(boxes[i, 0], boxes[order[1:], 0])
        yy0 = np.maximum(boxes[i, 1], boxes[order[1:], 1])
        xx1 = np.minimum(boxes[i, 2], boxes[order[1:], 2])
        yy1 = np.minimum(boxes[i, 3], boxes[order[1:], 3])
        inter = (xx1 - xx0).clip(0) * (yy1 - yy0).clip(0)
        iou = inter / (areas[i] + areas[order[1:]] - inter + 1e-9)
        order = order[1:][iou <= thr]
    return keep


def _yolox_people(session: Any, rgb: np.ndarray, score_thr: float = 0.3) -> np.ndarray:
    inp = session.get_inputs()[0]
    ih, iw = (int(v) if isinstance(v, int) and v > 0 else 640 for v in inp.shape[2:4])
    h, w = rgb.shape[:2]
    r = min(ih / h, iw / w)
    padded = np.full((ih, iw, 3), 114, np.uint8)
    nh, nw = int(h * r), int(w * r)
    padded[:nh, :nw] = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_LINEAR)
    blob = np.ascontiguousarray(padded.transpose(2, 0, 1)[None], dtype=np.float32)
    out = np.asarray(session.run(None, {inp.name: blob})[0], dtype=np.float32)[0]
    grids, strides = [], []
    for s in (8, 16, 32):
        hs, ws = ih // s, iw // s
        xv, yv = np.meshgrid(np.arange(ws), np.arange(hs))
        grids.append(np.stack((xv, yv), 2).reshape(-1, 2))
        strides.append(np.full((hs * ws, 1), s))
    grid, stride = np.concatenate(grids), np.concatenate(strides)
    if out.shape[0] != grid.shape[0]:
        raise ValueError(f"YOLOX output has {out.shape[0]} rows, expected {grid.shape[0]}")
    xy = (out[:, :2] + grid) * stride
    wh = np.exp(out[:, 2:4]) * stride
    scores = out[:, 4] * out[:, 5]  # objectness x "person" class
    boxes = np.concatenate([xy - wh / 2, xy + wh / 2], axis=1) / r
    sel = scores > score_thr
    boxes, scores = boxes[sel], scores[sel]
    if len(boxes) == 0:
        return np.zeros((0, 4), np.float32)
    return boxes[_nms(boxes, scores, 0.45)]


def _rtmpose(session: Any, rgb: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(P, 133, 3) whole-body keypoints (x, y in image pixels, score) for each box."""
    inp = session.get_inputs()[0]
    ih, iw = int(inp.shape[2]), int(inp.shape[3])
    mean, std = np.array([123.675, 116.28, 103.53]), np.array([58.395, 57.12, 57.375])
    results = []
    for x0, y0, x1, y1 in boxes:
        cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
        bw, bh = (x1 - x0) * 1.25, (y1 - y0) * 1.25
        aspect = iw / ih
        if bw > bh * aspect:
            bh = bw / aspect
        else:
            bw = bh * aspect
        sx, sy = iw / bw, ih / bh
        mat = np.array([[sx, 0, -(cx - bw / 2) * sx], [0, sy, -(cy - bh / 2) * sy]], np.float32)
        crop = cv2.warpAffine(rgb, mat, (iw, ih), flags=cv2.INTER_LINEAR)
        blob = ((crop - mean) / std).transpose(2, 0, 1)[None].astype(np.float32)
        simcc_x, simcc_y = session.run(None, {inp.name: blob})[:2]
        sx_ = np.asarray(simcc_x)[0]
        sy_ = np.asarray(simcc_y)[0]
        split_x, split_y = sx_.shape[-1] / iw, sy_.shape[-1] / ih
        px = sx_.argmax(-1) / split_x
        py = sy_.argmax(-1) / split_y
        score = np.minimum(sx_.max(-1), sy_.max(-1))
        kx = px / iw * bw + cx - bw / 2
        ky = py / ih * bh + cy - bh / 2
        results.append(np.stack([kx, ky, score], axis=-1))
    return np.asarray(results, dtype=np.float64).reshape(-1, sx_.shape[0] if results else 133, 3)


def wholebody_to_openpose(kpts: np.ndarray) -> np.ndarray:
    """(P, 133|17+, 3) mmpose COCO-wholebody -> (P, 18, 3) OpenPose order (neck from shoulders)."""
    kpts = np.asarray(kpts, dtype=np.float64)
    neck = kpts[:, [5, 6]].mean(axis=1)
    neck[:, 2] = np.where((kpts[:, 5, 2] > KEYPOINT_THRESHOLD) & (kpts[:, 6, 2] > KEYPOINT_THRESHOLD),
                          np.minimum(kpts[:, 5, 2], kpts[:, 6, 2]), 0.0)
    body = np.insert(kpts[:, :17], 17, neck, axis=1)
    mmpose_idx = [17, 6, 8, 10, 7, 9, 12, 14, 16, 13, 15, 2, 1, 4, 3]
    openpose_idx = [1, 2, 3, 4, 6, 7, 8, 9, 10, 12, 13, 14, 15, 16, 17]
    out = body.copy()
    out[:, openpose_idx] = body[:, mmpose_idx]
    out[:, :, 2] = np.where(out[:, :, 2] > KEYPOINT_THRESHOLD, out[:, :, 2], 0.0)
    return out


class PoseEstimator:
    """load from a folder -> `.to(device)` -> `__call__(image, width, height) -> PoseResult`."""

    def __init__(self, backend: str, weights: list[Path]) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown pose backend {backend!r}; choose from {BACKENDS}")
        self.backend = backend
        self.weights = [Path(p) for p in weights]
        self.device = "cpu"
        self._impl: Any = None
        self._lock = threading.Lock()

    @classmethod
    def from_folder(cls, models_dir: Path | str, prefer: str = "auto") -> "PoseEstimator | None":
        found = find_weights(Path(models_dir))
        order = BACKENDS if prefer == "auto" else (prefer,)
        for name in order:
            if found.get(name):
                return cls(name, found[name])
        return None

    @property
    def info(self) -> BackendInfo:
        lic, com = LICENCES[self.backend]
        return BackendInfo(self.backend, lic, com, tuple(str(p) for p in self.weights), self.device)

    def to(self, device: str) -> "PoseEstimator":
        with self._lock:
            if str(device) != self.device or self._impl is None:
                self.device = str(device)
                self._impl = self._load()
        return self

    def _load(self) -> Any:
        try:
            if self.backend == "blazepose":
                from studio.vision.mp_models import shared_kit

                kit = shared_kit(self.weights[0].parent.parent)
                kit.pose, kit.face_detector, kit.face_mesh  # noqa: B018 - load (and hash-check) now
                return kit
            if self.backend == "dwpose":
                import onnxruntime as ort

                providers = onnx_providers(self.device)
                return tuple(ort.InferenceSession(str(p), providers=providers) for p in self.weights)
            return self._load_openpose()
        except (RuntimeError, ValueError, OSError, KeyError) as exc:
            log.warning("pose backend %s failed to load: %s", self.backend, exc)
            raise WeightsError("vision.pose.load_failed", backend=self.backend, err=type(exc).__name__) from exc

    def _load_openpose(self) -> Any:
        from studio.runtime.compat import ensure_torchvision

        ensure_torchvision()
        import torch
        from controlnet_aux.open_pose import OpenposeDetector
        from controlnet_aux.open_pose.body import Body

        detector = OpenposeDetector(body_estimation=Body(str(self.weights[0])))
        device = self.device if (self.device.startswith("cuda") and torch.cuda.is_available()) else "cpu"
        detector.body_estimation.to(device)
        return detector

    def __call__(self, image: Image.Image | np.ndarray, width: int, height: int,
                 detect_resolution: int = 512) -> PoseResult:
        rgb = to_rgb_array(image)
        work = _resize_short(rgb, detect_resolution)
        h, w = work.shape[:2]
        with self._lock:
            if self._impl is None:
                self._impl = self._load()
            if self.backend == "dwpose":
                det, pose = self._impl
                boxes = _yolox_people(det, work)
                people = wholebody_to_openpose(_rtmpose(pose, work, boxes)) if len(boxes) else np.zeros((0, 18, 3))
            elif self.backend == "blazepose":
                people = self._run_blazepose(self._impl, work)
            else:
                people = self._run_openpose(self._impl, work)
        people = np.asarray(people, dtype=np.float64).reshape(-1, 18, 3)
        norm = people.copy()
        norm[:, :, 0] /= float(w)
        norm[:, :, 1] /= float(h)
        canvas = draw_openpose(norm, int(width), int(height))
        main = _primary(norm)
        keypoints = np.zeros((18, 3), np.float32)
        keypoints[:, 0] = main[:, 0] * width
        keypoints[:, 1] = main[:, 1] * height
        keypoints[:, 2] = main[:, 2]
        keypoints[keypoints[:, 2] <= 0, :2] = 0.0
        return PoseResult(Image.fromarray(canvas, "RGB"), keypoints, self.backend, people=len(people))

    @staticmethod
    def _run_blazepose(kit: Any, rgb: np.ndarray) -> np.ndarray:
        """Each person found by their face (BlazeFace + FaceMesh check): BlazePose on a crop below
        the face, then once more on the crop its own landmarks outline."""
        from studio.vision.mp_models import face_roi, person_roi
        from studio.vision.people import body_box

        h, w = rgb.shape[:2]
        people = []
        for d in kit.face_detector(rgb):
            _, flag = kit.face_mesh(rgb, face_roi(d.box, d.keypoints))
            if flag < 0.5:
                continue
            res = kit.pose(rgb, person_roi(body_box(d.box, (w, h), full=True)))
            seen = res.points[res.visibility >= 0.5]
            if res.presence >= 0.5 and len(seen) >= 4:
                lo, hi = seen.min(axis=0), seen.max(axis=0)
                again = kit.pose(rgb, person_roi((lo[0], lo[1], hi[0], hi[1]), 1.35))
                if again.presence >= res.presence:
                    res = again
            if res.presence < 0.5:
                continue
            people.append(blazepose_to_openpose(res.points, res.visibility))
        return np.asarray(people, np.float64).reshape(-1, 18, 3)

    @staticmethod
    def _run_openpose(detector: Any, rgb: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            candidate, subset = detector.body_estimation(np.ascontiguousarray(rgb[:, :, ::-1]))
        bodies = detector.body_estimation.format_body_result(candidate, subset)
        people = np.zeros((len(bodies), 18, 3), np.float64)
        for i, body in enumerate(bodies):
            for j, kp in enumerate(body.keypoints):
                if kp is not None:
                    people[i, j] = (kp.x, kp.y, max(float(kp.score), 1e-3))
        return people
