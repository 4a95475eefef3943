"""The detail pass (studio.vision.detail): hands and generated faces redrawn after an AI ad.

Hand boxes are labelled by hand on a real photo (opencv-doc's basketball1.png: two players, three
visible hands; the two clear ones are used) and turned into 21 landmarks on the hand's outline,
as the MediaPipe landmarker would give (issue 18a's `find_hands`, injected here). Faces come
from the real face detector. The engine is the tiny FLUX set (random weights): these tests check
where, at what size and how the pass calls the engine and pastes back, not how a hand looks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from studio.config import Settings
from studio.errors import CancelledError
from studio.runtime.jobs import CancelToken
from studio.schema import GenerationOptions, PersonRequest
from studio.services import build_services
from studio.store.metadata import read_metadata
from studio.vision import detail
from studio.vision.hands import Hand
from studio.vision.io import load_image
from studio.workflows import person

BASKETBALL = Path("/usr/share/doc/opencv-doc/examples/data/basketball1.png")
# labelled by eye on basketball1.png (640x480): the left player's hand on the ball, and the right
# player's raised hand
HAND_BOXES = [(122, 138, 162, 174), (434, 220, 480, 270)]
FAST = GenerationOptions(steps=2, seed=5, num_images=1)


def hand_at(box) -> Hand:
    """21 points on the box's inscribed ellipse (wrist first), like a landmarker's outline."""
    x0, y0, x1, y1 = box
    a = np.linspace(np.pi / 2, np.pi / 2 + 2 * np.pi, 21, endpoint=False)
    pts = np.stack([(x0 + x1) / 2 + (x1 - x0) / 2 * np.cos(a), (y0 + y1) / 2 + (y1 - y0) / 2 * np.sin(a)], 1)
    return Hand(box=tuple(box), points=pts, score=0.9, handedness="Right")


class Recording:
    """The tiny engine, with every job it got recorded (image, mask, size, strength)."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.caps = engine.caps
        self.name = engine.name
        self.jobs: list = []

    def inpaint(self, job, progress=None, cancel=None):
        self.jobs.append(job)
        return self.engine.inpaint(job, progress, cancel)


@pytest.fixture(scope="module")
def tiny():
    from studio.engines.flux_fill import FluxFillEngine
    from studio.engines.tiny import MAX_SEQUENCE_LENGTH, tiny_models_dir

    import dataclasses

    engine = FluxFillEngine(tiny_models_dir(), device="cpu", max_sequence_length=MAX_SEQUENCE_LENGTH, name="tiny")
    engine.caps = dataclasses.replace(FluxFillEngine.caps, needs_gpu=False, needs_weights=False)
    return engine


@pytest.fixture
def photo() -> Image.Image:
    if not BASKETBALL.is_file():
        pytest.fail(f"{BASKETBALL} is missing: install opencv-doc (scripts/test.sh does)")
    return Image.open(BASKETBALL).convert("RGB")


def faces_of(settings: Settings):
    from studio.vision.toolkit import VisionKit

    return VisionKit(settings.models_dir).detect_faces


