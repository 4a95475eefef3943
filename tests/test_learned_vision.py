"""The learned vision models installed with the studio (MediaPipe's TFLite files, run by OpenCV):
fetched and hash-checked, refused when changed, each one run for real on real photos."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.config import REPO_ROOT
from studio.errors import WeightsError
from studio.runtime import bundled_models
from studio.vision import mp_models

MODELS = REPO_ROOT / "models"


@pytest.fixture(scope="module")
def models_dir() -> Path:
    """The real models, as `launch.py setup` (run by scripts/test.sh) leaves them; fetched here
    with the same code when a bare checkout runs this file alone."""
    bundled_models.ensure_bundled(MODELS)
    return MODELS


def _photo(name: str):
    import sys

    sys.path.insert(0, str(REPO_ROOT / "tests"))
    from photoset import load_set

    return next(p for p in load_set() if p.name == name)


def _wheel_from(models_dir: Path, dest: Path, tamper: str | None = None) -> Path:
    """A wheel-shaped zip holding the model files at their real paths inside mediapipe's wheel."""
    whl = dest / "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl"
    with zipfile.ZipFile(whl, "w") as zf:
        for bf in bundled_models.bundled_files():
            data = (models_dir / "mediapipe" / bf.file).read_bytes()
            if bf.file == tamper:
                data = data[:-1] + bytes([data[-1] ^ 0xFF])
            zf.writestr(bf.wheel_path, data)
    return whl


def test_catalogue_rows_are_apache_and_match_the_files(models_dir):
    files = bundled_models.bundled_files()
    assert {f.file for f in files} >= {mp_models.FACE_DETECTOR_FILE, mp_models.FACE_MESH_FILE, mp_models.SELFIE_FILE,
                                        mp_models.SELFIE_LANDSCAPE_FILE, mp_models.POSE_FILE, mp_models.PALM_FILE,
                                        mp_models.HAND_FILE}
    assert all(f.licence == "Apache-2.0" for f in files)
    assert set(bundled_models.status(models_dir).values()) == {"ok"}
    for f in files:
        assert bundled_models.sha256_of(models_dir / "mediapipe" / f.file) == f.sha256


def test_a_changed_model_file_is_refused_in_korean_and_setup_restores_it(models_dir, tmp_path):
    local = tmp_path / "models"
    shutil.copytree(models_dir / "mediapipe", local / "mediapipe")
    target = local / "mediapipe" / mp_models.FACE_DETECTOR_FILE
    data = bytearray(target.read_bytes())
    data[1000] ^= 0x55
    target.write_bytes(bytes(data))
    assert bundled_models.status(local)[mp_models.FACE_DETECTOR_FILE] == "tampered"
    with pytest.raises(WeightsError) as err:
        mp_models.MediaPipeKit(local).face_detector  # noqa: B018
    assert "원래 파일과 다릅니다" in err.value.message("ko")
    assert mp_models.FACE_DETECTOR_FILE in err.value.message("ko")
    # setup fetches again (here from a local copy of the wheel: no network) and checks the hash
    said: list[str] = []
    status = bundled_models.ensure_bundled(local, progress=said.append, wheel=_wheel_from(models_dir, tmp_path))
    assert set(status.values()) == {"ok"}
    assert any("준비" in s for s in said)
    assert bundled_models.sha256_of(target) == next(
        f.sha256 for f in bundled_models.bundled_files() if f.file == mp_models.FACE_DETECTOR_FILE)


def test_a_tampered_wheel_is_refused_and_nothing_is_written(models_dir, tmp_path):
    local = tmp_path / "models"
    whl = _wheel_from(models_dir, tmp_path, tamper=mp_models.POSE_FILE)
    with pytest.raises(WeightsError) as err:
        bundled_models.ensure_bundled(local, wheel=whl)
    assert err.value.key == "bundled.tampered"
    assert not (local / "mediapipe" / mp_models.POSE_FILE).exists()


