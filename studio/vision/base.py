"""What every vision module shares: the backend description, onnxruntime providers and the
image normaliser. Its own module, below faces/pose/matting/composite/hands, so that they do not
import the `VisionKit` facade (studio.vision.toolkit) that imports them; toolkit hands these on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class BackendInfo:
    """Which backend a capability uses, under which licence, from which files."""

    name: str
    licence: str
    commercial_use: bool
    weights: tuple[str, ...] = ()
    device: str = "cpu"


def onnx_providers(device: str) -> list[str]:
    """onnxruntime providers for `device` ("cuda", "cuda:0", "cpu"); CPU is always last."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if str(device).startswith("cuda") and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def to_rgb_array(image: Image.Image | np.ndarray) -> np.ndarray:
    """PIL (any mode) or numpy (H x W, H x W x 3 RGB, H x W x 4 RGBA) -> contiguous uint8 RGB."""
    from studio.errors import InputError

    if isinstance(image, Image.Image):
        return np.ascontiguousarray(np.asarray(image if image.mode == "RGB" else image.convert("RGB"),
                                               dtype=np.uint8))
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and arr.size and float(arr.max()) <= 1.0:
            arr = arr * 255.0
        arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4) or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError("vision.bad_image", shape=str(tuple(arr.shape)))
    return np.ascontiguousarray(arr[:, :, :3])


def default_device() -> str:
    """"cuda" when onnxruntime-gpu can run here, else "cpu" (no torch import)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return "cpu"
    return "cuda" if "CUDAExecutionProvider" in ort.get_available_providers() else "cpu"
