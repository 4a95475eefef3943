"""Face detection with four backends, best first, picked from what is present in models/.

1. InsightFace `FaceAnalysis` (buffalo_l, antelopev2) under models/insightface/models/<pack>/.
   Most accurate; the model packs are licensed for non-commercial research only.
2. MediaPipe BlazeFace + FaceMesh (Apache-2.0), installed with the studio under models/mediapipe/
   (`studio.runtime.bundled_models`): BlazeFace over the photo and over windows for small faces,
   each candidate confirmed by FaceMesh's own face flag; the mesh's face oval is the exact keep
   outline (`FaceBox.oval`).
3. YuNet (`cv2.FaceDetectorYN`) with its MIT onnx under models/yunet/. Safe commercially.
4. OpenCV Haar cascade (ships with opencv). The last resort: offline, no weights to fetch.

`FaceDetector.from_folder(models_dir).to(device)(image)` returns `list[FaceBox]`, largest first;
no face is `[]`, never an exception. Images are RGB (PIL or numpy); BGR only inside cv2 calls.
"""

from __future__ import annotations

import logging
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


INSIGHTFACE_PACKS: tuple[str, ...] = ("buffalo_l", "antelopev2")
BACKENDS: tuple[str, ...] = ("insightface", "mediapipe", "yunet", "haar")
MP_DETECT_SIDE = 1024   # BlazeFace runs on a copy no larger than this
MP_MAX_CANDIDATES = 24  # FaceMesh checks at most this many candidates (best first)
MESH_FLAG_MIN = 0.75  # FaceMesh's face probability a BlazeFace candidate needs
# FaceMesh landmark indices of the mouth corners (the person's right, then left)
MESH_MOUTH_R, MESH_MOUTH_L = 61, 291
HAAR_FILE = "haarcascade_frontalface_default.xml"
DETECT_MAX_SIDE = 640  # YuNet runs on a copy no larger than this; boxes are scaled back
HAAR_MAX_PIXELS = 480 * 480  # Haar is slow per pixel: it runs on a copy of at most this many pixels
# A second, differently trained detector confirms each Haar/YuNet candidate on its own crop:
# textures, a dog's chest or a hand that fool the first one are dropped (InsightFace is trusted).
VERIFY_CASCADE = "haarcascade_frontalface_alt2.xml"
VERIFY_SIDE = 160

LICENCES: dict[str, tuple[str, bool]] = {
    "insightface": ("InsightFace model pack: non-commercial research only", False),
    "mediapipe": ("Apache-2.0 (MediaPipe BlazeFace + FaceMesh)", True),
    "yunet": ("MIT", True),
    "haar": ("OpenCV Haar cascade (Intel License Agreement, BSD-style)", True),
}


@dataclass
class FaceBox:
    box: tuple[int, int, int, int]          # x0, y0, x1, y1 in pixels (x1, y1 exclusive)
    score: float                            # 0..1
    landmarks: np.ndarray | None = None     # (5, 2): right eye, left eye, nose, mouth R, mouth L
    backend: str = ""
    oval: np.ndarray | None = None          # (36, 2): the face outline (FaceMesh), when known

    @property
    def width(self) -> int:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]

    @property
    def area(self) -> int:
        return max(self.width, 0) * max(self.height, 0)

    @property
    def center(self) -> tuple[float, float]:
        return ((self.box[0] + self.box[2]) / 2.0, (self.box[1] + self.box[3]) / 2.0)


def _clip_box(x0: float, y0: float, x1: float, y1: float, w: int, h: int) -> tuple[int, int, int, int]:
    return (int(np.clip(round(x0), 0, w)), int(np.clip(round(y0), 0, h)),
            int(np.clip(round(x1), 0, w)), int(np.clip(round(y1), 0, h)))


def _sorted(faces: list[FaceBox]) -> list[FaceBox]:
    return sorted((f for f in faces if f.area > 0), key=lambda f: (-f.area, -f.score))