def test_setup_does_nothing_when_the_models_are_in_place(models_dir, monkeypatch):
    def no_download(dest):
        raise AssertionError("nothing should be fetched")

    monkeypatch.setattr(bundled_models, "_download_wheel", no_download)
    assert set(bundled_models.ensure_bundled(models_dir).values()) == {"ok"}


@pytest.mark.parametrize("file, size, lo, expected", [
    (mp_models.FACE_DETECTOR_FILE, 128, -1.0, {896, 896 * 16}),
    (mp_models.FACE_MESH_FILE, 192, 0.0, {1, 1404}),
    (mp_models.SELFIE_FILE, 256, 0.0, {256 * 256}),
    (mp_models.POSE_FILE, 256, 0.0, {195, 1, 256 * 256, 39 * 64 * 64, 117}),
    (mp_models.PALM_FILE, 192, 0.0, {2016, 2016 * 18}),
    (mp_models.HAND_FILE, 224, 0.0, {63, 1}),
])
def test_each_model_runs_through_opencv_with_the_expected_outputs(models_dir, file, size, lo, expected):
    net = mp_models.TFLiteNet(models_dir / "mediapipe" / file)
    outs = net(np.full((1, 3, size, size), lo + 0.5, np.float32))
    assert {o.size for o in outs.values()} == expected
    assert all(np.isfinite(o).all() for o in outs.values())


def test_landscape_selfie_model_gives_a_wide_map(models_dir):
    net = mp_models.TFLiteNet(models_dir / "mediapipe" / mp_models.SELFIE_LANDSCAPE_FILE)
    out = next(iter(net(np.zeros((1, 3, 144, 256), np.float32)).values()))
    assert out.size == 144 * 256 and float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_faces_on_the_labelled_people_photos(models_dir):
    """Recall and precision over every photo with labelled faces (tilted, small, groups)."""
    import sys

    sys.path.insert(0, str(REPO_ROOT / "tests"))
    from photoset import face_scores, load_set

    from studio.vision.faces import FaceDetector

    det = FaceDetector.from_folder(models_dir)
    assert det.backend == "mediapipe"
    tp = fp = fn = 0
    for p in load_set():
        if p.faces is None:
            continue
        found = det(np.asarray(p.image()))
        a, b, c = face_scores([f.box for f in found], p.face_boxes())
        tp, fp, fn = tp + a, fp + b, fn + c
        assert all(f.oval is not None and f.oval.shape == (36, 2) for f in found)
    assert tp + fn >= 15
    assert tp / (tp + fn) >= 0.95 and tp / (tp + fp) >= 0.95


def test_the_face_keep_mask_follows_the_face_outline(models_dir):
    from studio.vision.faces import FaceDetector
    from studio.vision.toolkit import VisionKit

    photo = _photo("obama_tilted")
    img = photo.image()
    face = FaceDetector.from_folder(models_dir)(np.asarray(img))[0]
    keep = VisionKit(models_dir, device="cpu").face_keep_mask(img.size, face, include_hair=False, dilate_px=0,
                                                               feather_px=0)
    oval = np.zeros_like(keep)
    import cv2

    cv2.fillPoly(oval, [np.rint(face.oval).astype(np.int32)], 255)
    inter = float(((keep > 127) & (oval > 127)).sum())
    assert inter / float((oval > 127).sum()) > 0.97          # the whole outline is kept
    # and not an upright ellipse around the box: the turned face's box corners stay outside
    x0, y0, x1, y1 = face.box
    assert keep[y0 + 2, x0 + 2] == 0 or keep[y1 - 3, x1 - 3] == 0


def test_person_mask_cuts_out_the_person(models_dir):
    from types import SimpleNamespace

    from photoset import iou

    from studio.vision.toolkit import VisionKit
    from studio.workflows.common import person_matte

    kit = VisionKit(models_dir, device="cpu")
    for name in ("grace_hopper", "obama_full"):
        photo = _photo(name)
        img = photo.image()
        faces = kit.detect_faces(img)
        mask, backend, _ = person_matte(SimpleNamespace(vision=kit), img, faces[0], True, faces)
        assert backend.startswith("selfie")
        assert iou(mask, photo.mask(img.size)) >= 0.88, name