def test_real_photo_regions_reach_the_engine_at_native_size(tiny, photo, settings: Settings) -> None:
    eng = Recording(tiny)
    keep = np.zeros((photo.height, photo.width), np.uint8)
    find_faces = faces_of(settings)
    faces = find_faces(photo)
    assert faces, "the face detector finds the left player's face"
    res = detail.run_pass(photo, keep, eng, find_hands=lambda rgb: [hand_at(b) for b in HAND_BOXES],
                          find_faces=find_faces, prompt="basketball", steps=2, strength=0.5, seed=1)
    assert (res.hands, res.faces) == (2, len(faces))
    assert res.engine_calls == len(eng.jobs) == 2 + len(faces)
    assert res.notice().key == "detail.fixed_both"
    src = np.asarray(photo).astype(np.float32)
    touched = np.zeros(keep.shape, bool)   # pixels an earlier region may already have redrawn
    for (box, size), job in zip(res.crops, eng.jobs):
        x0, y0, x1, y1 = box
        # square crops, native size: FLUX works at ~1 MP in 16 px steps -> 1024 x 1024
        assert x1 - x0 == y1 - y0 and size == (1024, 1024) == job.image.size == job.mask.size
        assert (job.width, job.height) == (1024, 1024) and job.strength == 0.5
        assert job.steps * job.strength >= 1
        # the engine got exactly that crop of the photo (downsized back for the comparison)
        back = np.asarray(job.image.resize((x1 - x0, y1 - y0), Image.Resampling.BILINEAR)).astype(np.float32)
        fresh = ~touched[y0:y1, x0:x1]
        assert fresh.mean() > 0.3
        assert np.abs(back - src[y0:y1, x0:x1])[fresh].mean() < 4.0
        touched[y0:y1, x0:x1] = True
    # the two hands: each crop holds its whole box with room around it (padding 60 % of its side)
    hand_crops = [box for (box, _), job in zip(res.crops, eng.jobs) if job.extras["detail"] == "hand"]
    for hb in HAND_BOXES:
        side = max(hb[2] - hb[0], hb[3] - hb[1])
        cx, cy = (hb[0] + hb[2]) / 2, (hb[1] + hb[3]) / 2
        c = min(hand_crops, key=lambda c: abs((c[0] + c[2]) / 2 - cx) + abs((c[1] + c[3]) / 2 - cy))
        # the hull grown by a fifth of the hand, then 60 % of that each way: 2.2 x 1.4 = ~3.1 x the hand
        assert 2.6 * side <= c[2] - c[0] <= 3.6 * side
        for i, sign in ((0, -1), (1, -1), (2, 1), (3, 1)):
            room = (hb[i] - c[i]) * -sign
            edge = c[i] in (0, photo.size[i % 2])
            assert room >= 0.5 * side or edge, (c, hb)
        # the mask the engine got covers the hand (centre) and not the crop's corners
        m = np.asarray(next(j for j, (cb, _) in zip(eng.jobs, res.crops) if cb == c).mask)
        assert m[512, 512] == 255 and m[:40, :40].max() == 0
    # outside every crop the photo is untouched
    out = np.asarray(res.image)
    outside = np.ones(keep.shape, bool)
    for (x0, y0, x1, y1), _ in res.crops:
        outside[y0:y1, x0:x1] = False
    assert np.array_equal(out[outside], np.asarray(photo)[outside])


def test_kept_face_is_not_a_region_and_stays_byte_identical(tiny, photo, settings: Settings) -> None:
    find_faces = faces_of(settings)
    face = find_faces(photo)[0]
    keep = np.zeros((photo.height, photo.width), np.uint8)
    x0, y0, x1, y1 = face.box
    keep[y0 - 10:y1 + 10, x0 - 10:x1 + 10] = 255
    keep[y0 - 14:y1 + 14, x0 - 14:x1 + 14][keep[y0 - 14:y1 + 14, x0 - 14:x1 + 14] == 0] = 90  # a soft edge
    # a "hand" overlapping the kept face's edge: its crop covers the face, its redraw must not
    near = (x1 - 5, y0 + 10, x1 + 35, y1 + 20)
    eng = Recording(tiny)
    res = detail.run_pass(photo, keep, eng, find_hands=lambda rgb: [hand_at(near)], find_faces=find_faces,
                          steps=2, strength=1.0, seed=2)
    assert res.faces == 0 and res.hands == 1 and len(eng.jobs) == 1
    assert np.asarray(eng.jobs[0].mask).max() == 255
    out, src = np.asarray(res.image), np.asarray(photo)
    held = keep > 0
    assert np.array_equal(out[held], src[held])
    assert (np.abs(out.astype(int) - src.astype(int)).sum(axis=2)[~held] > 0).sum() > 200


def test_paste_back_is_feathered(photo) -> None:
    """A white patch over the first hand: full white inside, a soft band at the edge, the rest exact."""
    keep = np.zeros((photo.height, photo.width), np.uint8)
    regions, _ = detail.find_regions(photo.size, keep, [hand_at(HAND_BOXES[1])], [])

    from studio.engines.base import EngineCaps

    class White:
        name = "white"
        caps = EngineCaps(changes_outfit=True)

    white = White()
    res = detail.repair(photo, keep, regions, white, prompt="", steps=2, guidance=30, strength=0.6, seed=0,
                        call=lambda job: Image.new("RGB", (job.width, job.height), (255, 255, 255)))
    out = np.asarray(res.image).astype(int)[..., 0]
    src = np.asarray(photo).astype(int)[..., 0]
    m = regions[0].mask > 0
    import cv2

    core = cv2.erode(m.astype(np.uint8), np.ones((25, 25), np.uint8)) > 0  # 12 px in: past the blend band
    assert (out[core] == 255).mean() > 0.95
    alpha = np.where(src < 250, (out - src) / np.maximum(255 - src, 1), np.nan)
    band = m & ~core
    soft = alpha[band]
    soft = soft[~np.isnan(soft)]
    assert ((soft > 0.1) & (soft < 0.9)).mean() > 0.3, "the edge is blended, not cut"
    assert np.array_equal(out[~m], src[~m])  # nothing outside the region's mask


def _tiny_services(settings: Settings):
    return build_services(settings.with_(engine="tiny"))


def _output_hand_finder(boxes):
    return lambda rgb: [hand_at(b) for b in boxes]


