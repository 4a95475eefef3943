"""Pose guides: OpenPose from a random body state dict, DWPose on tiny onnx files, no weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image
from skimage import data

from studio.vision.pose import PoseEstimator, PoseResult, draw_openpose, find_weights, wholebody_to_openpose
from studio.vision.toolkit import VisionKit


def _controlnet_aux():
    from studio.runtime.compat import ensure_torchvision

    ensure_torchvision()
    import controlnet_aux.open_pose as op

    return op


def test_without_weights_pose_is_none_and_the_kit_says_so(settings) -> None:
    assert PoseEstimator.from_folder(settings.models_dir) is None
    kit = VisionKit.from_settings(settings.with_(lang="en"))
    assert kit.pose(data.astronaut(), 512, 512) is None
    assert "without the ControlNet" in kit.pose_note(None)
    rep = kit.report()["pose"]
    assert rep["backend"] == "none" and rep["available"] == []


def test_random_bodypose_state_dict_loads_through_openpose_detector(settings) -> None:
    import torch

    op = _controlnet_aux()
    from controlnet_aux.open_pose.model import bodypose_model

    torch.manual_seed(0)
    model = bodypose_model()
    # the CMU checkpoint's key format: block prefix dropped ("model0.conv1_1.weight" -> "conv1_1.weight")
    state = {k.split(".", 1)[1]: v.to(torch.float16) for k, v in model.state_dict().items()}
    path = settings.models_dir / "annotators" / "body_pose_model.pth"
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    del model

    est = PoseEstimator.from_folder(settings.models_dir)
    assert est is not None and est.backend == "openpose" and not est.info.commercial_use
    est.to("cpu")
    assert isinstance(est._impl, op.OpenposeDetector) and est._impl.hand_estimation is None
    loaded = est._impl.body_estimation.model.state_dict()["model0.conv1_1.weight"]
    assert torch.equal(loaded, state["conv1_1.weight"].float())

    res = est(data.astronaut(), 256, 320)
    assert isinstance(res, PoseResult) and res.backend == "openpose"
    assert res.image.size == (256, 320) and res.image.mode == "RGB"
    assert res.keypoints.shape == (18, 3)
    vis = res.keypoints[res.keypoints[:, 2] > 0]
    assert np.all((vis[:, 0] >= 0) & (vis[:, 0] <= 256) & (vis[:, 1] >= 0) & (vis[:, 1] <= 320))
    if not res.found:
        assert np.asarray(res.image).max() == 0                  # nothing found: a black guide


def test_skeleton_drawing_matches_controlnet_aux() -> None:
    op = _controlnet_aux()
    from controlnet_aux.open_pose.body import Keypoint
    from controlnet_aux.open_pose.util import draw_bodypose

    rng = np.random.default_rng(1)
    pts = np.concatenate([rng.uniform(0.1, 0.9, (18, 2)), np.ones((18, 1))], axis=1)
    pts[[4, 11], 2] = 0.0                                        # two missing joints
    ours = draw_openpose(pts[None], 320, 240)
    theirs = draw_bodypose(np.zeros((240, 320, 3), np.uint8),
                           [Keypoint(x, y) if c > 0 else None for x, y, c in pts])
    assert op is not None and np.array_equal(ours, theirs)


def test_wholebody_mapping_to_openpose_order() -> None:
    kp = np.zeros((1, 133, 3))
    kp[0, :17, 0] = np.arange(17) * 10          # x encodes the COCO index
    kp[0, :17, 2] = 0.9
    kp[0, 5, 1], kp[0, 6, 1] = 100, 120
    out = wholebody_to_openpose(kp)[0]
    assert out.shape == (18, 3)
    assert out[0, 0] == 0                        # nose
    assert out[1, 0] == pytest.approx(55) and out[1, 1] == pytest.approx(110)   # neck = shoulders' mean
    assert out[2, 0] == 60 and out[5, 0] == 50   # right shoulder = COCO 6, left = COCO 5
    assert out[8, 0] == 120 and out[11, 0] == 110  # right hip = COCO 12, left = COCO 11
    assert out[14, 0] == 20 and out[15, 0] == 10   # right eye = COCO 2, left eye = COCO 1


# -- DWPose on tiny onnx files with its real signatures --------------------------------------
def _constant_model(path: Path, in_shape: list[int], outs: dict[str, np.ndarray]) -> None:
    """Outputs = input mean * 0 + constant: the right shapes, driven by the input tensor."""
    nodes = [helper.make_node("ReduceMean", ["input"], ["m"], keepdims=0),
             helper.make_node("Mul", ["m", "zero"], ["m0"])]
    inits = [numpy_helper.from_array(np.array(0.0, np.float32), "zero")]
    outputs = []
    for name, value in outs.items():
        inits.append(numpy_helper.from_array(value.astype(np.float32), name + "_c"))
        nodes.append(helper.make_node("Add", ["m0", name + "_c"], [name]))
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(value.shape)))
    graph = helper.make_graph(nodes, path.stem, [helper.make_tensor_value_info("input", TensorProto.FLOAT, in_shape)],
                              outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


def test_dwpose_onnx_pipeline_on_tiny_models(settings) -> None:
    folder = settings.models_dir / "dwpose"
    # YOLOX at 64 x 64: 8*8 + 4*4 + 2*2 = 84 anchors; one confident person at stride-8 cell (4, 4),
    # 48 x 48 px -> on a 512 image (scale 1/8): centre (256, 256), 384 x 384.
    det = np.zeros((1, 84, 6), np.float32)
    det[0, 4 * 8 + 4] = [0, 0, np.log(6.0), np.log(6.0), 1.0, 1.0]
    _constant_model(folder / "yolox_l.onnx", [1, 3, 64, 64], {"dets": det})
    # RTMPose at 64 x 48 (h x w), SimCC split 2: the crop is 480 x 640 px around (256, 256).
    sx, sy = np.zeros((1, 133, 96), np.float32), np.zeros((1, 133, 128), np.float32)
    sx[0, 0, 48], sy[0, 0, 32] = 1.0, 1.0      # nose -> (256, 96)
    sx[0, 5, 30], sy[0, 5, 64] = 1.0, 1.0      # left shoulder -> (166, 256)
    sx[0, 6, 66], sy[0, 6, 64] = 1.0, 1.0      # right shoulder -> (346, 256)
    _constant_model(folder / "dw-ll_ucoco_384.onnx", [1, 3, 64, 48], {"simcc_x": sx, "simcc_y": sy})

    assert len(find_weights(settings.models_dir)["dwpose"]) == 2
    kit = VisionKit.from_settings(settings)
    assert kit.report()["pose"]["backend"] == "dwpose" and kit.report()["pose"]["commercial_use"]
    res = kit.pose(Image.new("RGB", (512, 512), (90, 90, 90)), 512, 512)
    assert res is not None and res.backend == "dwpose" and res.found and res.people == 1
    k = res.keypoints
    assert np.allclose(k[0, :2], (256, 96), atol=1)
    assert np.allclose(k[1, :2], (256, 256), atol=1)       # neck from the shoulders
    assert np.allclose(k[2, :2], (346, 256), atol=1)       # right shoulder
    assert np.allclose(k[5, :2], (166, 256), atol=1)       # left shoulder
    assert np.all(k[[3, 4, 6, 7, 8, 9, 10, 11, 12, 13], 2] == 0)
    img = np.asarray(res.image)
    assert img.shape == (512, 512, 3) and img[256, 256].max() > 0 and img[500, 20].max() == 0
    assert "DWPose" in kit.pose_note(res) or "dwpose" in kit.pose_note(res)
    # the guide scales to the engine size
    half = kit.pose(Image.new("RGB", (512, 512), (90, 90, 90)), 256, 256)
    assert half is not None and half.image.size == (256, 256)
    assert np.allclose(half.keypoints[0, :2], (128, 48), atol=1)