def test_blazepose_is_converted_to_the_openpose_18_drawing():
    from studio.vision.pose import COLOURS, LIMBS, blazepose_to_openpose, draw_openpose

    pts = np.zeros((33, 2))
    vis = np.ones(33)
    # a standing figure, 200 x 400 px: shoulders, elbows, wrists, hips, knees, ankles, face
    pts[11], pts[12] = (120, 100), (80, 100)
    pts[13], pts[14] = (130, 160), (70, 160)
    pts[15], pts[16] = (135, 210), (65, 210)
    pts[23], pts[24] = (112, 220), (88, 220)
    pts[25], pts[26] = (114, 300), (86, 300)
    pts[27], pts[28] = (115, 380), (85, 380)
    pts[0], pts[2], pts[5], pts[7], pts[8] = (100, 50), (106, 45), (94, 45), (112, 50), (88, 50)
    op = blazepose_to_openpose(pts, vis)
    assert op.shape == (18, 3) and (op[:, 2] > 0).all()
    assert tuple(op[1, :2]) == (100, 100)                  # the neck: between the shoulders
    assert tuple(op[2, :2]) == (80, 100)                   # OpenPose 2 = the person's right shoulder
    assert tuple(op[4, :2]) == (65, 210) and tuple(op[10, :2]) == (85, 380)
    norm = op.copy()
    norm[:, 0] /= 200.0
    norm[:, 1] /= 400.0
    canvas = draw_openpose(norm[None], 200, 400)
    # every limb is drawn in its own colour at its midpoint
    for (a, b), colour in zip(LIMBS, COLOURS):
        mx, my = ((op[a - 1, :2] + op[b - 1, :2]) / 2).astype(int)
        patch = canvas[max(my - 2, 0):my + 3, max(mx - 2, 0):mx + 3].reshape(-1, 3)
        assert np.any(np.abs(patch.astype(int) - [int(c * 0.6) for c in colour]).sum(axis=1) <= 3) or \
            np.any(np.all(patch == colour, axis=1)), (a, b)
    # a hidden wrist is left out, not drawn at (0, 0)
    vis[16] = 0.1
    assert blazepose_to_openpose(pts, vis)[4, 2] == 0


def test_blazepose_gives_a_body_guide_without_openpose_weights(models_dir):
    from studio.vision.pose import PoseEstimator

    est = PoseEstimator.from_folder(models_dir)
    assert est is not None and est.backend == "blazepose" and est.info.commercial_use
    img = np.asarray(_photo("messi").image())
    res = est.to("cpu")(img, 512, 512)
    assert res.found and res.people == 1
    assert (res.keypoints[:, 2] > 0).sum() >= 14
    assert np.asarray(res.image).any()


def test_hands_have_21_landmarks_and_none_are_invented(models_dir):
    from studio.vision.hands import find_hands

    hands = find_hands(np.asarray(_photo("messi").image()), models_dir)
    assert hands and all(h.points.shape == (21, 2) and h.score >= 0.5 for h in hands)
    x0, y0, x1, y1 = hands[0].box
    assert 300 <= (x0 + x1) / 2 <= 420 and 120 <= (y0 + y1) / 2 <= 210   # his right hand, mid-photo
    assert find_hands(np.asarray(_photo("coffee").image()), models_dir) == []


def test_models_tab_lists_them_as_installed_with_their_licence(models_dir):
    from studio.config import Settings
    from studio.services import build_services
    from studio.ui.tabs.models import catalog_rows

    services = build_services(Settings(models_dir=models_dir, outputs_dir=REPO_ROOT / "outputs" / "_t18",
                                       presets_dir=REPO_ROOT / "presets", engine="lite"))
    try:
        rows = [r for r in catalog_rows(services) if "BlazeFace" in str(r[0]) or "FaceMesh" in str(r[0])]
        assert len(rows) == 2
        assert all("함께 설치됨" in r[2] and "Apache-2.0" in r[5] for r in rows)
        report = services.vision.report()
        assert report["faces"]["backend"] == "mediapipe" and report["pose"]["backend"] == "blazepose"
        assert report["people"]["backend"] == "mediapipe-selfie"
    finally:
        services.store.close()
        shutil.rmtree(REPO_ROOT / "outputs" / "_t18", ignore_errors=True)