def test_person_ad_pass_recorded_kept_face_identical_one_engine(settings: Settings) -> None:
    svc = _tiny_services(settings)
    try:
        img = load_image(data.astronaut()).image
        req = dict(image=img, sns_size="kakao_channel", options=FAST)
        off = person.run(PersonRequest(**req, detail=False), svc)
        engine = svc.engines.get("inpaint")
        calls: list = []
        real = engine.inpaint

        def counted(job, progress=None, cancel=None):
            calls.append((job.width, job.height, job.extras.get("detail")))
            return real(job, progress, cancel)

        engine.inpaint = counted
        components = len(svc.engines.manager.components)
        # hands in the generated body (output pixels of the 800x800 ad), one touching the face's keep
        svc.vision.hands = _output_hand_finder([(150, 600, 230, 690), (470, 330, 560, 420)])
        on = person.run(PersonRequest(**req, detail=True, detail_strength=0.4), svc)
        assert svc.engines.get("inpaint") is engine and len(svc.engines.manager.components) == components
        assert [c for c in calls if c[2] is None] == [(1024, 1024, None)], (on.notices, on.records[0].settings)
        assert [c for c in calls if c[2] == "hand"] == [(1024, 1024, "hand")] * 2, (calls, on.notices)
        a, b = np.asarray(off.images[0]), np.asarray(on.images[0])
        keep = on.keep_mask > 0
        assert keep.sum() > 500
        assert np.array_equal(a[keep], b[keep]), "the kept face must be byte-identical"
        assert np.array_equal(b[on.keep_mask == 255], np.asarray(on.framed)[on.keep_mask == 255])
        assert (np.abs(a.astype(int) - b.astype(int)).sum(axis=2) > 0).sum() > 1000  # the hands were redrawn
        st = on.records[0].settings
        assert st["detail_pass"] is True and st["detail_strength"] == 0.4 and st["detail_hands"] == 2
        assert st["detail_engine_calls"] == 2
        params = read_metadata(on.records[0].path)["parameters"]
        assert "Detail pass: true" in params and "Detail hands: 2" in params and "Detail strength: 0.4" in params
        n = next(n for n in on.notices if n.key.startswith("detail."))
        assert n.key == "detail.fixed_hands" and n.text("ko") == "손 2곳을 다시 그렸습니다."
        assert {"key": "detail.fixed_hands", "fields": {"n": 2}} in st["notices"]
        assert off.records[0].settings["detail_pass"] is False
        assert not any(n.key.startswith("detail.") for n in off.notices)
    finally:
        svc.store.close()


def test_no_hands_adds_nothing(settings: Settings) -> None:
    svc = _tiny_services(settings)
    try:
        img = load_image(data.astronaut()).image
        req = dict(image=img, sns_size="kakao_channel", options=FAST)
        off = person.run(PersonRequest(**req, detail=False), svc)
        on = person.run(PersonRequest(**req), svc)   # the placeholder finder: no hand models, no hands
        assert np.array_equal(np.asarray(off.images[0]), np.asarray(on.images[0]))
        st = on.records[0].settings
        assert st["detail_engine_calls"] == 0 and st["detail_hands"] == 0 and st["detail_faces"] == 0
        keys = [n.key for n in on.notices if n.key.startswith("detail.")]
        assert keys == ["detail.none_no_hand_model"]
    finally:
        svc.store.close()


def test_cancel_in_the_middle_of_the_pass(settings: Settings) -> None:
    svc = _tiny_services(settings)
    try:
        svc.vision.hands = _output_hand_finder([(150, 600, 230, 690), (470, 330, 560, 420), (600, 600, 680, 700)])
        token = CancelToken()
        seen: list = []

        def progress(step: int, total: int, desc: str = "") -> None:
            seen.append(desc)
            if desc == "detail" and step >= 1:
                token.cancel()

        img = load_image(data.astronaut()).image
        with pytest.raises(CancelledError):
            person.run(PersonRequest(image=img, sns_size="kakao_channel", options=GenerationOptions(steps=4, seed=1)),
                       svc, progress=progress, cancel=token)
        assert seen.count("detail") == 1, "the pass stopped within one step of its first region"
        assert seen.count("denoise") == 4, "the ad itself was made before the pass"
        assert svc.store.count() == 0
    finally:
        svc.store.close()


def test_lite_skips_the_pass_silently(settings: Settings) -> None:
    svc = build_services(settings.with_(engine="lite"))
    try:
        called: list = []
        svc.vision.hands = lambda rgb: called.append(1) or []
        img = load_image(data.astronaut()).image
        res = person.run(PersonRequest(image=img, sns_size="kakao_channel", options=FAST), svc)
        assert not called
        assert not any(n.key.startswith("detail.") for n in res.notices)
        assert not any(k.startswith("detail_") for k in res.records[0].settings)
    finally:
        svc.store.close()