def _downscale(rgb: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    h, w = rgb.shape[:2]
    s = min(1.0, max_side / float(max(h, w)))
    if s >= 1.0:
        return rgb, 1.0
    small = cv2.resize(rgb, (max(int(round(w * s)), 1), max(int(round(h * s)), 1)), interpolation=cv2.INTER_AREA)
    return small, s


def _side_for_pixels(rgb: np.ndarray, budget: int) -> int:
    h, w = rgb.shape[:2]
    k = min(1.0, (budget / float(h * w)) ** 0.5)
    return max(int(max(h, w) * k), 1)


GREY_MIN_VOTES = 7     # Haar neighbour votes a candidate needs in a photo without colour


def _skin_fraction(rgb: np.ndarray) -> float:
    """Share of pixels in the classic YCrCb skin range (Cr 133..173, Cb 77..127)."""
    if rgb.size == 0:
        return 0.0
    ycc = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)
    cr, cb = ycc[..., 1], ycc[..., 2]
    return float(np.mean((cr >= 133) & (cr <= 173) & (cb >= 77) & (cb <= 127)))


def confirm_face(rgb: np.ndarray, box: tuple[int, int, int, int], checker: Any) -> bool:
    """Does the second detector also see a face in (and around) `box`?"""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    if w < 8 or h < 8 or not 0.6 <= w / float(h) <= 1.6:
        return False
    m = int(0.35 * w)
    H, W = rgb.shape[:2]
    crop = rgb[max(0, y0 - m):min(H, y1 + m), max(0, x0 - m):min(W, x1 + m)]
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    s = VERIFY_SIDE / float(max(grey.shape))
    grey = cv2.equalizeHist(cv2.resize(grey, (max(1, int(grey.shape[1] * s)), max(1, int(grey.shape[0] * s)))))
    side = max(8, int(w * s * 0.5))
    found = checker.detectMultiScale(grey, scaleFactor=1.05, minNeighbors=3, minSize=(side, side))
    return len(found) > 0


def find_weights(models_dir: Path) -> dict[str, list[Path]]:
    """Weights present per backend (Haar's cascade ships with opencv)."""
    found: dict[str, list[Path]] = {"insightface": [], "mediapipe": [], "yunet": [], "haar": []}
    packs_root = Path(models_dir) / "insightface" / "models"
    if packs_root.is_dir():
        named = [packs_root / p for p in INSIGHTFACE_PACKS]
        others = sorted(d for d in packs_root.iterdir() if d.is_dir() and d not in named)
        for pack in named + others:
            if pack.is_dir() and any(pack.glob("*.onnx")):
                found["insightface"].append(pack)
    from studio.runtime import bundled_models
    from studio.vision import mp_models

    if bundled_models.all_present(models_dir):
        found["mediapipe"] = [bundled_models.model_path(models_dir, mp_models.FACE_DETECTOR_FILE),
                              bundled_models.model_path(models_dir, mp_models.FACE_MESH_FILE)]
    yunet_dir = Path(models_dir) / "yunet"
    if yunet_dir.is_dir():
        found["yunet"] = sorted(yunet_dir.glob("*.onnx"), reverse=True)  # newest date first
    haar = Path(cv2.data.haarcascades) / HAAR_FILE
    if haar.is_file():
        found["haar"] = [haar]
    return found


