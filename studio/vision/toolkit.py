"""`VisionKit`: one object the workflows use for faces, masks, pose, cut-outs and paste-back.

Built from `Settings` (no model loads); each capability's backend is picked from what is present
under `settings.models_dir` and loaded on first use. `report()` says, without loading anything,
which backend each capability will use, under which licence, and which weights are present.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from studio.i18n import t
from studio.vision.base import BackendInfo, default_device, onnx_providers, to_rgb_array  # noqa: F401  (handed on)

if TYPE_CHECKING:
    from studio.config import Settings
    from studio.vision.faces import FaceBox, FaceDetector
    from studio.vision.matting import Matter, MatteResult
    from studio.vision.pose import PoseEstimator, PoseResult

log = logging.getLogger(__name__)


class VisionKit:
    """Faces, masks, pose, matting and compositing behind one lazily-built object."""

    def __init__(self, models_dir: Path | str, *, device: str | None = None, lang: str = "ko",
                 face_backend: str = "auto", commercial_only: bool = False) -> None:
        self.models_dir = Path(models_dir)
        # 'commercial use only' (Settings.commercial_only): auto never picks a non-commercial
        # backend (InsightFace, OpenPose), and a non-commercial cut-out model asked for by name is refused
        self.commercial_only = commercial_only
        self.device = device
        self.lang = lang
        self.face_backend = face_backend
        self._faces: FaceDetector | None = None
        self._pose: PoseEstimator | None = None
        self._pose_checked = False
        self._matter: Matter | None = None
        self._mp: Any = None
        self._mp_checked = False
        self._lock = threading.RLock()

    @classmethod
    def from_settings(cls, settings: "Settings") -> "VisionKit":
        return cls(settings.models_dir, lang=settings.lang,
                   commercial_only=bool(getattr(settings, "commercial_only", True)))

    def _device(self) -> str:
        if self.device is None:
            self.device = default_device()
        return self.device

    # -- lazy members ----------------------------------------------------------------------
    @property
    def faces(self) -> "FaceDetector":
        with self._lock:
            if self._faces is None:
                from studio.vision.faces import FaceDetector

                prefer = self.face_backend
                if self.commercial_only and prefer == "auto":
                    from studio.vision.faces import BACKENDS, LICENCES, find_weights

                    found = find_weights(self.models_dir)
                    prefer = next((b for b in BACKENDS if LICENCES[b][1] and (found.get(b) or b == "haar")), "haar")
                self._faces = FaceDetector.from_folder(self.models_dir, prefer=prefer).to(self._device())
                log.info("face detector: %s", self._faces.backend)
            return self._faces

    @property
    def pose_estimator(self) -> "PoseEstimator | None":
        with self._lock:
            if not self._pose_checked:
                from studio.vision.pose import PoseEstimator

                self._pose_checked = True
                est = PoseEstimator.from_folder(self.models_dir)
                if est is not None and self.commercial_only and not est.info.commercial_use:
                    est = PoseEstimator.from_folder(self.models_dir, prefer="dwpose")
                self._pose = None if est is None else est.to(self._device())
                log.info("pose estimator: %s", "none" if self._pose is None else self._pose.backend)
            return self._pose

    @property
    def matter(self) -> "Matter":
        with self._lock:
            if self._matter is None:
                from studio.vision.matting import Matter

                self._matter = Matter.from_folder(self.models_dir).to(self._device())
            return self._matter

    @property
    def mediapipe(self) -> Any:
        """The learned models installed with the studio (`mp_models.MediaPipeKit`), or None when
        they are missing or fail their hash check (then the Haar/GrabCut path is used)."""
        with self._lock:
            if not self._mp_checked:
                from studio.runtime import bundled_models
                from studio.vision.mp_models import shared_kit

                self._mp_checked = True
                if bundled_models.all_present(self.models_dir):
                    self._mp = shared_kit(self.models_dir)
                else:
                    log.info("bundled MediaPipe models missing: learned person masks are off")
            return self._mp

    # -- capabilities ----------------------------------------------------------------------
    def person_mask(self, img: Image.Image | np.ndarray, face: "FaceBox", faces: list | None = None) -> Any:
        """The picked person's mask from the learned models (`people.PersonMask`), or None when
        they are not installed (the caller falls back to the GrabCut path)."""
        kit = self.mediapipe
        if kit is None:
            return None
        from studio.errors import WeightsError
        from studio.vision.people import person_mask

        try:
            return person_mask(kit, to_rgb_array(img), face, faces)
        except WeightsError as exc:
            log.warning("learned person mask unavailable: %s", exc)
            with self._lock:
                self._mp = None
            return None

    def hands(self, img: Image.Image | np.ndarray) -> list:
        """Hands with 21 landmarks each (`hands.Hand`); [] without the bundled models."""
        from studio.vision.hands import find_hands

        return find_hands(to_rgb_array(img), self.models_dir, kit=self.mediapipe)

    def detect_faces(self, img: Image.Image | np.ndarray) -> list["FaceBox"]:
        return self.faces(img)

    def hands(self, img: Image.Image | np.ndarray) -> list:
        """Hands with their 21 landmarks (`studio.vision.hands`; [] without the MediaPipe models)."""
        from studio.vision.hands import find_hands

        return find_hands(to_rgb_array(img), self.models_dir)

    def face_keep_mask(self, img_size: tuple[int, int], face: "FaceBox", include_hair: bool = True,
                       include_neck: bool = False, dilate_px: int | None = None,
                       feather_px: float | None = None) -> np.ndarray:
        """255 = keep the owner's face. Grown by `dilate_px` then feathered by `feather_px`
        (defaults scale with the face: 4 % and 6 % of its width). Invert it for the engine."""
        from studio.vision import masks

        size = max(face.width, face.height, 1)
        d = int(round(size * 0.04)) if dilate_px is None else int(dilate_px)
        f = max(3.0, size * 0.06) if feather_px is None else float(feather_px)
        keep = masks.face_region_mask(img_size, face, include_hair=include_hair, include_neck=include_neck)
        return masks.feather(masks.dilate(keep, d), f)

    def face_regenerate_mask(self, img_size: tuple[int, int], face: "FaceBox", **kwargs: Any) -> np.ndarray:
        """The engine's mask (255 = regenerate): the inverse of `face_keep_mask`."""
        from studio.vision import masks

        return masks.invert(self.face_keep_mask(img_size, face, **kwargs))

    def pose(self, img: Image.Image | np.ndarray, width: int, height: int) -> "PoseResult | None":
        """Skeleton guide at (width, height), or None without pose weights (see `pose_note`)."""
        est = self.pose_estimator
        if est is None:
            log.info("no pose weights: the workflow runs without the ControlNet")
            return None
        return est(img, width, height)

    def pose_note(self, result: "PoseResult | None") -> str:
        """What to tell the owner about the pose guide."""
        if self.pose_estimator is None:
            return t("vision.pose.none", self.lang)
        if result is None or not result.found:
            return t("vision.pose.not_found", self.lang)
        return t("vision.pose.ready", self.lang, backend=result.backend)

    def cutout(self, image: Image.Image | np.ndarray, box: tuple[int, int, int, int] | None = None,
               alpha: np.ndarray | None = None, prefer: str = "auto",
               subject: str = "product", strokes: np.ndarray | None = None) -> "MatteResult":
        if self.commercial_only and alpha is None and prefer not in ("auto", "alpha", "grabcut"):
            from studio.errors import InputError
            from studio.vision.matting import ALIASES, licences

            name = ALIASES.get(prefer, prefer)  # a named model (or a custom .onnx: licence unknown)
            lic, com = licences().get(name, ("licence unknown", False))
            if not com:
                raise InputError("vision.noncommercial", backend=name, licence=lic)
        return self.matter(image, box=box, alpha=alpha, prefer=prefer, subject=subject, strokes=strokes)

    def paste_back(self, generated: Image.Image, original: Image.Image, keep_mask: np.ndarray,
                   feather_px: float = 6.0, seamless: bool = False, color_match: bool = False) -> Image.Image:
        from studio.vision.composite import paste_back

        return paste_back(generated, original, keep_mask, feather_px=feather_px, seamless=seamless,
                          color_match=color_match)

    def add_contact_shadow(self, image: Image.Image, subject_mask: np.ndarray, strength: float = 0.5) -> Image.Image:
        from studio.vision.composite import add_contact_shadow

        return add_contact_shadow(image, subject_mask, strength)

    # -- report ----------------------------------------------------------------------------
    def report(self) -> dict[str, dict]:
        """Per capability: active backend, licence, commercial_use, present weights. Loads nothing."""
        from studio.vision import faces as faces_mod
        from studio.vision import matting as matting_mod
        from studio.vision import pose as pose_mod

        out: dict[str, dict] = {}
        found = faces_mod.find_weights(self.models_dir)
        face_backend = next((b for b in faces_mod.BACKENDS if found[b]), "haar") \
            if self.face_backend == "auto" else self.face_backend
        lic, com = faces_mod.LICENCES[face_backend]
        out["faces"] = {"backend": face_backend, "licence": lic, "commercial_use": com,
                        "weights": {b: [str(p) for p in ps] for b, ps in found.items()},
                        "available": [b for b in faces_mod.BACKENDS if found[b]], "note": ""}
        if not com:
            out["faces"]["note"] = t("vision.noncommercial", self.lang, backend=face_backend, licence=lic)

        pose_found = pose_mod.find_weights(self.models_dir)
        pose_backend = next((b for b in pose_mod.BACKENDS if pose_found[b]), None)
        if pose_backend is None:
            out["pose"] = {"backend": "none", "licence": "", "commercial_use": True,
                           "weights": {b: [] for b in pose_mod.BACKENDS}, "available": [],
                           "note": t("vision.pose.none", self.lang)}
        else:
            lic, com = pose_mod.LICENCES[pose_backend]
            out["pose"] = {"backend": pose_backend, "licence": lic, "commercial_use": com,
                           "weights": {b: [str(p) for p in ps] for b, ps in pose_found.items()},
                           "available": [b for b in pose_mod.BACKENDS if pose_found[b]],
                           "note": "" if com else t("vision.noncommercial", self.lang, backend=pose_backend, licence=lic)}

        mat_found = matting_mod.find_weights(self.models_dir)
        mat_backend = matting_mod.auto_choice(mat_found, "product")
        mat_licences = matting_mod.licences()
        lic, com = mat_licences[mat_backend]
        out["matting"] = {"backend": mat_backend, "licence": lic, "commercial_use": com,
                          "weights": {k: str(v) for k, v in mat_found.items()},
                          "available": [*mat_found, "grabcut"],
                          "licences": {k: {"licence": v[0], "commercial_use": v[1]}
                                       for k, v in mat_licences.items()},
                          "note": ""}
        from studio.runtime import bundled_models

        mp_ok = bundled_models.all_present(self.models_dir)
        out["people"] = {"backend": "mediapipe-selfie" if mp_ok else "grabcut",
                         "licence": "Apache-2.0 (MediaPipe)" if mp_ok else "Apache-2.0 (OpenCV)",
                         "commercial_use": True, "weights": {}, "available": ["mediapipe-selfie", "grabcut"] if mp_ok
                         else ["grabcut"], "note": "" if mp_ok else t("bundled.missing", self.lang, file="mediapipe")}
        out["compositing"] = {"backend": "opencv", "licence": "Apache-2.0 (OpenCV)", "commercial_use": True,
                              "weights": {}, "available": ["alpha", "poisson"], "note": ""}
        return out
