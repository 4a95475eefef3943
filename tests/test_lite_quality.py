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
from studio.workflows import advanced, common, person, product

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
        faces, shown = common.preview_keep(req, svc)
        res = module.run(req, svc)
        assert res.source_keep is not None and np.array_equal(shown, res.source_keep), module.__name__
        assert len(faces) == len(res.faces) and shown.max() == 255
        if res.layout == "cutout":
            # ...and that upload mask, carried into the frame, is exactly what the ad kept
            plan = common.preview_plan(req, svc)
            sns = svc.presets.sns(req.sns_size)
            framing = common.frame(req.image, (sns.width, sns.height), plan.focus, margin=plan.margin,
                                   anchors=plan.anchors)
            assert np.array_equal(plan.keep_for(framing), res.keep_mask), module.__name__
    svc.store.close()


def test_upscale_cap_composes_small_subjects_smaller(lite) -> None:
    # a 200x150 cup in a 1080x1350 ad would have to be enlarged about 5x to fill the frame
    cup = load_image(data.coffee()).image.resize((200, 133), Image.Resampling.LANCZOS)
    res = product.run(ProductRequest(image=cup, product_box=(30, 6, 173, 127), options=FAST), lite)
    st = res.records[0].settings
    assert st["upscale"] <= common.MAX_UPSCALE + 1e-6
    assert any(n.key == "lite.small_subject" for n in res.notices)
    box = masks.mask_stats(masks.binarize(res.keep_mask)).bbox
    assert box is not None and box[2] - box[0] <= 1.5 * 143 + 4


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
