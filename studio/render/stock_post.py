"""Post-processing for stock images: upscale to the platforms' minimum, encode, quality gate.

- `upscale(img, min_short)`: the short side becomes at least `min_short` px (aspect kept). With a
  model upscaler's weights in ``models/upscalers/`` (any ``*.pth`` / ``*.safetensors`` that
  spandrel can load: ESRGAN, Real-ESRGAN, SwinIR, ...) the model runs first and Lanczos makes up
  the rest; without spandrel or weights it is Lanczos alone (the result records which).
- `encode(img, fmt, quality)`: JPEG (quality 1-100, 4:4:4 above 90) or PNG (compress level 0-9).
- `quality_gate`: rejects black/NaN, nearly uniform, blurred (variance of the Laplacian) and
  near-duplicate images (64-bit perceptual hash, DCT of a 32x32 grey thumbnail). Runs on the raw
  engine output, before upscaling (upscaling softens every image alike).
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

MIN_SHORT_SIDE = 2500
UPSCALER_DIR = "upscalers"
UPSCALER_SUFFIXES = (".pth", ".safetensors", ".pt", ".ckpt")
FORMATS = ("jpeg", "png")


# --- upscaling ------------------------------------------------------------------------------
def find_upscaler(models_dir: Path, allowed: "set[str] | None" = None) -> Path | None:
    """The first upscaler file under models/upscalers/; with `allowed` (the catalogue's commercially
    usable upscaler file names, when 'commercial use only' is on) only one of those."""
    folder = Path(models_dir) / UPSCALER_DIR
    if not folder.is_dir():
        return None
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in UPSCALER_SUFFIXES and p.is_file())
    if allowed is not None:
        skipped = [p.name for p in files if p.name not in allowed]
        if skipped:
            log.info("upscaler files of unknown licence not used (commercial only): %s", skipped)
        files = [p for p in files if p.name in allowed]
    return files[0] if files else None


def allowed_for(settings: Any) -> "set[str] | None":
    """The upscaler files a job may use: the commercial ones when 'commercial use only' is on
    (`Settings.commercial_only`), any file otherwise (None)."""
    if not getattr(settings, "commercial_only", True):
        return None
    return commercial_upscalers(getattr(settings, "presets_dir", None))


def commercial_upscalers(presets_dir: Path | None = None) -> set[str]:
    """File names of the catalogued upscalers marked `commercial_use` (presets/models.json)."""
    from studio.config import REPO_ROOT
    from studio.presets import Presets

    entries = Presets(Path(presets_dir) if presets_dir else REPO_ROOT / "presets").models
    return {Path(f).name for e in entries if e.purpose == "upscale" and e.commercial_use for f in e.files}


class ModelUpscaler:
    """A spandrel-loaded super-resolution model (loaded once, reused for the batch)."""

    def __init__(self, path: Path, device: str = "cpu") -> None:
        from studio.runtime.compat import ensure_torchvision

        ensure_torchvision()  # spandrel imports torchvision (the CPU shim must come first)
        import spandrel
        import torch

        self.path = Path(path)
        self.device = device
        self._torch = torch
        self.model = spandrel.ModelLoader(device=device).load_from_file(str(self.path))
        self.model.eval()
        self.scale = int(getattr(self.model, "scale", 1) or 1)

    def __call__(self, img: Image.Image) -> Image.Image:
        torch = self._torch
        arr = np.asarray(img.convert("RGB"), np.float32) / 255.0
        x = torch.from_numpy(arr).permute(2, 0, 1)[None].to(self.device)
        with torch.inference_mode():
            y = self.model(x)
        out = (y[0].permute(1, 2, 0).clamp(0, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8)
        return Image.fromarray(out, "RGB")


def load_upscaler(models_dir: Path, device: str = "cpu", allowed: "set[str] | None" = None) -> ModelUpscaler | None:
    """The model upscaler when spandrel and weights are both present, else None (Lanczos).
    `allowed`: only these file names (the commercially usable ones, when the switch is on)."""
    path = find_upscaler(models_dir, allowed)
    if path is None:
        return None
    try:
        return ModelUpscaler(path, device)
    except ImportError:
        log.info("upscaler weights %s found but spandrel is not installed; using Lanczos", path.name)
    except (OSError, ValueError, RuntimeError) as exc:
        log.warning("could not load upscaler %s (%s); using Lanczos", path.name, exc)
    return None


def target_size(size: tuple[int, int], min_short: int) -> tuple[int, int]:
    w, h = size
    short = min(w, h)
    if short >= min_short:
        return w, h
    f = min_short / short
    tw, th = max(min_short, round(w * f)), max(min_short, round(h * f))
    # exact short side, the long side rounded up (never below the minimum after rounding)
    if w <= h:
        return min_short, max(th, int(np.ceil(h * min_short / w)))
    return max(tw, int(np.ceil(w * min_short / h))), min_short


def upscale(img: Image.Image, min_short: int = MIN_SHORT_SIDE, model: Any = None) -> tuple[Image.Image, str]:
    """(image whose short side ≥ min_short, method used: "none" | "lanczos" | "model+lanczos")."""
    img = img.convert("RGB")
    if min(img.size) >= min_short:
        return img, "none"
    method = "lanczos"
    if model is not None:
        try:
            img = model(img)
            method = "model+lanczos"
        except (RuntimeError, ValueError) as exc:
            log.warning("model upscaler failed (%s); Lanczos only", exc)
    size = target_size(img.size, min_short)
    if img.size != size:
        img = img.resize(size, Image.Resampling.LANCZOS)
    return img, method


# --- encoding -------------------------------------------------------------------------------
def encode(img: Image.Image, fmt: str = "jpeg", quality: int = 95) -> tuple[bytes, str]:
    """(bytes, suffix). JPEG quality 1-100; PNG: quality maps to compress level 0-9."""
    fmt = fmt.lower()
    buf = io.BytesIO()
    if fmt in ("jpeg", "jpg"):
        q = int(min(100, max(1, quality)))
        img.convert("RGB").save(buf, "JPEG", quality=q, subsampling=0 if q >= 90 else 2, optimize=True)
        return buf.getvalue(), ".jpg"
    if fmt == "png":
        level = int(min(9, max(0, quality if quality <= 9 else 6)))
        img.convert("RGB").save(buf, "PNG", compress_level=level)
        return buf.getvalue(), ".png"
    raise ValueError(f"unknown format {fmt!r}")


# --- quality gate ---------------------------------------------------------------------------
@dataclass(frozen=True)
class GateConfig:
    black_mean: float = 10.0        # mean luma (0-255) below this: black
    uniform_range: float = 6.0      # 1st-99th percentile luma spread below this: nearly uniform
    blur_laplacian: float = 12.0    # variance of the Laplacian (512-px grey) below this: blurred
    dup_bits: int = 5               # perceptual hashes this close (Hamming): near-duplicate


@dataclass
class GateResult:
    ok: bool
    reason: str = ""                 # "" | "black" | "nan" | "uniform" | "blurred" | "duplicate"
    phash: int = 0
    metrics: dict = field(default_factory=dict)


def _grey(img: Image.Image | np.ndarray) -> np.ndarray:
    arr = np.asarray(img)
    if arr.ndim == 3:
        arr = arr[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return arr.astype(np.float64)


def phash(img: Image.Image) -> int:
    """64-bit DCT perceptual hash."""
    small = np.asarray(img.convert("L").resize((32, 32), Image.Resampling.LANCZOS), np.float32)
    d = cv2.dct(small)[:8, :8]
    bits = (d > np.median(d[1:].ravel() if d.size > 1 else d)).ravel()
    return int("".join("1" if b else "0" for b in bits), 2)


def hamming(a: int, b: int) -> int:
    return bin(int(a) ^ int(b)).count("1")


def laplacian_variance(img: Image.Image) -> float:
    g = img.convert("L")
    if max(g.size) > 512:
        f = 512 / max(g.size)
        g = g.resize((max(1, round(g.width * f)), max(1, round(g.height * f))), Image.Resampling.BILINEAR)
    return float(cv2.Laplacian(np.asarray(g, np.float64), cv2.CV_64F).var())


def quality_gate(img: Image.Image | np.ndarray, seen: list[int] | None = None,
                 config: GateConfig | None = None) -> GateResult:
    """Check one image; `seen` are the perceptual hashes already accepted in this batch."""
    cfg = config or GateConfig()
    if isinstance(img, np.ndarray):
        arr = img
        if arr.dtype.kind == "f":
            if not np.isfinite(arr).all():
                return GateResult(False, "nan")
            arr = np.clip(arr * (255.0 if arr.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
        img = Image.fromarray(arr.astype(np.uint8)).convert("RGB")
    grey = _grey(img)
    mean = float(grey.mean())
    lo, hi = np.percentile(grey, (1, 99))
    metrics = {"mean": round(mean, 2), "range": round(float(hi - lo), 2)}
    if mean < cfg.black_mean:
        return GateResult(False, "black", 0, metrics)
    if hi - lo < cfg.uniform_range:
        return GateResult(False, "uniform", 0, metrics)
    lap = laplacian_variance(img)
    metrics["laplacian_var"] = round(lap, 2)
    if lap < cfg.blur_laplacian:
        return GateResult(False, "blurred", 0, metrics)
    h = phash(img)
    for other in seen or []:
        if hamming(h, other) <= cfg.dup_bits:
            metrics["dup_of"] = f"{other:016x}"
            return GateResult(False, "duplicate", h, metrics)
    return GateResult(True, "", h, metrics)


# --- tiling test and near-duplicate signature (issue 21) -------------------------------------
SEAM_RATIO_MAX = 1.6   # wrap-around jump / typical neighbour jump; a true tile is ~1


def seam_ratio(img: Image.Image | np.ndarray) -> float:
    """How much the wrap-around seam (last column next to the first, last row next to the first)
    jumps compared with neighbouring pixels inside the image; the worse of the two axes.
    A tile that repeats seamlessly scores about 1; a photo or a gradient scores far higher."""
    a = np.asarray(img, np.float32)
    if a.ndim == 2:
        a = a[..., None]
    inside_x = np.abs(np.diff(a, axis=1)).mean()
    inside_y = np.abs(np.diff(a, axis=0)).mean()
    seam_x = np.abs(a[:, 0] - a[:, -1]).mean()
    seam_y = np.abs(a[0] - a[-1]).mean()
    rx = seam_x / max(inside_x, 0.5)
    ry = seam_y / max(inside_y, 0.5)
    return float(max(rx, ry))


def tiles_seamlessly(img: Image.Image | np.ndarray, limit: float = SEAM_RATIO_MAX) -> bool:
    return seam_ratio(img) <= limit


@dataclass(frozen=True)
class Signature:
    """What the near-duplicate check compares: pHash, a colour histogram and a small grey thumbnail."""
    phash: int
    hist: tuple[float, ...]          # 4x4x4 RGB histogram, sums to 1
    thumb: bytes                     # 32x32 grey, uint8
    kind: str = ""                   # what the lite engine drew ("marble:-", "pattern:dots"); "" unknown
    mean: tuple[float, ...] = ()     # mean colour in CIELAB (L 0..100), finer than the histogram
    names: tuple[str, ...] = ()      # its colours by name (what a reviewer would say it is in) ...
    shares: tuple[float, ...] = ()   # ... and how much of the image each covers

    def to_dict(self) -> dict:
        import base64

        return {"phash": f"{self.phash:016x}", "hist": [round(x, 5) for x in self.hist],
                "thumb": base64.b64encode(self.thumb).decode("ascii"), "kind": self.kind,
                "mean": [round(x, 2) for x in self.mean], "names": list(self.names),
                "shares": [round(x, 3) for x in self.shares]}

    @classmethod
    def from_dict(cls, d: dict) -> "Signature":
        import base64

        return cls(int(d["phash"], 16), tuple(float(x) for x in d["hist"]), base64.b64decode(d["thumb"]),
                   str(d.get("kind", "")), tuple(float(x) for x in d.get("mean", ())),
                   tuple(str(x) for x in d.get("names", ())), tuple(float(x) for x in d.get("shares", ())))


def signature(img: Image.Image, kind: str = "", named: list[tuple[str, float]] | None = None) -> Signature:
    """`named`: (colour name, share) pairs (`stock_meta.colour_shares`), for the same-kind check."""
    rgb = img.convert("RGB").resize((64, 64), Image.Resampling.BILINEAR)
    lab = cv2.cvtColor(np.asarray(rgb, np.float32) / 255.0, cv2.COLOR_RGB2LAB).reshape(-1, 3).mean(0)
    # soft binning (each channel value shares its weight between the two nearest of 4 bin centres),
    # so two beiges either side of a bin edge still compare as the same colour
    x = np.asarray(rgb, np.float64).reshape(-1, 3) / 255.0 * 3.0
    lo = np.clip(np.floor(x), 0, 2).astype(np.int64)
    fr = x - lo
    hist = np.zeros(64, np.float64)
    for corner in range(8):
        bits = [(corner >> k) & 1 for k in range(3)]
        idx = np.zeros(len(x), np.int64)
        wgt = np.ones(len(x), np.float64)
        for c in range(3):
            idx = idx * 4 + lo[:, c] + bits[c]
            wgt *= fr[:, c] if bits[c] else 1.0 - fr[:, c]
        hist += np.bincount(idx, weights=wgt, minlength=64)
    hist /= hist.sum()
    thumb = np.asarray(img.convert("L").resize((32, 32), Image.Resampling.BILINEAR), np.uint8)
    return Signature(phash(img), tuple(round(float(x), 5) for x in hist), thumb.tobytes(), kind,
                     tuple(round(float(x), 2) for x in lab), tuple(n for n, _ in named or ()),
                     tuple(float(f) for _, f in named or ()))


def ssim_small(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two small grey images (7x7 Gaussian windows, the usual constants)."""
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    blur = lambda x: cv2.GaussianBlur(x, (7, 7), 1.5)  # noqa: E731
    ma, mb = blur(a), blur(b)
    va, vb, cov = blur(a * a) - ma * ma, blur(b * b) - mb * mb, blur(a * b) - ma * mb
    s = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2))
    return float(s.mean())


