"""Cut-outs: rembg sessions from models/rembg, an offline GrabCut fallback, or an uploaded alpha.

- rembg: the models, their files and licences are the catalogue's rows (presets/models.json,
  read by studio.runtime.rembg_models, which also downloads them). A named model is used only
  when its file is already under models/rembg, and its session is opened on that path explicitly
  (nothing process-wide changes; rembg never downloads); a custom onnx must lie inside that
  folder. bria-rmbg (RMBG-2.0) is non-commercial: used only when asked for by name.
- GrabCut (no weights): seeded from a box, run at reduced resolution; the mask is then refined
  back at full size: a guided filter snaps the upsampled edge to the photo (soft, matte-like).
- An uploaded RGBA image (or an explicit alpha) is used directly.

`Matter.from_folder(models_dir).to(device)(image, box, alpha, prefer, subject) -> MatteResult`,
mask uint8 H x W, 255 = subject.
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

from studio.errors import InputError, WeightsError
from studio.vision import masks
from studio.vision.base import onnx_providers, to_rgb_array

log = logging.getLogger(__name__)


REMBG_DIR = "rembg"
# The rembg models themselves (file, folder, licence) are the catalogue's: studio.runtime.rembg_models.
ALIASES: dict[str, str] = {"birefnet": "birefnet-general", "birefnet-lite": "birefnet-general-lite", "isnet": "isnet-general-use",
                           "human": "u2net_human_seg", "bria": "bria-rmbg"}
OTHER_LICENCES: dict[str, tuple[str, bool]] = {
    "custom": ("custom onnx: licence unknown (check it before commercial use)", False),
    "grabcut": ("OpenCV GrabCut (Apache-2.0)", True),
    "alpha": ("uploaded transparency (the owner's own file)", True),
}


def licences(presets_dir: Path | str | None = None) -> dict[str, tuple[str, bool]]:
    """backend -> (licence, commercial use): the catalogue's rembg rows, then GrabCut, alpha, custom."""
    from studio.runtime.rembg_models import catalogue

    return {**{k: (m.licence, m.commercial_use) for k, m in catalogue(presets_dir).items()}, **OTHER_LICENCES}


AUTO_ORDER: dict[str, tuple[str, ...]] = {
    "product": ("birefnet-general", "birefnet-general-lite", "isnet-general-use", "u2net"),
    "person": ("u2net_human_seg", "birefnet-general", "birefnet-general-lite", "isnet-general-use", "u2net"),
}
GRABCUT_WORK_SIDE = 320


@dataclass
class MatteResult:
    mask: np.ndarray          # uint8 H x W, 255 = subject
    backend: str
    licence: str
    commercial_use: bool
    note: str = ""            # message key when something fell back

    @property
    def coverage(self) -> float:
        return masks.coverage(self.mask)

    def rgba(self, image: Image.Image | np.ndarray) -> Image.Image:
        rgb = to_rgb_array(image)
        return Image.fromarray(np.dstack([rgb, self.mask]), "RGBA")


def find_weights(models_dir: Path, presets_dir: Path | str | None = None) -> dict[str, Path]:
    """rembg models present: models/rembg/models/<name>/<name>.onnx (or rembg's flat models/rembg/<name>.onnx)."""
    from studio.runtime.rembg_models import find_all

    return find_all(models_dir, presets_dir)


def auto_choice(found: dict[str, Path], subject: str) -> str:
    for name in AUTO_ORDER.get(subject, AUTO_ORDER["product"]):
        if name in found:
            return name
    return "grabcut"


def _alpha_of(image: Image.Image | np.ndarray) -> np.ndarray | None:
    """The alpha channel of an RGBA upload when it holds real transparency."""
    if isinstance(image, Image.Image):
        if image.mode not in ("RGBA", "LA", "PA") and "transparency" not in image.info:
            return None
        a = np.asarray(image.convert("RGBA"))[:, :, 3]
    else:
        arr = np.asarray(image)
        if arr.ndim != 3 or arr.shape[2] != 4:
            return None
        a = arr[:, :, 3].astype(np.uint8)
    if int(a.min()) >= 250:  # fully opaque: no cut-out in it
        return None
    return np.ascontiguousarray(a, dtype=np.uint8)


