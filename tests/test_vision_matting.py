"""Cut-outs: GrabCut on the coffee photo, uploaded alpha, and rembg sessions on tiny onnx files.

Reference region for skimage.data.coffee() (600 x 400): the product is the cup with its saucer
(and the spoon resting on it). Fitted by eye to the photo, it is the union of two ellipses:
the saucer, centre (277, 232), semi-axes (202, 156), and the cup's rim, centre (292, 112),
semi-axes (118, 95). The GrabCut box drawn around it is (70, 10, 490, 395).
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from PIL import Image
from skimage import data

from studio.errors import InputError, WeightsError
from studio.vision.matting import Matter, find_weights, grabcut_cutout
from studio.vision.toolkit import VisionKit

COFFEE_BOX = (70, 10, 490, 395)


def _coffee_reference() -> np.ndarray:
    ref = np.zeros((400, 600), np.uint8)
    cv2.ellipse(ref, (277, 232), (202, 156), 0, 0, 360, 255, -1)
    cv2.ellipse(ref, (292, 112), (118, 95), 0, 0, 360, 255, -1)
    return ref > 0


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum()) / float((a | b).sum())


def test_grabcut_separates_the_cup_from_the_table() -> None:
    img = data.coffee()
    mask = grabcut_cutout(img, COFFEE_BOX)
    assert mask.shape == img.shape[:2] and mask.dtype == np.uint8
    fg = mask >= 128
    assert _iou(fg, _coffee_reference()) >= 0.85
    assert fg[130, 290] and fg[300, 200]                  # coffee in the cup, saucer rim
    assert fg[:, 520:].mean() < 0.02                       # the table on the right
    assert fg[:60, :120].mean() < 0.02                     # the table top-left


def _edge_strength(img: np.ndarray, fg: np.ndarray) -> float:
    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
    mag = np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))
    edge = cv2.morphologyEx(fg.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    return float(mag[edge].mean())


def test_full_size_refinement_snaps_the_edge_to_the_photo() -> None:
    img = cv2.resize(data.coffee(), (1200, 800), interpolation=cv2.INTER_CUBIC)   # GrabCut works at 320
    box = tuple(v * 2 for v in COFFEE_BOX)
    ref = cv2.resize(_coffee_reference().astype(np.uint8), (1200, 800), interpolation=cv2.INTER_NEAREST) > 0
    coarse = grabcut_cutout(img, box, refine=False) >= 128
    refined_soft = grabcut_cutout(img, box)
    refined = refined_soft >= 128
    assert _edge_strength(img, refined) > 1.05 * _edge_strength(img, coarse)  # edge on the photo's edges
    assert _iou(refined, ref) >= _iou(coarse, ref) - 0.01
    assert np.any((refined_soft > 0) & (refined_soft < 255))                  # a soft, matte-like edge


def test_grabcut_default_box_on_a_synthetic_product() -> None:
    rng = np.random.default_rng(0)
    img = (rng.normal(150, 12, (300, 400, 3))).clip(0, 255).astype(np.uint8)
    truth = np.zeros((300, 400), np.uint8)
    cv2.circle(truth, (200, 160), 90, 255, -1)
    img[truth > 0] = (200, 40, 40)
    m = Matter.from_folder(Path("/nonexistent"))(img)
    assert m.backend == "grabcut" and m.commercial_use
    assert _iou(m.mask >= 128, truth > 0) >= 0.95


def test_bad_box_is_an_input_error() -> None:
    with pytest.raises(InputError):
        grabcut_cutout(data.coffee(), (10, 10, 12, 14))


def test_uploaded_alpha_is_used_directly(tmp_path: Path) -> None:
    rgba = np.zeros((60, 80, 4), np.uint8)
    rgba[..., :3] = 90
    rgba[10:50, 20:60, 3] = 255
    rgba[30, 30, 3] = 77
    res = Matter.from_folder(tmp_path)(Image.fromarray(rgba, "RGBA"))
    assert res.backend == "alpha"
    assert np.array_equal(res.mask, rgba[..., 3])
    explicit = Matter.from_folder(tmp_path)(rgba[..., :3], alpha=rgba[..., 3])
    assert np.array_equal(explicit.mask, rgba[..., 3])
    opaque = np.dstack([rgba[..., :3], np.full((60, 80), 255, np.uint8)])
    assert Matter.from_folder(tmp_path)(opaque).backend == "grabcut"   # nothing to use: cut it out


# -- rembg on tiny onnx models ---------------------------------------------------------------
def _tiny_matting_onnx(path: Path) -> None:
    """NCHW image in, (1, 1, H, W) 'saliency' out: the channel mean (bright = subject)."""
    node = helper.make_node("ReduceMean", ["input"], ["out"], axes=[1], keepdims=1)
    graph = helper.make_graph(
        [node], "tiny_matte",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 320, 320])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 1, 320, 320])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


def _square_image() -> np.ndarray:
    img = np.zeros((200, 300, 3), np.uint8)
    img[50:150, 100:200] = 255
    return img


def test_tiny_custom_onnx_loads_through_rembg_inside_u2net_home(settings) -> None:
    home = settings.models_dir / "rembg"
    _tiny_matting_onnx(home / "custom" / "tiny.onnx")
    matter = Matter.from_folder(settings.models_dir)
    before = os.environ.get("U2NET_HOME")
    res = matter(_square_image(), prefer="custom/tiny.onnx")
    assert os.environ.get("U2NET_HOME") == before   # never set: the session gets the file's path
    from rembg.sessions.u2net_custom import U2netCustomSession

    assert isinstance(matter.session("custom", (home / "custom" / "tiny.onnx").resolve()), U2netCustomSession)
    assert res.backend == "custom" and res.commercial_use is False   # unknown licence: flagged
    assert res.mask.shape == (200, 300)
    assert res.mask[100, 150] > 200 and res.mask[10, 10] < 50


def test_custom_onnx_outside_the_folder_is_refused(settings, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere" / "tiny.onnx"
    _tiny_matting_onnx(outside)
    with pytest.raises(InputError) as err:
        Matter.from_folder(settings.models_dir)(_square_image(), prefer=str(outside))
    assert "rembg" in err.value.message("en")


def test_named_model_is_used_only_when_its_file_is_there(settings) -> None:
    matter = Matter.from_folder(settings.models_dir)
    with pytest.raises(WeightsError):                       # never handed to rembg's downloader
        matter(_square_image(), prefer="birefnet")
    assert matter.choose("auto", "product") == "grabcut"
    _tiny_matting_onnx(settings.models_dir / "rembg" / "u2net.onnx")
    assert find_weights(settings.models_dir) == {"u2net": settings.models_dir / "rembg" / "u2net.onnx"}
    assert matter.choose("auto", "product") == "u2net"
    res = matter(_square_image(), prefer="u2net")
    assert res.backend == "u2net" and res.licence == "Apache-2.0" and res.commercial_use
    assert res.mask[100, 150] > 200 and res.mask[10, 10] < 50
    boxed = matter(_square_image(), box=(150, 40, 260, 160), prefer="u2net")
    assert boxed.mask[100, 110] == 0 and boxed.mask[100, 170] > 200   # outside the box is dropped


def test_toolkit_cutout_and_report_show_licences(settings) -> None:
    kit = VisionKit.from_settings(settings)
    rep = kit.report()["matting"]
    assert rep["backend"] == "grabcut"
    assert rep["licences"]["birefnet-general"] == {"licence": "MIT", "commercial_use": True}
    assert rep["licences"]["bria-rmbg"]["commercial_use"] is False
    _tiny_matting_onnx(settings.models_dir / "rembg" / "models" / "birefnet-general" / "birefnet-general.onnx")
    assert VisionKit.from_settings(settings).report()["matting"]["backend"] == "birefnet-general"
    res = kit.cutout(data.coffee(), box=COFFEE_BOX, prefer="grabcut")
    assert res.backend == "grabcut" and res.coverage > 0.3
