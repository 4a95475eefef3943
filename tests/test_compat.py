"""The torchvision CPU shim: transformers/controlnet_aux import, and nms behaves like nms."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from studio.config import REPO_ROOT


def _brute_nms(boxes: np.ndarray, scores: np.ndarray, thr: float) -> list[int]:
    order = list(np.argsort(-scores, kind="stable"))
    keep: list[int] = []
    for i in order:
        ok = True
        for j in keep:
            xx1, yy1 = max(boxes[i, 0], boxes[j, 0]), max(boxes[i, 1], boxes[j, 1])
            xx2, yy2 = min(boxes[i, 2], boxes[j, 2]), min(boxes[i, 3], boxes[j, 3])
            inter = max(0.0, xx2 - xx1) * max(0.0, yy2 - yy1)
            a = (boxes[i, 2] - boxes[i, 0]) * (boxes[i, 3] - boxes[i, 1])
            b = (boxes[j, 2] - boxes[j, 0]) * (boxes[j, 3] - boxes[j, 1])
            if inter / (a + b - inter) > thr:
                ok = False
                break
        if ok:
            keep.append(int(i))
    return keep


def test_nms_matches_brute_force() -> None:
    from studio.runtime.compat import ensure_torchvision

    mode = ensure_torchvision()
    assert mode in ("native", "shim")
    import torch
    import torchvision  # noqa: F401  (must import without "operator torchvision::nms does not exist")

    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 100, size=(60, 2))
    wh = rng.uniform(5, 40, size=(60, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
    scores = rng.uniform(0, 1, size=60).astype(np.float32)
    got = torch.ops.torchvision.nms(torch.from_numpy(boxes), torch.from_numpy(scores), 0.4).tolist()
    assert got == _brute_nms(boxes, scores, 0.4)
    assert 0 < len(got) < 60


def test_model_stack_imports_in_a_fresh_process() -> None:
    """A fresh interpreter: the shim, then transformers' CLIP/T5, timm and controlnet_aux."""
    code = (
        "from studio.runtime.compat import ensure_torchvision; print(ensure_torchvision());"
        "import transformers, timm;"
        "from transformers import CLIPTextModel, T5EncoderModel;"
        "from controlnet_aux.open_pose import OpenposeDetector;"
        "print('imported')"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "imported" in out.stdout


def test_without_the_shim_torchvision_fails_here() -> None:
    """Documents why the shim exists: on this CPU machine the CUDA torchvision can't load its ops.
    On a machine where the extension loads, the shim must report 'native' and do nothing."""
    code = "import torchvision"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    probe = subprocess.run([sys.executable, "-c",
                            "from studio.runtime.compat import ensure_torchvision; print(ensure_torchvision())"],
                           cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    mode = probe.stdout.strip().splitlines()[-1]
    if mode == "native":
        assert out.returncode == 0
    else:
        assert mode == "shim"
        assert out.returncode != 0 and "torchvision::nms" in out.stderr
