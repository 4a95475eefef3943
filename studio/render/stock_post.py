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