@dataclass(frozen=True)
class DupConfig:
    phash_bits: int = 5              # pHash this close: duplicate
    hist_min: float = 0.85           # colour histogram intersection at least this ...
    ssim_min: float = 0.75           # ... and structure this similar: duplicate (catches plain look-alikes)
    # the same kind of drawing (two cream marbles, two brown bokeh) in the same colours reads as
    # "similar content" to a reviewer even when veins or lights lie elsewhere: same kind and the
    # named colours cover the image in nearly the same shares (or fairly alike shares and nearly
    # the same mean colour, CIE76 ΔE)
    kind_shares_min: float = 0.8
    kind_shares_same_look: float = 0.6
    same_look_delta_e: float = 12.0  # the same look with mean colours this close: similar too
    kind_shares_with_mean: float = 0.6
    kind_delta_e: float = 3.5


def _kind_base(kind: str) -> str:
    """"family:motif" of "family:motif:look" (older rows carry no look)."""
    return kind.rsplit(":", 1)[0] if kind.count(":") >= 2 else kind


def near_duplicate(sig: Signature, seen: list[Signature], cfg: DupConfig | None = None) -> dict | None:
    """The first earlier signature this one nearly repeats, with the measures; None when new."""
    cfg = cfg or DupConfig()
    t = np.frombuffer(sig.thumb, np.uint8).reshape(32, 32)
    h = np.asarray(sig.hist)
    for other in seen:
        bits = hamming(sig.phash, other.phash)
        if bits <= cfg.phash_bits:
            return {"by": "phash", "bits": bits, "of": f"{other.phash:016x}"}
        inter = float(np.minimum(h, np.asarray(other.hist)).sum())
        if sig.kind and _kind_base(sig.kind) == _kind_base(other.kind):
            # the same look too (a garland of lights, a dark marble, a graded wash): looser colours
            need = cfg.kind_shares_same_look if sig.kind == other.kind else cfg.kind_shares_min
            de = float(np.linalg.norm(np.asarray(sig.mean) - np.asarray(other.mean))) \
                if sig.mean and other.mean else 99.0
            mine, theirs = dict(zip(sig.names, sig.shares)), dict(zip(other.names, other.shares))
            common = sum(min(f, theirs.get(n, 0.0)) for n, f in mine.items()) if mine and theirs else 0.0
            same_look_close = sig.kind == other.kind and de <= cfg.same_look_delta_e
            if common >= need or same_look_close or (common >= cfg.kind_shares_with_mean and de <= cfg.kind_delta_e):
                return {"by": "same kind and colours", "kind": sig.kind, "colours": list(sig.names[:3]),
                        "shared": round(common, 3), "delta_e": round(de, 1), "of": f"{other.phash:016x}"}
        if inter < cfg.hist_min:
            continue
        s = ssim_small(t, np.frombuffer(other.thumb, np.uint8).reshape(32, 32))
        if s >= cfg.ssim_min:
            return {"by": "colour+structure", "hist": round(inter, 3), "ssim": round(s, 3),
                    "of": f"{other.phash:016x}"}
    return None
