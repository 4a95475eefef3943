"""Make torchvision importable with a CPU-only torch.

torchvision on PyPI is a CUDA build: its `_C.so` does not load next to the CPU torch wheel, and
`import torchvision` then dies in `_meta_registrations` with "operator torchvision::nms does not
exist". transformers, timm and controlnet_aux all import torchvision, so the whole model stack
falls over. `ensure_torchvision()` tries the real extension first; only when it cannot load does it
define the two op schemas torchvision registers fakes for (`nms`, `qnms`) and give `nms` a
pure-torch kernel. On a machine where the real extension loads (the owner's CUDA PC) it changes
nothing. Call it before anything imports transformers, diffusers or torchvision.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from pathlib import Path

log = logging.getLogger(__name__)

_lock = threading.Lock()
_state: dict[str, object] = {}
_lib = None  # keeps the torch.library.Library alive (dropping it unregisters the ops)


def _nms_reference(dets, scores, iou_threshold: float):
    """Greedy non-maximum suppression, the same contract as torchvision's kernel."""
    import torch

    if dets.numel() == 0:
        return torch.empty((0,), dtype=torch.long, device=dets.device)
    x1, y1, x2, y2 = dets.float().unbind(1)
    areas = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    order = scores.argsort(descending=True)
    suppressed = torch.zeros(dets.shape[0], dtype=torch.bool, device=dets.device)
    keep: list[int] = []
    for idx in order.tolist():
        if suppressed[idx]:
            continue
        keep.append(idx)
        xx1 = torch.maximum(x1[idx], x1)
        yy1 = torch.maximum(y1[idx], y1)
        xx2 = torch.minimum(x2[idx], x2)
        yy2 = torch.minimum(y2[idx], y2)
        inter = (xx2 - xx1).clamp(min=0) * (yy2 - yy1).clamp(min=0)
        iou = inter / (areas[idx] + areas - inter).clamp(min=1e-12)
        suppressed |= iou > iou_threshold
    return torch.tensor(keep, dtype=torch.long, device=dets.device)


def _real_extension_loads() -> bool:
    import torch

    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return True  # no torchvision at all: nothing to fix
    folder = Path(list(spec.submodule_search_locations)[0])
    candidates = sorted(folder.glob("_C*.so")) + sorted(folder.glob("_C*.pyd"))
    if not candidates:
        return False
    try:
        torch.ops.load_library(str(candidates[0]))
        return True
    except (ImportError, OSError, RuntimeError) as exc:
        log.info("torchvision C++ extension unavailable (%s); using the pure-torch shim", type(exc).__name__)
        return False


def ensure_torchvision() -> str:
    """Returns "native", "shim" or "absent" (idempotent, thread-safe)."""
    global _lib
    with _lock:
        if "mode" in _state:
            return str(_state["mode"])
        if importlib.util.find_spec("torchvision") is None:
            _state["mode"] = "absent"
            return "absent"
        if _real_extension_loads():
            _state["mode"] = "native"
            return "native"
        import torch

        lib = torch.library.Library("torchvision", "DEF")
        lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.impl("nms", _nms_reference, "CompositeExplicitAutograd")
        _lib = lib
        _state["mode"] = "shim"
        return "shim"