def _clip_box(box: tuple[int, int, int, int] | None, w: int, h: int) -> tuple[int, int, int, int]:
    if box is None:
        mx, my = max(int(w * 0.04), 2), max(int(h * 0.04), 2)
        return mx, my, w - mx, h - my
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    x0, x1 = sorted((x0, x1))
    y0, y1 = sorted((y0, y1))
    x0, y0 = max(x0, 1), max(y0, 1)
    x1, y1 = min(x1, w - 1), min(y1, h - 1)
    if x1 - x0 < 8 or y1 - y0 < 8:
        raise InputError("vision.matting.bad_box", box=str(box))
    return x0, y0, x1, y1


# touch-up brush strokes: uint8 H x W, one value per pixel (the owner's keep / remove paint)
STROKE_NONE, STROKE_KEEP, STROKE_REMOVE = 0, 1, 2


def check_strokes(strokes: np.ndarray | None, size: tuple[int, int]) -> np.ndarray | None:
    """The strokes at the photo's size (nearest-neighbour), or None when nothing was painted."""
    if strokes is None:
        return None
    s = np.asarray(strokes)
    if s.ndim != 2:
        raise InputError("vision.matting.bad_strokes", shape=str(s.shape))
    w, h = size
    if s.shape != (h, w):
        s = cv2.resize(s.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
    s = s.astype(np.uint8)
    if not ((s == STROKE_KEEP) | (s == STROKE_REMOVE)).any():
        return None
    return s


def strokes_box(strokes: np.ndarray | None) -> tuple[int, int, int, int] | None:
    """The box around the keep strokes (a brush without a box still says where the product is)."""
    if strokes is None:
        return None
    ys, xs = np.nonzero(strokes == STROKE_KEEP)
    if ys.size == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def strokes_from_image(image: Image.Image | np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray | None:
    """Brush strokes from a painted picture (the headless `--strokes` PNG, the tabs' brush layer):
    GREEN paint = keep, RED paint = remove; anything else (transparent, white, black, grey, the
    photo itself) = no stroke. A pixel is green when its green channel is at least 128 and above
    both others by 64 (red likewise); with an alpha channel, only pixels at least half opaque
    count. Returns STROKE_* per pixel at `size` (w, h), or None when nothing was painted."""
    arr = np.asarray(image.convert("RGBA") if isinstance(image, Image.Image) else image)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise InputError("vision.matting.bad_strokes", shape=str(arr.shape))
    rgb = arr[..., :3].astype(np.int16)
    opaque = arr[..., 3] >= 128 if arr.shape[2] == 4 else np.ones(arr.shape[:2], bool)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    keep = opaque & (g >= 128) & (g - r >= 64) & (g - b >= 64)
    remove = opaque & (r >= 128) & (r - g >= 64) & (r - b >= 64)
    out = np.zeros(arr.shape[:2], np.uint8)
    out[keep] = STROKE_KEEP
    out[remove] = STROKE_REMOVE
    return check_strokes(out, size or (arr.shape[1], arr.shape[0]))


def apply_strokes(mask: np.ndarray, strokes: np.ndarray | None, feather_px: float = 1.5) -> np.ndarray:
    """Any engine's cut-out edited by the owner's brush: keep strokes are forced in (and joined to
    the subject), remove strokes forced out, then the edge is re-feathered. The painted pixels
    themselves end exactly as painted."""
    s = check_strokes(strokes, (mask.shape[1], mask.shape[0]))
    if s is None:
        return mask
    out = np.array(mask, dtype=np.uint8, copy=True)
    keep, remove = s == STROKE_KEEP, s == STROKE_REMOVE
    painted = keep | remove
    out[keep] = 255
    out[remove] = 0
    if feather_px > 0:  # a soft edge again where the brush cut a new one (elsewhere untouched)
        r = int(np.ceil(feather_px)) + 1
        near = (masks.dilate(painted.astype(np.uint8) * 255, r) > 0) & ~painted
        soft = masks.feather(out, feather_px)
        out[near] = soft[near]
    return np.ascontiguousarray(out)


def grabcut_cutout(image: Image.Image | np.ndarray, box: tuple[int, int, int, int] | None = None,
                   work_side: int = GRABCUT_WORK_SIDE, iterations: int = 5, refine: bool = True,
                   strokes: np.ndarray | None = None) -> np.ndarray:
    """GrabCut seeded from `box` (x0, y0, x1, y1; default: the image less a 4 % border) at
    `work_side` pixels, refined back at full size. Returns uint8 H x W, 255 = subject.

    `strokes` (STROKE_KEEP / STROKE_REMOVE per pixel) become GrabCut's sure-foreground and
    sure-background seeds (GC_FGD / GC_BGD), and the painted pixels are forced afterwards."""
    rgb = to_rgb_array(image)
    h, w = rgb.shape[:2]
    strokes = check_strokes(strokes, (w, h))
    if box is None and strokes is not None:
        sb = strokes_box(strokes)
        if sb is not None:  # a brush alone: the keep strokes (grown) say where the subject is
            gx, gy = max(8, (sb[2] - sb[0]) // 2), max(8, (sb[3] - sb[1]) // 2)
            box = (sb[0] - gx, sb[1] - gy, sb[2] + gx, sb[3] + gy)
    x0, y0, x1, y1 = _clip_box(box, w, h)
    s = min(1.0, work_side / float(max(h, w)))
    sw, sh = max(int(round(w * s)), 8), max(int(round(h * s)), 8)
    small = cv2.cvtColor(cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2BGR)
    sx0, sy0 = max(int(x0 * s), 1), max(int(y0 * s), 1)
    sx1, sy1 = min(int(round(x1 * s)), sw - 1), min(int(round(y1 * s)), sh - 1)
    gc = np.zeros((sh, sw), np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)  # GrabCut's k-means start: same photo, same cut-out
    cv2.grabCut(small, gc, (sx0, sy0, sx1 - sx0, sy1 - sy0), bgd, fgd, iterations, cv2.GC_INIT_WITH_RECT)
    if strokes is not None:
        seeds = cv2.resize(strokes, (sw, sh), interpolation=cv2.INTER_NEAREST)
        gc[seeds == STROKE_KEEP] = cv2.GC_FGD
        gc[seeds == STROKE_REMOVE] = cv2.GC_BGD
        if (gc == cv2.GC_FGD).any() or (gc == cv2.GC_PR_FGD).any():
            cv2.grabCut(small, gc, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
    low = np.where((gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD), 255, 0).astype(np.uint8)
    # drop specks: keep the components that hold most of the subject
    low = _largest_components(low)
    up = cv2.resize(low, (w, h), interpolation=cv2.INTER_LINEAR)
    if not refine or s >= 1.0:
        out = masks.binarize(up)
    else:
        out = _refine_full_size(rgb, up, band=max(2, int(np.ceil(2.0 / s))))
    return apply_strokes(out, strokes, feather_px=0) if strokes is not None else out


CROP_ROOM = 0.25   # a cut in a crop around a small box: this much of the box's size around it


def grabcut_in_crop(image: Image.Image | np.ndarray, box: tuple[int, int, int, int],
                    room: float = CROP_ROOM) -> np.ndarray:
    """GrabCut on a crop of the photo around `box` (the box grown by `room` of its own size), so a
    small product is cut at a finer scale and against the background right around it (a second
    method to the whole-photo cut). Returns the full-size mask (uint8, 255 = subject)."""
    rgb = to_rgb_array(image)
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = _clip_box(box, w, h)
    bw, bh = x1 - x0, y1 - y0
    cx0, cy0 = max(0, int(x0 - room * bw)), max(0, int(y0 - room * bh))
    cx1, cy1 = min(w, int(round(x1 + room * bw))), min(h, int(round(y1 + room * bh)))
    crop = np.ascontiguousarray(rgb[cy0:cy1, cx0:cx1])
    out = np.zeros((h, w), np.uint8)
    out[cy0:cy1, cx0:cx1] = grabcut_cutout(crop, (x0 - cx0, y0 - cy0, x1 - cx0, y1 - cy0))
    return out


PROTRUSION_SIZE = 0.12        # protrusions: what an opening this share of the subject's width removes
PROTRUSION_MIN_DE = 40.0      # ... whose colour is this far from the body right next to it
PROTRUSION_OUTSIDE = 0.75     # ... and clearly closer to the surroundings than to the body


def trim_protrusions(image: Image.Image | np.ndarray, mask: np.ndarray, work_side: int = 400) -> np.ndarray:
    """Drop from a product cut-out the thin parts sticking out of it that belong to something
    else: a pencil's end under an apple. A protrusion (what an opening of `PROTRUSION_SIZE` of the
    subject's width removes) is dropped when its colour is far from the body next to it and
    closer to the surroundings; a cup's handle or a spoon in the cup's colours stays."""
    rgb = to_rgb_array(image)
    h, w = mask.shape[:2]
    _, (sw, sh), m = masks.work_copy(mask, work_side)
    small = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA)
    area = int(m.sum())
    if area < 100:
        return mask
    k = max(3, int(PROTRUSION_SIZE * np.sqrt(4 * area / np.pi))) | 1
    opened = cv2.morphologyEx(m, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    n, lab, st, _ = cv2.connectedComponentsWithStats(((m > 0) & (opened == 0)).astype(np.uint8), connectivity=8)
    if n <= 1:
        return mask
    lab_img = cv2.cvtColor(small, cv2.COLOR_RGB2LAB).astype(np.float32)
    r = max(3, k // 2)
    ring = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    drop = np.zeros((sh, sw), bool)
    for i in range(1, n):
        if st[i, cv2.CC_STAT_AREA] < max(6, 0.004 * area):
            continue
        blob = lab == i
        near = cv2.dilate(blob.astype(np.uint8), ring).astype(bool)
        body, out = near & (opened > 0), near & (m == 0)
        if body.sum() < 3 or out.sum() < 3:
            continue
        c = lab_img[blob].mean(axis=0)
        d_body = float(np.linalg.norm(c - lab_img[body].mean(axis=0)))
        # the surroundings' closest colours (a handful of pixels: the rest of the object it belongs to)
        dist = np.sort(np.linalg.norm(lab_img[out] - c, axis=1))
        d_out = float(dist[min(dist.size - 1, max(8, int(0.02 * dist.size)))])
        if d_body > PROTRUSION_MIN_DE and d_out < PROTRUSION_OUTSIDE * d_body:
            drop |= blob
    if not drop.any():
        return mask
    grown_drop = cv2.dilate(drop.astype(np.uint8), np.ones((3, 3), np.uint8)) * 255
    big = cv2.resize(grown_drop, (w, h), interpolation=cv2.INTER_LINEAR) >= 128
    out_mask = mask.copy()
    out_mask[big] = 0
    return out_mask


def _largest_components(mask: np.ndarray, keep_share: float = 0.05) -> np.ndarray:
    n, labels, stats, _ = cv2.connectedComponentsWithStats((mask > 0).astype(np.uint8), connectivity=8)
    if n <= 2:
        return mask
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.flatnonzero(areas >= keep_share * areas.max()) + 1
    return np.where(np.isin(labels, keep), 255, 0).astype(np.uint8)


def _guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter (grey guide, box windows): `src` follows the guide's edges."""
    k = (2 * radius + 1, 2 * radius + 1)
    mean_i, mean_p = cv2.blur(guide, k), cv2.blur(src, k)
    cov_ip = cv2.blur(guide * src, k) - mean_i * mean_p
    var_i = cv2.blur(guide * guide, k) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return cv2.blur(a, k) * guide + cv2.blur(b, k)


def _refine_full_size(rgb: np.ndarray, up: np.ndarray, band: int) -> np.ndarray:
    """Snap the upsampled edge to the full-resolution photo: a guided filter (guide = the photo's
    luminance) decides the pixels within `band` of the edge and gives them a soft, matte-like
    value; everything further in or out keeps the low-resolution answer."""
    hard = masks.binarize(up)
    grown, shrunk = masks.dilate(hard, band), masks.erode(hard, band)
    in_band = (grown > 0) & (shrunk == 0)
    ys, xs = np.nonzero(in_band)
    if ys.size == 0:
        return hard
    pad = 2 * band + 2
    y0, y1 = max(int(ys.min()) - pad, 0), min(int(ys.max()) + 1 + pad, rgb.shape[0])
    x0, x1 = max(int(xs.min()) - pad, 0), min(int(xs.max()) + 1 + pad, rgb.shape[1])
    guide = cv2.cvtColor(rgb[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    soft = up[y0:y1, x0:x1].astype(np.float32) / 255.0
    q = _guided_filter(guide, soft, radius=max(2, band * 2), eps=1e-3)
    out = hard.copy()
    sel = in_band[y0:y1, x0:x1]
    region = out[y0:y1, x0:x1]
    region[sel] = np.clip(np.rint(q[sel] * 255.0), 0, 255).astype(np.uint8)
    return out


class Matter:
    """load from a folder -> `.to(device)` -> `__call__(image, ...) -> MatteResult`."""

    def __init__(self, home: Path, presets_dir: Path | str | None = None) -> None:
        self.home = Path(home)
        self.presets_dir = presets_dir      # the catalogue (None: the studio's presets/)
        self.device = "cpu"
        self._sessions: dict[str, Any] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_folder(cls, models_dir: Path | str, presets_dir: Path | str | None = None) -> "Matter":
        return cls(Path(models_dir) / REMBG_DIR, presets_dir)

    def to(self, device: str) -> "Matter":
        with self._lock:
            if str(device) != self.device:
                self._sessions.clear()
            self.device = str(device)
        return self

    @property
    def available(self) -> dict[str, Path]:
        return find_weights(self.home.parent, self.presets_dir)

    def _custom_path(self, prefer: str) -> Path | None:
        if not str(prefer).lower().endswith(".onnx"):
            return None
        path = Path(prefer)
        if not path.is_absolute():
            path = self.home / path
        path = path.resolve()
        home = self.home.resolve()
        if home != path and home not in path.parents:
            raise InputError("vision.matting.outside", home=str(home), path=str(path))
        if not path.is_file():
            raise WeightsError("vision.matting.missing", model=str(path))
        return path

    def choose(self, prefer: str = "auto", subject: str = "product") -> str:
        """The backend `__call__` would use (no model load)."""
        if self._custom_path(prefer) is not None:
            return "custom"
        name = ALIASES.get(prefer, prefer)
        if name == "auto":
            return auto_choice(self.available, subject)
        if name in ("grabcut", "alpha"):
            return name
        known = licences(self.presets_dir)
        if name not in known or name in OTHER_LICENCES:
            raise InputError("vision.matting.unknown", model=prefer,
                             choices=", ".join(["auto", "grabcut", *(k for k in known if k not in OTHER_LICENCES)]))
        if name not in self.available:
            raise WeightsError("vision.matting.missing", model=name)
        return name

    def session(self, name: str, custom: Path | None = None) -> Any:
        """A rembg session for `name` on its file under `self.home`, opened by explicit path
        (studio.runtime.rembg_models.open_session: no environment variable, no download)."""
        from studio.runtime.rembg_models import CUSTOM, open_session

        key = str(custom) if custom is not None else name
        with self._lock:
            if key in self._sessions:
                return self._sessions[key]
            if custom is not None:
                sess = open_session(CUSTOM, custom, onnx_providers(self.device))
            else:
                path = self.available.get(name)
                if path is None:
                    raise WeightsError("vision.matting.missing", model=name)
                sess = open_session(name, path, onnx_providers(self.device))
            self._sessions[key] = sess
            return sess

    def __call__(self, image: Image.Image | np.ndarray, box: tuple[int, int, int, int] | None = None,
                 alpha: np.ndarray | None = None, prefer: str = "auto", subject: str = "product",
                 strokes: np.ndarray | None = None) -> MatteResult:
        """`strokes`: the owner's touch-up brush (STROKE_KEEP / STROKE_REMOVE per pixel); they
        refine the cut-out of every engine (GrabCut seeds; a model's or an uploaded alpha is
        post-edited)."""
        rgb = to_rgb_array(image)
        h, w = rgb.shape[:2]
        strokes = check_strokes(strokes, (w, h))
        given = alpha if alpha is not None else _alpha_of(image)
        if given is not None or prefer == "alpha":
            if given is None:
                raise InputError("vision.matting.unknown", model="alpha (no transparency in the image)",
                                 choices="auto, grabcut")
            a = masks.resize_mask(np.asarray(given), (w, h))
            lic, com = OTHER_LICENCES["alpha"]
            return MatteResult(np.ascontiguousarray(apply_strokes(a, strokes)), "alpha", lic, com)
        backend = self.choose(prefer, subject)
        if backend == "grabcut":
            lic, com = OTHER_LICENCES["grabcut"]
            return MatteResult(grabcut_cutout(rgb, box, strokes=strokes), "grabcut", lic, com)
        custom = self._custom_path(prefer) if backend == "custom" else None
        try:
            sess = self.session(backend, custom)
            pred = sess.predict(Image.fromarray(rgb))[0]
        except WeightsError:
            raise
        except (RuntimeError, ValueError, OSError) as exc:  # onnxruntime failures arrive as these
            if prefer != "auto":
                raise WeightsError("vision.matting.missing", model=backend) from exc
            log.warning("rembg %s failed (%s); falling back to GrabCut", backend, exc)
            lic, com = OTHER_LICENCES["grabcut"]
            return MatteResult(grabcut_cutout(rgb, box, strokes=strokes), "grabcut", lic, com,
                               note="vision.matting.fallback")
        mask = masks.resize_mask(np.asarray(pred.convert("L"), dtype=np.uint8), (w, h))
        if box is not None:
            x0, y0, x1, y1 = _clip_box(box, w, h)
            mx, my = int(0.03 * w), int(0.03 * h)
            mask = masks.intersection(mask, masks.box_mask((w, h), (x0 - mx, y0 - my, x1 + mx, y1 + my)))
        mask = apply_strokes(mask, strokes)
        lic, com = licences(self.presets_dir)[backend]
        return MatteResult(np.ascontiguousarray(mask), backend if custom is None else "custom", lic, com)


# --------------------------------------------------------------------------------------------
# soft alpha where the edge is hair or fur
# --------------------------------------------------------------------------------------------
SOFT_WORK_SIDE = 200          # the matting solve runs on the band's box at most this many pixels
SOFT_MAX_COHERENCE = 0.7      # strand-scale gradients that point every which way (fur), not along one contour
SOFT_MIN_ENERGY = 0.06        # ... and strong enough not to be flat noise
SOFT_MIN_SHARE = 0.03         # fur must cover this share of the band before anything is solved


def textured_band(rgb: np.ndarray, band: np.ndarray, radius: int,
                  max_coherence: float = SOFT_MAX_COHERENCE, min_energy: float = SOFT_MIN_ENERGY) -> np.ndarray:
    """Band pixels whose neighbourhood is hair, fur or feathers: strong gradients (structure
    tensor energy) that point in many directions (low coherence). A clean contour - a cup, a
    bottle - has its gradients all across the one edge (coherence near 1) and is left alone."""
    g = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) * (1.0 / 255.0)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    small_k = (5, 5)                 # strand scale: fur changes direction within a few pixels
    jxx, jyy, jxy = cv2.blur(gx * gx, small_k), cv2.blur(gy * gy, small_k), cv2.blur(gx * gy, small_k)
    local = jxx + jyy
    local_coh = np.sqrt((jxx - jyy) ** 2 + 4.0 * jxy ** 2) / (local + 1e-6)
    k = (2 * max(2, radius) + 1,) * 2
    energy = cv2.blur(local, k)
    coherence = cv2.blur(local_coh * local, k) / (energy + 1e-6)   # energy-weighted
    out = band & (coherence < max_coherence) & (energy > min_energy)
    if not out.any():
        return out
    # drop specks: a textured stretch of the edge, not a stray pixel
    n, labels, stats, _ = cv2.connectedComponentsWithStats(out.astype(np.uint8), connectivity=8)
    big = np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] >= (2 * radius + 1) ** 2) + 1
    return np.isin(labels, big)


def soft_edges(image: Image.Image | np.ndarray, keep: np.ndarray, band_px: int | None = None,
               work_side: int = SOFT_WORK_SIDE) -> np.ndarray:
    """A soft alpha in the textured stretches of a cut-out's edge (uint8, 255 = subject).

    Trimap from the binary cut-out: eroded by `band_px` = sure subject, dilated = unknown band,
    the rest background. Only band pixels whose surroundings are fur-like (`textured_band`) are
    solved, by PyMatting's closed-form matting on the band's box at `work_side` pixels, and the
    answer is upsampled into them. Every other pixel keeps its value: the body (sure subject)
    stays exactly 255 and a smooth edge (a cup, a bottle) stays as crisp as it was."""
    keep = np.ascontiguousarray(keep, dtype=np.uint8)
    hard = keep >= 128
    ys, xs = np.nonzero(hard)
    if ys.size == 0:
        return keep
    h, w = keep.shape
    if band_px is None:
        band_px = max(4, int(round(0.02 * max(int(ys.max()) - int(ys.min()), int(xs.max()) - int(xs.min())))))
    pad = 2 * band_px + 2
    y0, y1 = max(int(ys.min()) - pad, 0), min(int(ys.max()) + 1 + pad, h)
    x0, x1 = max(int(xs.min()) - pad, 0), min(int(xs.max()) + 1 + pad, w)
    rgb = np.ascontiguousarray(to_rgb_array(image)[y0:y1, x0:x1])
    crop_hard = hard[y0:y1, x0:x1].astype(np.uint8) * 255
    full_sure = masks.erode(crop_hard, band_px) > 0
    full_band = (masks.dilate(crop_hard, band_px) > 0) & ~full_sure
    fur_full = textured_band(rgb, full_band, band_px)
    if fur_full.sum() < max((2 * band_px + 1) ** 2, SOFT_MIN_SHARE * full_band.sum()):
        return keep                   # a smooth edge, or a stray textured spot on it
    s = min(1.0, work_side / float(max(y1 - y0, x1 - x0)))
    sw, sh = max(8, int(round((x1 - x0) * s))), max(8, int(round((y1 - y0) * s)))
    small = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA)
    small_hard = cv2.resize(crop_hard, (sw, sh), interpolation=cv2.INTER_NEAREST)
    fur = cv2.resize(fur_full.astype(np.uint8), (sw, sh), interpolation=cv2.INTER_NEAREST) > 0
    sure = cv2.resize(full_sure.astype(np.uint8), (sw, sh), interpolation=cv2.INTER_NEAREST) > 0
    trimap = np.where(small_hard > 0, 1.0, 0.0)
    trimap[fur] = 0.5                 # only the fur is solved; elsewhere the cut-out is known
    trimap[sure] = 1.0
    from pymatting import estimate_alpha_cf  # heavy import: only when a furry edge is found

    try:
        alpha = estimate_alpha_cf(small.astype(np.float64) / 255.0, trimap)
    except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
        log.warning("soft edge matting failed (%s); the edge stays as cut", exc)
        return keep
    big_alpha = cv2.resize(alpha.astype(np.float32), (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    sel = fur_full & ~full_sure
    out = keep.copy()
    region = out[y0:y1, x0:x1]
    region[sel] = np.clip(np.rint(big_alpha[sel] * 255.0), 0, 255).astype(np.uint8)
    return out
