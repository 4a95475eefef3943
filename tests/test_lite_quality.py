"""Issue 11: the lite engine never hands over a broken ad.

Preview truth, framing anchor, upscale cap (more tests below are added with their features).
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from skimage import data

from studio.config import Settings
from studio.schema import AdvancedRequest, GenerationOptions, PersonRequest, ProductRequest
from studio.services import build_services
from studio.vision import masks
from studio.vision.io import load_image
from studio.workflows import advanced, common, person, product, registry

FAST = GenerationOptions(steps=2, seed=3, num_images=1)


@pytest.fixture
def lite(settings: Settings):
    svc = build_services(settings.with_(engine="lite"))
    yield svc
    svc.store.close()


@pytest.mark.parametrize("engine", ["lite", "tiny"])
def test_preview_mask_is_the_generation_mask(settings: Settings, engine: str) -> None:
    svc = build_services(settings.with_(engine=engine))
    astro = load_image(data.astronaut()).image
    cup = load_image(data.coffee()).image
    cases = [(person, PersonRequest(image=astro, sns_size="ig_portrait", options=FAST)),
             (product, ProductRequest(image=cup, product_box=(90, 20, 520, 380), options=FAST)),
             (advanced, AdvancedRequest(image=astro, product_box=(330, 330, 500, 500), sns_size="ig_square",
                                        options=FAST))]
    for module, req in cases:
        faces, shown = registry.preview_keep(req, svc)
        res = module.run(req, svc)
        assert res.source_keep is not None and np.array_equal(shown, res.source_keep), module.__name__
        assert len(faces) == len(res.faces) and shown.max() == 255
        if res.layout == "cutout":
            # ...and that upload mask, carried into the frame, is exactly what the ad kept
            plan = registry.preview_plan(req, svc)
            sns = svc.presets.sns(req.sns_size)
            framing = common.cutout_framing(req.image, (sns.width, sns.height), plan)
            assert np.array_equal(plan.keep_for(framing), res.keep_mask), module.__name__
    svc.store.close()


def test_upscale_cap_composes_small_subjects_smaller(lite) -> None:
    # a 200x150 cup in a 1080x1350 ad would have to be enlarged about 5x to fill the frame
    cup = load_image(data.coffee()).image.resize((200, 133), Image.Resampling.LANCZOS)
    res = product.run(ProductRequest(image=cup, product_box=(30, 6, 173, 127), options=FAST), lite)
    st = res.records[0].settings
    assert st["upscale"] <= product.PRODUCT_MAX_UPSCALE + 1e-6   # products: up to 3x, sharpened (issue 18p)
    assert any(n.key == "lite.small_subject" for n in res.notices)
    # whatever the layout, what is kept is at most the product cap (cut-out) or card cap its size in the upload
    cap = product.PRODUCT_MAX_UPSCALE if res.layout == "cutout" else product.CARD_MAX_UPSCALE
    box = masks.mask_stats(masks.binarize(res.keep_mask)).bbox
    src = masks.mask_stats(masks.binarize(res.source_keep)).bbox if res.layout == "cutout" else (0, 0, 200, 133)
    assert box is not None and src is not None
    assert box[2] - box[0] <= cap * (src[2] - src[0]) + 4 and box[3] - box[1] <= cap * (src[3] - src[1]) + 4


def test_geometry_cap_and_anchors() -> None:
    # crop would enlarge 4x: capped to 1.5x and centred
    g = common.frame_geometry((300, 300), (1200, 1200), (50, 50, 250, 250), margin=0.1)
    assert g.crop is None and abs(g.scale - 1.5) < 1e-9
    # a bust cut by the photo's bottom stays on the ad's bottom, one cut by the left on the left
    g = common.frame_geometry((400, 300), (1080, 1350), (100, 40, 300, 300), margin=0.1, anchors=("bottom",))
    assert abs(g.offset[1] + 300 * g.scale - 1350) <= 1
    g = common.frame_geometry((400, 300), (1080, 1350), (0, 40, 200, 300), margin=0.1, anchors=("left", "bottom"))
    assert g.offset[0] == 0 and abs(g.offset[1] + 300 * g.scale - 1350) <= 1


def test_framing_anchor_keeps_a_bust_on_the_bottom_edge(lite) -> None:
    # grace-hopper-like bust: the astronaut cropped so her body runs off the bottom
    astro = load_image(data.astronaut()).image.crop((60, 0, 460, 330))
    res = person.run(PersonRequest(image=astro, sns_size="ig_portrait", options=FAST), lite)
    keep = res.keep_mask >= 128
    assert keep[-3:].any(axis=0).sum() > 0.2 * keep.shape[1], "the body must reach the ad's bottom edge"


def test_scene_words_choose_the_backdrop_and_are_reported(lite) -> None:
    from studio.engines.backdrops import scene_from_words

    c = scene_from_words("따뜻한 우드 테이블 위에 라떼")
    assert c.kind == "wood" and c.palette and "우드" in c.used and "따뜻한" in c.used and "라떼" in c.unused
    assert scene_from_words("white marble, morning").kind == "marble"
    assert scene_from_words("린넨 천 위").kind == "linen"
    assert scene_from_words("야외 공원").kind == "bokeh"
    cup = load_image(data.coffee()).image
    wood = product.run(ProductRequest(image=cup, product_box=(70, 10, 490, 395), prompt_ko="따뜻한 우드 테이블",
                                      options=FAST), lite)
    marble = product.run(ProductRequest(image=cup, product_box=(70, 10, 490, 395), prompt_ko="대리석",
                                        options=FAST), lite)
    keys = [n.key for n in wood.notices]
    assert "lite.scene.used" in keys
    # the surface under the cup: wood is warm brown (R > B clearly), marble is near-grey
    floor_w = np.asarray(wood.images[0])[-120:-20, 40:-40].reshape(-1, 3).mean(axis=0)
    floor_m = np.asarray(marble.images[0])[-120:-20, 40:-40].reshape(-1, 3).mean(axis=0)
    assert floor_w[0] - floor_w[2] > 40 and abs(floor_m[0] - floor_m[2]) < 25


def test_unsure_cutout_falls_back_to_a_card_with_a_notice(lite) -> None:
    # a busy scene: GrabCut of the squirrel on its branch is not trusted
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from photoset import load_set

    photo = next(p for p in load_set() if p.name == "motorcycle")
    img = photo.image()
    res = product.run(ProductRequest(image=img, product_box=photo.box(img.size), options=FAST), lite)
    assert res.layout in ("card", "extend") and res.confidence is not None and res.confidence < 0.5
    assert any(n.key.startswith("lite.fallback.") for n in res.notices)
    # the whole photo is kept exactly, as a card
    keep = res.keep_mask == 255
    assert np.array_equal(np.asarray(res.images[0])[keep], np.asarray(res.framed)[keep])
    assert 0.2 < keep.mean() < 0.9


def _disc_on_green(size: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """A red product on a green screen with a soft (antialiased) edge, and its alpha."""
    import cv2

    yy, xx = np.mgrid[:size, :size]
    d = np.hypot(xx - size / 2, yy - size / 2)
    alpha = np.clip((size * 0.3 - d) / 4.0 + 0.5, 0, 1)           # a 4 px soft edge
    red, green = np.array([200, 30, 30], float), np.array([40, 210, 60], float)
    img = alpha[..., None] * red + (1 - alpha[..., None]) * green
    return np.clip(img + 0.5, 0, 255).astype(np.uint8), (alpha * 255).astype(np.uint8)


def test_edge_clean_removes_the_colour_halo() -> None:
    img, alpha = _disc_on_green()
    keep = masks.feather(masks.binarize(masks.dilate(alpha, 2)), 3)   # a generous soft cut-out edge
    band = (keep > 0) & (keep < 255)
    a = keep[band].astype(float)[:, None] / 255.0
    red, grey = np.array([200, 30, 30], float), np.array([128, 128, 128], float)
    ideal = a * red + (1 - a) * grey          # the product's edge over a new grey backdrop

    def halo(src: np.ndarray) -> float:     # colour distance along the edge of the composite
        return float(np.linalg.norm(a * src[band].astype(float) + (1 - a) * grey - ideal, axis=1).mean())

    cleaned = np.asarray(common.edge_clean(Image.fromarray(img), keep))
    before, after = halo(img), halo(cleaned)
    assert after < 0.5 * before, (before, after)
    assert np.array_equal(cleaned[keep == 255], img[keep == 255])      # kept pixels untouched


def test_lite_ad_edge_has_no_green_fringe(lite) -> None:
    img, alpha = _disc_on_green()
    res = product.run(ProductRequest(image=Image.fromarray(img), alpha=alpha, sns_size="ig_square",
                                     options=FAST), lite)
    out = np.asarray(res.images[0]).astype(int)
    band = (res.keep_mask > 0) & (res.keep_mask < 255)
    assert band.sum() > 100
    # green excess (G - max(R, B)) along the edge: the old green screen must not show
    framed = np.asarray(res.framed).astype(int)
    fringe_out = np.maximum(out[band][:, 1] - np.maximum(out[band][:, 0], out[band][:, 2]), 0).mean()
    fringe_in = np.maximum(framed[band][:, 1] - np.maximum(framed[band][:, 0], framed[band][:, 2]), 0).mean()
    assert fringe_out < 0.5 * fringe_in + 1, (fringe_in, fringe_out)


def test_false_faces_are_dropped_real_ones_kept() -> None:
    """A dog's furry chest fools OpenCV's default face cascade (it is skin-coloured); the second,
    differently trained detector rejects it. Real faces (the astronaut, Grace Hopper's portrait,
    the small faces of the football player and the basketball player) are kept."""
    import sys
    from pathlib import Path

    from studio.vision.faces import FaceDetector

    sys.path.insert(0, str(Path(__file__).parent))
    from photoset import load_set

    photos = {p.name: np.asarray(p.image()) for p in load_set()}
    raw = FaceDetector.from_folder(Path("/nonexistent"), verify=False)
    checked = FaceDetector.from_folder(Path("/nonexistent"))
    assert raw(photos["dog"]), "the raw detector offers a false face on this photo"
    assert checked(photos["dog"]) == []
    for name in ("astronaut", "grace_hopper", "messi", "basketball_group"):
        faces = checked(photos[name])
        assert len(faces) == 1, name
        x0, y0, x1, y1 = faces[0].box
        assert 0.7 < (x1 - x0) / (y1 - y0) < 1.4
    # a skin-coloured hand-sized patch on the photo is not a face either
    astro = photos["astronaut"].copy()
    astro[380:470, 400:470] = (224, 172, 140)
    assert len(checked(astro)) == 1


def test_palette_leans_towards_the_subject() -> None:
    red = Image.new("RGB", (100, 100), (200, 30, 30))
    keep = np.zeros((100, 100), np.uint8)
    keep[20:80, 20:80] = 255
    pal = common.harmonised_palette(["#8090a0", "#d0d0d0"], red, keep)
    before = [np.array([int(c[i:i + 2], 16) for i in (1, 3, 5)]) for c in ["#8090a0", "#d0d0d0"]]
    after = [np.array([int(c[i:i + 2], 16) for i in (1, 3, 5)]) for c in pal]
    for b, a in zip(before, after):
        assert (a[0] - a[2]) > (b[0] - b[2])          # warmer: towards the red subject
        assert abs(int(a.mean()) - int(b.mean())) < 25  # about as light as before


def _photo(name: str):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from photoset import load_set

    photo = next(p for p in load_set() if p.name == name)
    if not photo.available():
        pytest.skip(f"{photo.package} is not installed (scripts/test.sh installs it)")
    return photo


def _grabcut_keep(name: str) -> tuple[np.ndarray, np.ndarray]:
    from studio.vision.matting import grabcut_cutout

    photo = _photo(name)
    rgb = np.asarray(photo.image())
    cut = grabcut_cutout(rgb, photo.box((rgb.shape[1], rgb.shape[0])))
    # what Plan.keep_for makes of a cut-out: binarised, pulled in 1 px, a thin feather
    return rgb, masks.feather(masks.erode(masks.binarize(cut), 1), 2)


def test_fur_edge_gets_a_soft_alpha_and_a_smooth_edge_stays_crisp() -> None:
    from studio.vision.matting import soft_edges

    rgb, keep = _grabcut_keep("dog")
    out = soft_edges(rgb, keep)
    soft_before = int(((keep > 0) & (keep < 255)).sum())
    soft_after = int(((out > 0) & (out < 255)).sum())
    assert soft_after > soft_before + 2000              # the fur became a matte, not a line
    band = 2 * max(4, int(round(0.02 * max(keep.shape))))
    interior = masks.erode(masks.binarize(keep), band) > 0
    assert interior.sum() > 10000 and (out[interior] == 255).all()   # the body is kept exactly
    changed = out != keep
    assert not (changed & interior).any()
    rgb, keep = _grabcut_keep("coffee")
    assert np.array_equal(soft_edges(rgb, keep), keep)  # a cup's clean contour is left as cut


def test_lite_plan_applies_soft_edges_and_keeps_the_interior(lite) -> None:
    photo = _photo("dog")
    img = photo.image()
    req = ProductRequest(image=img, product_box=photo.box(img.size), options=FAST)
    plan = registry.preview_plan(req, lite)
    assert plan.soft_alpha                                # Lite composites: it gets soft edges
    sns = lite.presets.sns(req.sns_size)
    framing = common.frame(img, (sns.width, sns.height), plan.focus, margin=plan.margin, anchors=plan.anchors)
    soft = plan.keep_for(framing)
    plan.soft_alpha = False
    crisp = plan.keep_for(framing)
    assert ((soft > 0) & (soft < 255)).sum() > ((crisp > 0) & (crisp < 255)).sum() + 2000
    assert (soft[crisp == 255] == 255).mean() > 0.9       # only the edge band changed...
    inner = masks.erode(masks.binarize(crisp), 40) > 0
    assert (soft[inner] == 255).all()                     # ...and the body is exact


def _two_players(lite, monkeypatch):
    """basketball1.png: two players. The offline detector finds the frontal face on the left; the
    right player is in profile, so his face box is given by hand (the photo is real, the box is ours)."""
    from studio.vision.faces import FaceBox

    img = load_image(_photo("basketball_group").image()).image
    found = lite.vision.detect_faces(img)
    assert len(found) >= 1 and found[0].box[0] < 200           # the left player's face
    right = FaceBox(box=(505, 25, 590, 120), score=0.9, landmarks=None, backend=found[0].backend)
    faces = [found[0], right]
    monkeypatch.setattr(lite.vision, "detect_faces", lambda _img: list(faces))
    return img, faces


def _share(keep: np.ndarray, box) -> float:
    x0, y0, x1, y1 = box
    return float((keep[y0:y1, x0:x1] >= 128).mean())


def test_other_people_are_left_out_unless_the_owner_keeps_them_all(lite, monkeypatch) -> None:
    img, faces = _two_players(lite, monkeypatch)
    one = person.run(PersonRequest(image=img, options=FAST), lite)
    assert _share(one.source_keep, faces[0].box) > 0.9
    assert _share(one.source_keep, faces[1].box) < 0.05           # the other player is not kept
    assert _share(one.source_keep, (520, 200, 620, 400)) < 0.05    # nor his shirt
    left = [n for n in one.notices if n.key == "workflow.others_left_out"]
    if one.layout == "cutout":
        assert left and left[0].fields["n"] == 1
    else:   # a card shows the whole photo: the notice counts what the ad shows (issue 18)
        assert not left and [n.fields["n"] for n in one.notices if n.key == "workflow.all_people_kept"] == [2]
        left = [common.Notice("workflow.others_left_out", {"n": 1})]
    assert "Keep everyone" in left[0].text("en") and "모두 남기" in left[0].text("ko")
    both = person.run(PersonRequest(image=img, keep_all_people=True, options=FAST), lite)
    assert _share(both.source_keep, faces[0].box) > 0.9 and _share(both.source_keep, faces[1].box) > 0.9
    assert (both.source_keep >= 128).sum() > (one.source_keep >= 128).sum() + 0.8 * 85 * 95
    assert any(n.key == "workflow.all_people_kept" for n in both.notices)
    assert not any(n.key == "workflow.others_left_out" for n in both.notices)
    assert both.records[0].settings["keep_all_people"] is True


# basketball1.png (opencv-doc): both players' hands are in view; boxes drawn by looking at the photo
HANDS = {"left player's hand on the ball": (125, 138, 165, 170),
         "right player's raised hand": (432, 215, 480, 268)}


def _overlap(a, b) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    return ix * iy / max(1, min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1])))


def test_no_face_is_offered_on_a_hand(lite) -> None:
    img = load_image(_photo("basketball_group").image()).image
    faces = lite.vision.detect_faces(img)
    assert faces and _overlap(faces[0].box, (73, 92, 112, 132)) > 0.5     # the real face is found...
    for what, hand in HANDS.items():
        assert all(_overlap(f.box, hand) < 0.2 for f in faces), what   # ...and no hand is a face
        # the hand alone, as an owner's close crop, enlarged: still no face
        x0, y0, x1, y1 = hand
        crop = img.crop((x0 - 25, y0 - 25, x1 + 25, y1 + 25))
        crop = crop.resize((crop.width * 4, crop.height * 4), Image.Resampling.LANCZOS)
        assert lite.vision.detect_faces(crop) == [], what
    grey = load_image(_photo("messi").image().convert("L").convert("RGB")).image
    found = lite.vision.detect_faces(grey)
    assert len(found) == 1 and _overlap(found[0].box, (225, 92, 265, 132)) > 0.5  # the face, not a leg


def test_the_owner_asks_for_everyone_in_the_tab_and_the_cli() -> None:
    import argparse
    from types import SimpleNamespace

    from studio.cli import ad as cli_ad
    from studio.ui.tabs.ads import SPECS, AdForm, build_request

    loaded = SimpleNamespace(image=Image.new("RGB", (64, 64)), alpha=None)
    for wf in ("person", "advanced"):
        assert build_request(SPECS[wf], AdForm(all_people=True), loaded, "en").keep_all_people is True
        assert build_request(SPECS[wf], AdForm(), loaded, "en").keep_all_people is False
    parser = argparse.ArgumentParser()
    cli_ad.add_arguments(parser)
    base = ["--mode", "person", "--image", "x.png", "--out", "o"]
    assert parser.parse_args(base + ["--all-people"]).all_people is True
    assert parser.parse_args(base).all_people is False
