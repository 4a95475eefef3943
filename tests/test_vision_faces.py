"""Face detection: Haar on real photos; InsightFace's loading path on a tiny SCRFD-shaped onnx.

Reference for the astronaut (skimage.data.astronaut(), 512 x 512): the face, judged by eye from
the photo, spans x 178..266 (cheek to cheek) and y 70..168 (hairline to chin). Haar must overlap
that box with IoU >= 0.5 and put its centre inside it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image
from skimage import data

from studio.errors import WeightsError
from studio.vision.faces import FaceBox, FaceDetector, find_weights
from studio.vision.toolkit import VisionKit

ASTRONAUT_FACE = (178, 70, 266, 168)


def _iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
    return inter / float(area(a) + area(b) - inter)


def test_haar_finds_the_astronaut_face_in_the_right_place(tmp_path: Path) -> None:
    det = FaceDetector.from_folder(tmp_path).to("cpu")
    assert det.backend == "haar" and det.info.commercial_use
    faces = det(data.astronaut())
    assert len(faces) == 1
    f = faces[0]
    assert isinstance(f, FaceBox) and f.backend == "haar" and 0 < f.score <= 1
    assert _iou(f.box, ASTRONAUT_FACE) >= 0.5
    cx, cy = f.center
    assert ASTRONAUT_FACE[0] <= cx <= ASTRONAUT_FACE[2] and ASTRONAUT_FACE[1] <= cy <= ASTRONAUT_FACE[3]


def test_haar_box_scales_with_the_image(tmp_path: Path) -> None:
    det = FaceDetector.from_folder(tmp_path)
    big = Image.fromarray(data.astronaut()).resize((1024, 1024), Image.Resampling.BICUBIC)
    faces = det(big)                                      # PIL input, detected on a 640 copy
    assert len(faces) == 1
    scaled = tuple(v // 2 for v in faces[0].box)
    assert _iou(scaled, ASTRONAUT_FACE) >= 0.5


def test_no_human_face_on_chelsea_or_coffee(tmp_path: Path) -> None:
    det = FaceDetector.from_folder(tmp_path)
    assert det(data.chelsea()) == []
    assert det(data.coffee()) == []
    assert det(np.zeros((64, 64), np.uint8)) == []       # grey input works too


def test_several_faces_come_largest_first(tmp_path: Path) -> None:
    a = data.astronaut()
    small = np.asarray(Image.fromarray(a).resize((320, 320)))   # its face is ~60 px wide
    canvas = np.full((512, 1024, 3), 230, np.uint8)
    canvas[:320, 0:320] = small
    canvas[:, 400:912] = a
    faces = FaceDetector.from_folder(tmp_path)(canvas)
    assert len(faces) == 2
    assert faces[0].area > faces[1].area
    assert faces[0].box[0] >= 400 and faces[1].box[2] <= 320


def test_missing_backend_is_a_weights_error(tmp_path: Path) -> None:
    with pytest.raises(WeightsError) as err:
        FaceDetector.from_folder(tmp_path, prefer="yunet")
    assert "yunet" in err.value.message("en")


# -- InsightFace through FaceAnalysis, on a tiny SCRFD-shaped model --------------------------
def _tiny_scrfd(path: Path, size: int = 64) -> None:
    """SCRFD's signature: one NCHW input; 9 outputs = score/bbox/kps for strides 8, 16, 32 with
    two anchors each (insightface routes any onnx with >= 5 outputs to SCRFD). Stride 8's score is
    sigmoid(10 * (mean of the 8x8 patch - 0.5)) on the normalised input: bright patches score ~1."""
    nodes, inits, outputs = [], [], []
    heads = {"score": 1, "bbox": 4, "kps": 10}
    names: dict[str, list[str]] = {h: [] for h in heads}
    for stride in (8, 16, 32):
        for head, ch in heads.items():
            oc = 2 * ch
            w = np.zeros((oc, 3, stride, stride), np.float32)
            b = np.zeros((oc,), np.float32)
            if head == "score":
                if stride == 8:
                    w[:] = 10.0 / (3 * stride * stride)
                    b[:] = -5.0
                else:
                    b[:] = -20.0
            elif head == "bbox":
                b[:] = 1.0                      # 1 stride from the anchor on every side
            wn, bn, cn, tn, on = (f"{head}{stride}_{k}" for k in ("w", "b", "conv", "t", "out"))
            inits += [numpy_helper.from_array(w, wn), numpy_helper.from_array(b, bn)]
            nodes.append(helper.make_node("Conv", ["input.1", wn, bn], [cn], strides=[stride, stride]))
            src = cn
            if head == "score":
                nodes.append(helper.make_node("Sigmoid", [cn], [cn + "_s"]))
                src = cn + "_s"
            nodes.append(helper.make_node("Transpose", [src], [tn], perm=[0, 2, 3, 1]))
            shape_name = f"{head}{stride}_shape"
            inits.append(numpy_helper.from_array(np.array([-1, ch], np.int64), shape_name))
            nodes.append(helper.make_node("Reshape", [tn, shape_name], [on]))
            names[head].append(on)
    for head, ch in heads.items():
        for on in names[head]:
            outputs.append(helper.make_tensor_value_info(on, TensorProto.FLOAT, [None, ch]))
    graph = helper.make_graph(nodes, "tiny_scrfd",
                              [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, size, size])],
                              outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


@pytest.fixture
def scrfd_pack(tmp_path: Path) -> Path:
    models = tmp_path / "models"
    pack = models / "insightface" / "models" / "buffalo_l"
    pack.mkdir(parents=True)
    _tiny_scrfd(pack / "det_10g.onnx")
    return models


def test_tiny_scrfd_loads_through_face_analysis_and_detects(scrfd_pack: Path) -> None:
    assert find_weights(scrfd_pack)["insightface"]
    det = FaceDetector.from_folder(scrfd_pack).to("cpu")
    assert det.backend == "insightface"
    from insightface.app import FaceAnalysis

    assert isinstance(det._impl, FaceAnalysis)
    assert type(det._impl.det_model).__name__ == "SCRFD"
    img = np.zeros((512, 512, 3), np.uint8)
    img[192:256, 192:256] = 255            # exactly one stride-8 cell of the 64 x 64 model input
    faces = det(img)
    assert len(faces) == 1
    f = faces[0]
    assert f.backend == "insightface" and f.score > 0.9
    # anchor (24, 24) at 64 px -> 192 px; 1 stride (8 px) each side -> 64 px at 512
    assert np.allclose(f.box, (128, 128, 256, 256), atol=2)
    assert f.landmarks is not None and f.landmarks.shape == (5, 2)
    assert det(np.zeros((300, 300, 3), np.uint8)) == []


def test_report_prefers_insightface_and_flags_its_licence(scrfd_pack: Path) -> None:
    kit = VisionKit(scrfd_pack, lang="en")
    rep = kit.report()["faces"]
    assert rep["backend"] == "insightface" and rep["commercial_use"] is False
    assert "non-commercial" in rep["note"]
    assert rep["available"] == ["insightface", "haar"]
    assert kit.detect_faces(np.zeros((128, 128, 3), np.uint8)) == []


def test_kit_face_keep_and_regenerate_masks(settings) -> None:
    kit = VisionKit.from_settings(settings)
    img = data.astronaut()
    face = kit.detect_faces(img)[0]
    keep = kit.face_keep_mask((512, 512), face)
    regen = kit.face_regenerate_mask((512, 512), face)
    cx, cy = (int(v) for v in face.center)
    assert keep.shape == (512, 512) and keep[cy, cx] == 255 and keep[500, 10] == 0
    assert np.any((keep > 0) & (keep < 255))                    # feathered edge
    assert np.array_equal(regen, 255 - keep)                    # engine mask: 255 = regenerate
    tight = kit.face_keep_mask((512, 512), face, include_hair=False, dilate_px=0, feather_px=3)
    assert (tight >= 128).sum() < (keep >= 128).sum()
