"""Issue 18 (18b): the owner's box is always honoured, the touch-up brush refines every cut-out
engine, fallback layouts look designed, and people notices come from the final keep mask."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data

from studio.config import Settings
from studio.errors import InputError
from studio.schema import GenerationOptions, PersonRequest, ProductRequest
from studio.services import build_services
from studio.vision import masks
from studio.vision.io import load_image
from studio.vision.matting import (STROKE_KEEP, STROKE_REMOVE, Matter, apply_strokes, grabcut_cutout,
                                   strokes_from_image)
from studio.workflows import common, person, product

sys.path.insert(0, str(Path(__file__).parent))
from test_vision_matting import COFFEE_BOX, _square_image, _tiny_matting_onnx  # noqa: E402

FAST = GenerationOptions(steps=2, seed=3, num_images=1)
DRAW_A_BOX = ("draw a box", "Draw a box", "상자를 그리", "상자를 더 꼭 맞게")


@pytest.fixture
def lite(settings: Settings):
    svc = build_services(settings.with_(engine="lite"))
    yield svc
    svc.store.close()


def _photo(name: str):
    from photoset import load_set

    photo = next(p for p in load_set() if p.name == name)
    if not photo.available():
        pytest.skip(f"{photo.package} is not installed (scripts/test.sh installs it)")
    return photo


# -- the brush ---------------------------------------------------------------------------------
def test_strokes_png_convention_green_keeps_red_removes() -> None:
    paint = np.zeros((40, 60, 4), np.uint8)
    paint[5:10, 5:20] = (0, 255, 0, 255)        # green: keep
    paint[20:25, 30:50] = (255, 0, 0, 255)      # red: remove
    paint[30:35, 5:20] = (255, 255, 255, 255)   # white: nothing
    paint[0:3, 40:60] = (0, 255, 0, 40)         # nearly transparent green: nothing
    s = strokes_from_image(Image.fromarray(paint, "RGBA"), (120, 80))   # stretched to the photo
    assert s.shape == (80, 120)
    assert (s[12:18, 12:38] == STROKE_KEEP).all() and (s[42:48, 62:98] == STROKE_REMOVE).all()
    assert (s[62:68, 12:38] == 0).all() and (s[0:5, 82:118] == 0).all()
    assert strokes_from_image(np.zeros((10, 10, 3), np.uint8)) is None   # nothing painted


def test_grabcut_strokes_change_the_cutout_as_asked() -> None:
    img = data.coffee()
    base = grabcut_cutout(img, COFFEE_BOX) >= 128
    strokes = np.zeros(img.shape[:2], np.uint8)
    strokes[300:380, 120:420] = STROKE_REMOVE     # the saucer's front: "not the product"
    strokes[30:60, 500:560] = STROKE_KEEP         # a piece of table right of the box: "keep this"
    cut = grabcut_cutout(img, COFFEE_BOX, strokes=strokes)
    fg = cut >= 128
    assert base[300:380, 120:420].mean() > 0.5 and not fg[300:380, 120:420].any()
    assert not base[30:60, 500:560].any() and (cut[30:60, 500:560] == 255).all()
    assert fg[130, 290]                            # the cup itself is still kept
    # the seeds also steer GrabCut beyond the painted pixels (it is a seed, not a stencil)
    near = np.zeros_like(strokes, bool)
    near[285:300, 120:420] = True
    assert fg[near].mean() < base[near].mean()


def test_rembg_and_uploaded_alpha_are_post_edited_by_the_strokes(settings) -> None:
    _tiny_matting_onnx(settings.models_dir / "rembg" / "u2net.onnx")
    matter = Matter.from_folder(settings.models_dir)
    img = _square_image()                          # white square 100..200 x 50..150 on black
    strokes = np.zeros(img.shape[:2], np.uint8)
    strokes[60:140, 100:130] = STROKE_REMOVE       # the square's left part out
    strokes[160:190, 20:60] = STROKE_KEEP          # a patch of black background in
    plain = matter(img, prefer="u2net")
    res = matter(img, prefer="u2net", strokes=strokes)
    assert res.backend == "u2net"
    assert plain.mask[100, 115] > 200 and res.mask[100, 115] == 0
    assert plain.mask[175, 40] < 50 and res.mask[175, 40] == 255
    assert res.mask[100, 170] > 200                # the rest of the model's answer is untouched
    edge = res.mask[100, 130:134]                  # re-feathered where the brush cut a new edge
    assert ((edge > 0) & (edge < 255)).any()
    # an uploaded transparency is edited the same way
    alpha = np.zeros(img.shape[:2], np.uint8)
    alpha[50:150, 100:200] = 255
    up = matter(img, alpha=alpha, strokes=strokes)
    assert up.backend == "alpha" and up.mask[100, 115] == 0 and up.mask[175, 40] == 255


def test_apply_strokes_leaves_an_unpainted_mask_alone() -> None:
    m = (np.arange(100 * 80) % 256).astype(np.uint8).reshape(80, 100)
    assert apply_strokes(m, None) is m
    assert apply_strokes(m, np.zeros((80, 100), np.uint8)) is m
    with pytest.raises(InputError):
        apply_strokes(m, np.zeros((80, 100, 3), np.uint8))


def test_product_ad_follows_the_brush(lite) -> None:
    cup = load_image(data.coffee()).image
    strokes = np.zeros((400, 600), np.uint8)
    strokes[300:380, 120:420] = STROKE_REMOVE
    res = product.run(ProductRequest(image=cup, product_box=COFFEE_BOX, strokes=strokes, options=FAST), lite)
    assert not (res.source_keep[300:380, 120:420] >= 128).any()
    assert res.layout == "cutout"                  # the owner's touched-up cut-out is used as is
    assert any(n.key == "workflow.cutout.brushed" for n in res.notices)


# -- the box is always honoured ----------------------------------------------------------------
def _says_draw_a_box(notices) -> bool:
    return any(any(p in n.text(lang) for p in DRAW_A_BOX) for n in notices for lang in ("ko", "en"))


def test_a_drawn_box_is_never_answered_with_draw_a_box(lite) -> None:
    # a flat, featureless photo: no cut-out can find an outline in it
    flat = Image.new("RGB", (500, 400), (182, 176, 168))
    box = (150, 100, 350, 330)
    res = product.run(ProductRequest(image=flat, product_box=box, options=FAST), lite)
    keep = res.source_keep >= 128
    assert keep[110:320, 160:340].all() and not keep[:90].any() and not keep[:, :140].any()
    assert any(n.key == "workflow.cutout.box" for n in res.notices)
    assert not _says_draw_a_box(res.notices)
    # keep strokes alone say where the product is, just like a box
    strokes = np.zeros((400, 500), np.uint8)
    strokes[150:250, 200:300] = STROKE_KEEP
    res = product.run(ProductRequest(image=flat, strokes=strokes, options=FAST), lite)
    assert (res.source_keep[150:250, 200:300] == 255).all() and not _says_draw_a_box(res.notices)
    # without box, brush or transparency the owner may be asked for a box
    with pytest.raises(InputError) as err:
        product.run(ProductRequest(image=flat, options=FAST), lite)
    assert err.value.key == "workflow.no_product"


def test_an_unsure_cutout_inside_a_drawn_box_points_at_the_brush(lite) -> None:
    photo = _photo("motorcycle")
    img = photo.image()
    res = product.run(ProductRequest(image=img, product_box=photo.box(img.size), options=FAST), lite)
    assert res.layout == "card"
    assert any(n.key == "lite.fallback.card_drawn" for n in res.notices)
    assert not _says_draw_a_box(res.notices)


def test_cli_takes_the_brush_as_a_png(settings, tmp_path) -> None:
    import argparse

    from studio.cli import ad

    Image.fromarray(data.coffee()).save(tmp_path / "cup.png")
    paint = np.zeros((400, 600, 4), np.uint8)
    paint[300:380, 120:420] = (255, 0, 0, 255)
    Image.fromarray(paint, "RGBA").save(tmp_path / "brush.png")
    parser = argparse.ArgumentParser()
    ad.add_arguments(parser)
    assert "GREEN" in parser.format_help() and "RED" in parser.format_help()
    args = parser.parse_args(["--mode", "product", "--image", str(tmp_path / "cup.png"), "--box", "70,10,490,395",
                              "--strokes", str(tmp_path / "brush.png"), "--out", str(tmp_path / "out"),
                              "--save-mask"])
    out = ad.make_ad(settings.with_(engine="lite"), args)
    mask = np.asarray(Image.open(out["mask"]))
    assert not (mask[300:380, 120:420] >= 128).any() and mask[130, 290] == 255
    (tmp_path / "bad.png").write_text("not a png")
    args.strokes = str(tmp_path / "bad.png")
    with pytest.raises(InputError):
        ad.make_ad(settings.with_(engine="lite"), args)
    json.dumps(out, ensure_ascii=False)


# -- fallback layouts look designed ------------------------------------------------------------
def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(float).ravel(), b.astype(float).ravel()
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / max(1e-9, np.sqrt((a * a).sum() * (b * b).sum())))


def _self_blur(photo: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """What the old "extend" drew behind the photo: the photo itself covering the frame, blurred."""
    w, h = size
    k = max(w / photo.shape[1], h / photo.shape[0])
    big = cv2.resize(photo, (int(np.ceil(photo.shape[1] * k)), int(np.ceil(photo.shape[0] * k))))
    oy, ox = (big.shape[0] - h) // 2, (big.shape[1] - w) // 2
    return cv2.GaussianBlur(big[oy:oy + h, ox:ox + w], (0, 0), 12)


@pytest.mark.parametrize("size", [(600, 750), (300, 375)])
def test_fallback_never_puts_the_photo_on_a_blurred_copy_of_itself(lite, monkeypatch, size) -> None:
    portrait = load_image(data.astronaut()).image.resize(size, Image.Resampling.LANCZOS)
    from studio.vision import confidence

    # force the fallback (an unsure cut-out) on a photo of nearly the ad's aspect, large and small
    real = confidence.assess

    def unsure(*a, **k):
        q = real(*a, **k)
        return type(q)(0.1, q.signals) if hasattr(q, "signals") else q

    monkeypatch.setattr(confidence, "assess", unsure)
    res = product.run(ProductRequest(image=portrait, options=FAST), lite)
    assert res.layout in common.FALLBACKS
    out = np.asarray(res.images[0])
    back = res.keep_mask < 128
    assert back.mean() > 0.02
    grey = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)
    ghost = cv2.cvtColor(_self_blur(np.asarray(portrait), (out.shape[1], out.shape[0])), cv2.COLOR_RGB2GRAY)
    assert _corr(grey[back], ghost[back]) < 0.3
    if size == (300, 375):                      # a small photo would need > MAX_UPSCALE to fill: a card
        assert res.layout == "card"
        assert not any(n.key in ("lite.fallback.extend", "lite.fallback.fill") for n in res.notices)


def test_card_is_framed_with_room_for_the_headline_and_wide_photos_fill_it() -> None:
    W, H = 1080, 1350
    cup = load_image(data.coffee()).image
    framing, keep = common.fallback_framing(cup, (W, H), "card")
    rows = np.flatnonzero((keep >= 128).any(axis=1))
    assert rows[0] >= 0.19 * H                   # the top fifth is free for the headline
    # a panorama (4:1) is not a thin strip lost in the backdrop: cropped around its subject
    pano = Image.fromarray(np.concatenate([data.coffee()] * 3, axis=1)[:, :1600])   # 1600 x 400
    focus = (700, 20, 1000, 390)
    framing, keep = common.fallback_framing(pano, (W, H), "card", focus)
    k = keep >= 128
    assert k.mean() > 0.3 and np.flatnonzero(k.any(axis=1))[0] >= 0.19 * H
    cx, cy = (focus[0] + focus[2]) / 2, (focus[1] + focus[3]) / 2
    mx, my = framing.map_box((int(cx), int(cy), int(cx) + 1, int(cy) + 1))[:2]
    assert k[my, mx]                              # the subject is on the card
    # the kept pixels are exactly the photo
    out = np.asarray(framing.image)
    assert out[k].std() > 10


def test_card_has_a_mat_frame_on_the_designed_backdrop(lite) -> None:
    photo = _photo("motorcycle")
    img = photo.image()
    res = product.run(ProductRequest(image=img, product_box=photo.box(img.size), options=FAST), lite)
    assert res.layout == "card"
    out = np.asarray(res.images[0]).astype(int)
    ys, xs = np.nonzero(res.keep_mask >= 128)
    y0, x0, x1 = ys.min(), xs.min(), xs.max()
    mat = out[y0 - 8:y0 - 3, x0 + 20:x1 - 20].reshape(-1, 3)
    assert mat.mean() > 200 and mat.std(axis=0).max() < 12     # a light, even mat above the card


# -- notices come from the same data as the picture -------------------------------------------
def test_people_notice_counts_the_final_keep_mask(lite, monkeypatch) -> None:
    from studio.vision.faces import FaceBox

    img = load_image(_photo("basketball_group").image()).image
    found = lite.vision.detect_faces(img)
    right = FaceBox(box=(505, 25, 590, 120), score=0.9, landmarks=None, backend=found[0].backend)
    faces = [found[0], right]
    monkeypatch.setattr(lite.vision, "detect_faces", lambda _img: list(faces))
    res = person.run(PersonRequest(image=img, options=FAST), lite)
    shown = [common.face_shown(f.box, _framing_of(res, img), res.keep_mask) for f in faces]
    left = [n for n in res.notices if n.key == "workflow.others_left_out"]
    kept = [n for n in res.notices if n.key == "workflow.all_people_kept"]
    if all(shown):
        assert kept and kept[0].fields["n"] == 2 and not left
    else:
        assert left and left[0].fields["n"] == shown.count(False) and not kept
    # a card shows the whole photo: it must then say everyone is in the ad, never "left out"
    from studio.vision import confidence

    real = confidence.assess
    monkeypatch.setattr(confidence, "assess", lambda *a, **k: type(real(*a, **k))(0.1, {"size": 0.1}))
    card = person.run(PersonRequest(image=img, options=FAST), lite)
    assert card.layout in common.FALLBACKS
    assert not any(n.key == "workflow.others_left_out" for n in card.notices)
    assert [n.fields["n"] for n in card.notices if n.key == "workflow.all_people_kept"] == [2]


def _framing_of(res, img):
    st = res.records[0].settings
    return common.Framing(img, np.zeros((1, 1), np.uint8), st["upscale"], tuple(st["offset"]), None)


def test_people_notices_helper_follows_the_mask() -> None:
    from studio.vision.faces import FaceBox

    faces = [FaceBox(box=(10, 10, 50, 50), score=1, landmarks=None, backend="x"),
             FaceBox(box=(100, 10, 140, 50), score=1, landmarks=None, backend="x"),
             FaceBox(box=(200, 10, 240, 50), score=1, landmarks=None, backend="x")]
    fr = common.Framing(Image.new("RGB", (300, 100)), np.zeros((100, 300), np.uint8), 1.0, (0.0, 0.0), None)
    keep = np.zeros((100, 300), np.uint8)
    keep[:, :150] = 255
    stale = [common.Notice("workflow.others_left_out", {"n": 2})]
    out = common.people_notices(faces, fr, keep, stale)
    assert [(n.key, n.fields["n"]) for n in out] == [("workflow.others_left_out", 1)]
    keep[:] = 255
    out = common.people_notices(faces, fr, keep, stale)
    assert [(n.key, n.fields["n"]) for n in out] == [("workflow.all_people_kept", 3)]
    assert masks.coverage(keep) == 1.0


# -- the tabs' brush -----------------------------------------------------------------------------
def test_tab_brush_layers_become_strokes_and_reach_the_request(settings) -> None:
    from studio.ui.tabs import ads

    size = (600, 400)
    layer = np.zeros((200, 300, 4), np.uint8)            # the canvas may be smaller: stretched
    layer[150:190, 60:210] = (255, 0, 0, 255)            # red = remove (the saucer's front)
    layer[5:20, 250:280] = (0, 255, 0, 255)              # green = keep
    value = {"background": np.zeros((200, 300, 4), np.uint8), "layers": [layer], "composite": None}
    s = ads.brush_strokes(value, size)
    assert s.shape == (400, 600)
    assert (s[310:370, 130:410] == STROKE_REMOVE).all() and (s[15:35, 505:555] == STROKE_KEEP).all()
    assert ads.brush_strokes({"background": None, "layers": [np.zeros((20, 30, 4), np.uint8)]}, size) is None
    assert ads.brush_strokes(None, size) is None
    loaded = load_image(data.coffee())
    form = ads.AdForm(upload="x", industry="cafe", style="studio", box="70,10,490,395", brush=value)
    req = ads.build_request(ads.SPECS["product"], form, loaded, "ko")
    assert req.strokes is not None and (req.strokes == STROKE_REMOVE).sum() > 10000
    req = ads.build_request(ads.SPECS["advanced"], form, loaded, "ko")
    assert req.strokes is not None
    assert not hasattr(ads.build_request(ads.SPECS["person"], form, loaded, "ko"), "strokes")


def test_product_tab_has_the_brush_with_stable_ids(settings) -> None:
    from studio.ui.app import build_app

    svc = build_services(settings.with_(engine="lite"))
    try:
        demo = build_app(svc)
        ids = {getattr(b, "elem_id", None): b for b in demo.blocks.values()}
        for wf in ("product", "advanced"):
            ed = ids[f"{wf}-brush"]
            assert type(ed).__name__ == "ImageEditor" and ids[f"{wf}-box"] is not None
            assert [c.lower() for c in ed.brush.colors] == ["#00ff00", "#ff0000"] and ed.brush.color_mode == "fixed"
        assert ids["person-brush-panel"].visible is False and ids["product-brush-panel"].visible is not False
    finally:
        svc.store.close()