def test_find_regions_rules() -> None:
    keep = np.zeros((200, 200), np.uint8)
    keep[20:80, 20:80] = 255
    from studio.vision.faces import FaceBox

    kept = FaceBox(box=(25, 25, 75, 75), score=0.9)
    other = FaceBox(box=(120, 120, 160, 160), score=0.9)
    tiny_face = FaceBox(box=(10, 150, 18, 158), score=0.9)
    inside = hand_at((30, 30, 60, 60))     # the owner's own hand, inside the kept pixels
    regions, skipped = detail.find_regions((200, 200), keep, [inside], [kept, other, tiny_face])
    assert [r.kind for r in regions] == ["face"] and skipped == 1
    assert regions[0].mask[keep > 0].max() == 0
    assert detail.crop_box((190, 190, 200, 200), (200, 200)) == (104, 104, 200, 200)
    assert detail.clamp_strength("x") == detail.DEFAULT_STRENGTH and detail.clamp_strength(5) == 1.0


def test_ui_form_and_cli_options() -> None:
    import argparse

    from studio.cli.ad import add_arguments
    from studio.ui.tabs.ads import SPECS, AdForm, build_request

    p = argparse.ArgumentParser()
    add_arguments(p)
    a = p.parse_args(["--mode", "person", "--image", "x.png", "--out", "o"])
    assert a.detail is True and a.detail_strength == 0.6
    a = p.parse_args(["--mode", "person", "--image", "x.png", "--out", "o", "--no-detail", "--detail-strength", "0.3"])
    assert a.detail is False and a.detail_strength == 0.3

    class Loaded:
        image = Image.new("RGB", (64, 64))
        alpha = None

    req = build_request(SPECS["person"], AdForm(detail=False, detail_strength=0.3), Loaded(), "ko")
    assert req.detail is False and req.detail_strength == 0.3
    req = build_request(SPECS["advanced"], AdForm(), Loaded(), "ko")
    assert req.detail is True and req.detail_strength == 0.6


def test_advanced_ad_keeps_face_and_product_byte_identical(settings: Settings) -> None:
    """Advanced with an uploaded transparency (the helmet of the astronaut photo is the product): a hand
    drawn over the product's edge is redrawn only outside it; face and product stay exact."""
    from studio.workflows import advanced
    from studio.schema import AdvancedRequest

    svc = _tiny_services(settings)
    try:
        img = load_image(data.astronaut()).image
        alpha = np.zeros((512, 512), np.uint8)
        import cv2

        cv2.circle(alpha, (400, 440), 110, 255, -1)          # the helmet, bottom right
        req = dict(image=img, sns_size="kakao_channel", options=FAST, alpha=alpha)
        off = advanced.run(AdvancedRequest(**req, detail=False), svc)
        assert off.layout == "cutout"
        # the ad is 800x800 from 512x512 (x1.5 cap): the helmet's left edge lands near x = 130 + 290 * 1.43
        svc.vision.hands = _output_hand_finder([(420, 560, 520, 660), (120, 600, 210, 690)])
        on = advanced.run(AdvancedRequest(**req), svc)
        a, b = np.asarray(off.images[0]), np.asarray(on.images[0])
        keep = on.keep_mask > 0
        assert np.array_equal(off.keep_mask, on.keep_mask)
        assert np.array_equal(a[keep], b[keep]), "face and product must be byte-identical"
        st = on.records[0].settings
        assert st["detail_pass"] is True and st["detail_hands"] >= 1
        assert (np.abs(a.astype(int) - b.astype(int)).sum(axis=2) > 0).sum() > 1000
    finally:
        svc.store.close()


def test_engine_takes_the_strength(tiny) -> None:
    from studio.engines.base import InpaintJob
    from studio.errors import InputError

    img = Image.fromarray(np.asarray(data.astronaut())[::8, ::8].copy()).resize((64, 64))
    mask = Image.new("L", (64, 64), 255)
    job = dict(image=img, mask=mask, prompt="a hand", width=64, height=64, steps=4, seed=3)
    full = np.asarray(tiny.inpaint(InpaintJob(**job, strength=1.0))[0]).astype(int)
    light = np.asarray(tiny.inpaint(InpaintJob(**job, strength=0.3))[0]).astype(int)
    again = np.asarray(tiny.inpaint(InpaintJob(**job, strength=0.3))[0]).astype(int)
    # the strength reaches the pipeline (random tiny weights: only "it changes the result", not how much)
    assert np.array_equal(light, again) and not np.array_equal(light, full)
    with pytest.raises(InputError):
        tiny.inpaint(InpaintJob(**job, strength=0.0))