class FaceDetector:
    """load from a folder -> `.to(device)` -> `__call__(image) -> list[FaceBox]`."""

    def __init__(self, backend: str, weights: Path, *, det_size: tuple[int, int] = (640, 640),
                 score_threshold: float = 0.5, verify: bool = True) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown face backend {backend!r}; choose from {BACKENDS}")
        self.backend = backend
        self.weights = Path(weights)
        self.det_size = det_size
        self.score_threshold = score_threshold
        self.verify = verify
        self._checker: Any = None
        self.device = "cpu"
        self._impl: Any = None
        self._lock = threading.Lock()

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def from_folder(cls, models_dir: Path | str, prefer: str = "auto", **kwargs: Any) -> "FaceDetector":
        """Pick the best backend present (or `prefer`, which must be present)."""
        found = find_weights(Path(models_dir))
        if prefer != "auto":
            if prefer not in BACKENDS:
                raise ValueError(f"unknown face backend {prefer!r}; choose from {BACKENDS}")
            if not found[prefer]:
                raise WeightsError("vision.faces.backend_missing", backend=prefer, where=str(models_dir))
            return cls(prefer, found[prefer][0], **kwargs)
        for name in BACKENDS:
            if found[name]:
                return cls(name, found[name][0], **kwargs)
        raise WeightsError("vision.faces.backend_missing", backend="haar", where=cv2.data.haarcascades)

    @property
    def info(self) -> BackendInfo:
        licence, commercial = LICENCES[self.backend]
        return BackendInfo(name=self.backend, licence=licence, commercial_use=commercial,
                           weights=(str(self.weights),), device=self.device)

    def to(self, device: str) -> "FaceDetector":
        device = str(device)
        with self._lock:
            if device != self.device or self._impl is None:
                self.device = device
                self._impl = None
                self._impl = self._load()
        return self

    def _load(self) -> Any:
        try:
            if self.backend == "insightface":
                return self._load_insightface()
            if self.backend == "mediapipe":
                from studio.vision.mp_models import shared_kit

                kit = shared_kit(self.weights.parent.parent)
                kit.face_detector, kit.face_mesh  # noqa: B018 - load (and hash-check) both now
                return kit
            if self.backend == "yunet":
                return cv2.FaceDetectorYN.create(str(self.weights), "", (320, 320),
                                                 self.score_threshold, 0.3, 50)
            cascade = cv2.CascadeClassifier(str(self.weights))
            if cascade.empty():
                raise WeightsError("vision.faces.load_failed", backend="haar", err=str(self.weights))
            return cascade
        except WeightsError:
            raise
        except (cv2.error, RuntimeError, ValueError, OSError, AssertionError) as exc:
            log.warning("face backend %s failed to load from %s: %s", self.backend, self.weights, exc)
            raise WeightsError("vision.faces.load_failed", backend=self.backend, err=type(exc).__name__) from exc

    def _load_insightface(self) -> Any:
        from insightface.app import FaceAnalysis

        providers = onnx_providers(self.device)
        # A directory path as `name` skips insightface's download helper entirely.
        app = FaceAnalysis(name=str(self.weights.resolve()), root=str(self.weights.parent.parent),
                           allowed_modules=["detection"], providers=providers)
        ctx_id = 0 if "CUDAExecutionProvider" in providers else -1
        app.prepare(ctx_id=ctx_id, det_thresh=self.score_threshold, det_size=self.det_size)
        return app

    # -- inference -------------------------------------------------------------------------
    def __call__(self, image: Image.Image | np.ndarray) -> list[FaceBox]:
        rgb = to_rgb_array(image)
        with self._lock:
            if self._impl is None:
                self._impl = self._load()
            impl = self._impl
            if self.backend == "insightface":
                return self._run_insightface(impl, rgb)
            if self.backend == "mediapipe":
                return self._run_mediapipe(impl, rgb)
            found = self._run_yunet(impl, rgb) if self.backend == "yunet" else self._run_haar(impl, rgb)
            return self._confirmed(rgb, found) if self.verify else found

    def _confirmed(self, rgb: np.ndarray, faces: list[FaceBox]) -> list[FaceBox]:
        if self._checker is None:
            checker = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / VERIFY_CASCADE))
            if checker.empty():
                log.warning("face check cascade %s missing: faces are not double-checked", VERIFY_CASCADE)
                return faces
            self._checker = checker
        kept = [f for f in faces if confirm_face(rgb, f.box, self._checker)]
        if len(kept) < len(faces):
            log.info("dropped %d face candidate(s) the second detector did not confirm", len(faces) - len(kept))
        return kept

    detect = __call__

    def _run_insightface(self, app: Any, rgb: np.ndarray) -> list[FaceBox]:
        h, w = rgb.shape[:2]
        faces = app.get(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        out: list[FaceBox] = []
        for f in faces:
            x0, y0, x1, y1 = (float(v) for v in f.bbox[:4])
            kps = None if f.kps is None else np.asarray(f.kps, dtype=np.float32).reshape(-1, 2)[:5]
            out.append(FaceBox(_clip_box(x0, y0, x1, y1, w, h), float(f.det_score), kps, "insightface"))
        return _sorted(out)

    def _run_mediapipe(self, kit: Any, rgb: np.ndarray, min_face: int = 32) -> list[FaceBox]:
        from studio.vision.mp_models import FACE_OVAL, face_roi

        h, w = rgb.shape[:2]
        out: list[FaceBox] = []
        # the detector runs on a copy of at most MP_DETECT_SIDE px (a 32 px face in a 12 MP photo
        # is not a face an ad is made of); FaceMesh then reads each face from the full photo
        small, s = _downscale(rgb, MP_DETECT_SIDE)
        # small windows are searched only where the selfie model sees people - unless it sees
        # nobody at all (grey photos, people far away): then everywhere
        people = kit.selfie(small)
        if float((people > 0.5).mean()) < 0.005:
            people = None
        dets = kit.face_detector(small, min_face=max(24, int(min_face * s)), min_score=self.score_threshold,
                                 people=people)
        for d in dets:
            d.box, d.keypoints = d.box / s, d.keypoints / s
        for d in dets[:MP_MAX_CANDIDATES]:
            pts, flag = kit.face_mesh(rgb, face_roi(d.box, d.keypoints))
            if flag < MESH_FLAG_MIN:
                log.debug("face candidate %s dropped: FaceMesh face flag %.2f", d.box.astype(int).tolist(), flag)
                continue
            oval = pts[list(FACE_OVAL)].astype(np.float32)
            # the box: the detector's, grown to hold the mesh's outline (chin and forehead)
            x0, y0 = min(d.box[0], oval[:, 0].min()), min(d.box[1], oval[:, 1].min())
            x1, y1 = max(d.box[2], oval[:, 0].max()), max(d.box[3], oval[:, 1].max())
            lm = np.array([d.keypoints[0], d.keypoints[1], d.keypoints[2], pts[MESH_MOUTH_R], pts[MESH_MOUTH_L]],
                          np.float32)
            out.append(FaceBox(_clip_box(x0, y0, x1, y1, w, h), float(min(d.score, 1.0)), lm, "mediapipe", oval))
        return _sorted(out)

    def _run_yunet(self, det: Any, rgb: np.ndarray) -> list[FaceBox]:
        h, w = rgb.shape[:2]
        small, s = _downscale(rgb, DETECT_MAX_SIDE)
        det.setInputSize((small.shape[1], small.shape[0]))
        _, rows = det.detect(cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
        out: list[FaceBox] = []
        if rows is None:
            return out
        for r in np.asarray(rows, dtype=np.float32):
            x, y, bw, bh = (float(v) / s for v in r[:4])
            kps = (r[4:14].reshape(5, 2) / s).astype(np.float32)
            out.append(FaceBox(_clip_box(x, y, x + bw, y + bh, w, h), float(r[14]), kps, "yunet"))
        return _sorted(out)

    def _run_haar(self, cascade: Any, rgb: np.ndarray) -> list[FaceBox]:
        h, w = rgb.shape[:2]
        small, s = _downscale(rgb, _side_for_pixels(rgb, HAAR_MAX_PIXELS))
        gray = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY))
        min_side = max(24, int(0.06 * min(gray.shape[:2])))
        rects, votes = cascade.detectMultiScale2(gray, scaleFactor=1.15, minNeighbors=4,
                                                 minSize=(min_side, min_side))
        out: list[FaceBox] = []
        colour = not (np.array_equal(small[..., 0], small[..., 1]) and np.array_equal(small[..., 1], small[..., 2]))
        for (x, y, bw, bh), n in zip(np.asarray(rects).reshape(-1, 4), np.asarray(votes).reshape(-1)):
            if colour:
                skin = _skin_fraction(small[y:y + bh, x:x + bw])
                # Haar's false positives (textures, objects) are weakly voted and not skin-coloured
                if skin < 0.35 or (n < 10 and skin < 0.6):
                    log.debug("haar candidate rejected: votes %d, skin %.2f", n, skin)
                    continue
            elif n < GREY_MIN_VOTES:
                # no colour to test for skin: a weakly voted candidate is a hand or a texture
                # (basketball1.png: real face 8 votes; a raised hand 5; greyscale messi5: a leg 6)
                log.debug("haar candidate in a grey photo rejected: votes %d", n)
                continue
            score = float(n) / (float(n) + 10.0)  # neighbour votes squashed to 0..1
            out.append(FaceBox(_clip_box(x / s, y / s, (x + bw) / s, (y + bh) / s, w, h), score, None, "haar"))
        return _sorted(out)