def test_group_notices_count_what_the_ad_keeps(models_dir, tmp_path):
    """Six people at a table: whatever the cut-out holds, the notice says the same number."""
    from studio.config import Settings
    from studio.schema import GenerationOptions, PersonRequest
    from studio.services import build_services
    from studio.workflows import person
    from studio.workflows.common import face_shown

    services = build_services(Settings(models_dir=models_dir, outputs_dir=tmp_path / "out",
                                       presets_dir=REPO_ROOT / "presets", engine="lite",
                                       ollama_host="http://127.0.0.1:9"))
    try:
        img = _photo("friends_group").image()
        for keep_all in (False, True):
            res = person.run(PersonRequest(image=img, industry="fashion", sns_size="ig_portrait", keep_all_people=keep_all,
                                           options=GenerationOptions(seed=3)), services)
            settings = res.records[0].settings
            scale, (ox, oy) = settings["upscale"], settings["offset"]

            class Placed:                      # the recorded placement, as the workflow framed it
                @staticmethod
                def map_box(b):
                    return (int(round(b[0] * scale + ox)), int(round(b[1] * scale + oy)),
                            int(round(b[2] * scale + ox)), int(round(b[3] * scale + oy)))

            shown = sum(face_shown(f.box, Placed, res.keep_mask) for f in res.faces)
            assert len(res.faces) == 6 and settings["people_kept"] == shown
            keys = {n.key: n.fields for n in res.notices}
            if shown == 6:
                assert keys.get("workflow.all_people_kept") == {"n": 6} and "workflow.others_left_out" not in keys
            else:
                assert keys.get("workflow.others_left_out") == {"n": 6 - shown} and "workflow.all_people_kept" not in keys
            if keep_all:
                assert shown == 6
            else:
                assert 1 <= shown < 6
    finally:
        services.store.close()


def test_a_lite_person_ad_is_a_real_cut_out(models_dir, tmp_path):
    from studio.config import Settings
    from studio.schema import GenerationOptions, PersonRequest
    from studio.services import build_services
    from studio.workflows import person

    services = build_services(Settings(models_dir=models_dir, outputs_dir=tmp_path / "out",
                                       presets_dir=REPO_ROOT / "presets", engine="lite",
                                       ollama_host="http://127.0.0.1:9"))
    try:
        img = _photo("obama").image()
        res = person.run(PersonRequest(image=img, industry="fashion", sns_size="ig_portrait",
                                       options=GenerationOptions(seed=1)), services)
        assert res.layout == "cutout" and res.records[0].settings["cutout"].startswith("selfie")
        out = np.asarray(res.images[0].convert("RGB")).astype(int)
        keep = res.keep_mask
        # the office behind him is gone: the backdrop outside the person is not the photo's
        framed = np.asarray(res.framed.convert("RGB")).astype(int)
        outside = keep < 10
        assert np.abs(out[outside] - framed[outside]).mean() > 20
        # and the person is the photo's own pixels
        inside = keep == 255
        assert inside.mean() > 0.2 and np.abs(out[inside] - framed[inside]).max() <= 2
    finally:
        services.store.close()


def test_person_notices_and_images_stay_consistent_without_the_models(tmp_path):
    """An empty models folder: the Haar/GrabCut path still answers (the studio never depends on
    the download having happened)."""
    from studio.vision.toolkit import VisionKit

    kit = VisionKit(tmp_path, device="cpu")
    assert kit.mediapipe is None
    assert kit.report()["people"]["backend"] == "grabcut"
    img = Image.fromarray(np.asarray(_photo("grace_hopper").image()))
    assert kit.detect_faces(img)[0].backend == "haar"
