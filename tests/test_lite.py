"""Lite engine: sizes, kept pixels, seeds, every backdrop kind, shadow, reflection, placement, cancel."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
from PIL import Image, ImageDraw

from studio.engines.backdrops import KINDS, render_backdrop
from studio.engines.base import Engine, InpaintJob
from studio.engines.lite import LiteEngine, create_engine, place_subject, subject_box
from studio.errors import CancelledError, InputError
from studio.runtime.jobs import CancelToken

W, H = 360, 450          # small SNS-like portrait canvas keeps the suite fast


def coffee_with_mask() -> tuple[Image.Image, Image.Image]:
    img = Image.fromarray(skimage.data.coffee())
    mask = Image.new("L", img.size, 255)
    ImageDraw.Draw(mask).ellipse((73, 57, 483, 393), fill=0)          # the cup and saucer
    return img, mask


@pytest.fixture
def engine(settings) -> LiteEngine:
    return create_engine(settings)


@pytest.fixture
def placed():
    img, mask = coffee_with_mask()
    return place_subject(img, mask, (W, H))


def job_for(placed, **kw) -> InpaintJob:
    base = dict(image=placed.image, mask=placed.mask, prompt="", width=W, height=H, seed=0,
                industry="cafe", style="studio", subject="product")
    base.update(kw)
    return InpaintJob(**base)


def test_engine_protocol_and_caps(engine):
    assert isinstance(engine, Engine)
    assert engine.name == "lite"
    assert engine.caps.inpaint and not engine.caps.changes_outfit and not engine.caps.uses_pose_control
    assert not engine.caps.needs_gpu and not engine.caps.needs_weights
    assert getattr(engine.caps, "work_megapixels", None) is None       # works at the output size


def test_output_count_size_and_kept_pixels_identical(engine, placed):
    outs = engine.inpaint(job_for(placed, num_images=2, extras={"reflection": True}))
    assert len(outs) == 2
    src = np.asarray(placed.image)
    keep = np.asarray(placed.mask) == 0
    assert keep.sum() > 1000
    for out in outs:
        assert out.size == (W, H) and out.mode == "RGB"
        arr = np.asarray(out)
        assert np.array_equal(arr[keep], src[keep])
        assert np.abs(arr[~keep].astype(int) - src[~keep].astype(int)).mean() > 5   # background changed


def test_soft_mask_blends_between_photo_and_backdrop(engine, placed):
    m = np.asarray(placed.mask).copy()
    m[m == 0] = 128                                              # half-keep everywhere
    job = job_for(placed, mask=Image.fromarray(m, "L"), extras={"shadow": False})
    out = np.asarray(engine.inpaint(job)[0]).astype(int)
    full = np.asarray(engine.inpaint(job_for(placed, mask=Image.new("L", (W, H), 255)))[0]).astype(int)
    src = np.asarray(placed.image).astype(int)
    sel = m == 128
    mid = (src[sel] + full[sel]) / 2
    assert np.abs(out[sel] - mid).mean() < 3


def test_seeds_differ_and_same_seed_repeats(engine, placed):
    for style in ("studio", "pop", "dreamy", "premium"):
        a = np.asarray(engine.inpaint(job_for(placed, style=style, seed=1))[0]).astype(int)
        b = np.asarray(engine.inpaint(job_for(placed, style=style, seed=2))[0]).astype(int)
        a2 = np.asarray(engine.inpaint(job_for(placed, style=style, seed=1))[0]).astype(int)
        assert np.array_equal(a, a2)
        assert np.abs(a - b).mean() > 4, style


@pytest.mark.parametrize("layout", ["tabletop", "wall"])
def test_every_backdrop_kind_renders_sensibly(layout, presets):
    for kind in KINDS:
        for industry in ("cafe", "fitness", "nail"):
            bd = render_backdrop(kind, (W, H), presets.industry(industry).palette, seed=3, layout=layout)
            rgb = bd.rgb
            assert rgb.shape == (H, W, 3) and rgb.dtype == np.float32
            assert np.isfinite(rgb).all()
            assert rgb.min() >= 0.0 and rgb.max() <= 1.0
            assert 0.08 < rgb.mean() < 0.97, (kind, industry)
            # not a flat fill, not noise: some variation, and neighbouring pixels mostly agree
            assert rgb.std() > 0.01, (kind, industry)
            assert np.abs(np.diff(rgb, axis=1)).mean() < 0.05, (kind, industry)


def test_backdrop_kind_follows_style_then_industry(engine, placed):
    assert engine.backdrop_for(job_for(placed, style="premium"))[0] == "marble"
    assert engine.backdrop_for(job_for(placed, style="no_such_style"))[0] == "wood"       # cafe's backdrop
    assert engine.backdrop_for(job_for(placed, extras={"backdrop": "linen"}))[0] == "linen"
    kind, palette, _ = engine.backdrop_for(job_for(placed, industry="fitness"))
    assert palette[0] == "#111111"


def test_contact_shadow_darkens_beneath_the_subject(engine, placed):
    x0, y0, x1, y1 = subject_box(placed.mask)
    band = (slice(y1 + 2, min(H, y1 + 12)), slice((x0 + x1) // 2 - 20, (x0 + x1) // 2 + 20))
    far = (slice(y1 + 2, min(H, y1 + 12)), slice(2, 12))
    on = np.asarray(engine.inpaint(job_for(placed, extras={"shadow": True}))[0]).astype(float)
    off = np.asarray(engine.inpaint(job_for(placed, extras={"shadow": False}))[0]).astype(float)
    assert on[band].mean() < off[band].mean() - 8
    assert abs(on[far].mean() - off[far].mean()) < 3                 # the shadow stays local


def test_reflection_shows_the_subject_below_it(engine, placed):
    y1 = subject_box(placed.mask)[3]
    rows = slice(y1 + 1, min(H, y1 + 15))
    with_r = np.asarray(engine.inpaint(job_for(placed, extras={"reflection": True, "shadow": False}))[0])
    without = np.asarray(engine.inpaint(job_for(placed, extras={"shadow": False}))[0])
    diff = np.abs(with_r[rows].astype(int) - without[rows].astype(int)).mean()
    assert diff > 3
    # the reflection is mostly red-brown like the saucer
    delta = with_r[rows].astype(int) - without[rows].astype(int)
    assert delta[..., 0].mean() > delta[..., 2].mean()


def test_person_keeps_person_and_gets_wall_backdrop(engine):
    img = Image.fromarray(skimage.data.astronaut()).resize((W, W))
    mask = Image.new("L", img.size, 255)
    ImageDraw.Draw(mask).rectangle((100, 40, 260, W), fill=0)
    job = InpaintJob(image=img, mask=mask, prompt="", width=W, height=W, industry="fashion",
                     style="premium", subject="person")
    out = np.asarray(engine.inpaint(job)[0])
    keep = np.asarray(mask) == 0
    assert np.array_equal(out[keep], np.asarray(img)[keep])
    assert not np.array_equal(out[~keep], np.asarray(img)[~keep])


def test_cancel_is_honoured_between_stages(engine, placed):
    token = CancelToken()
    seen: list[tuple[int, int, str]] = []

    def progress(step: int, total: int, desc: str = "") -> None:
        seen.append((step, total, desc))
        if step == 2:
            token.cancel()

    with pytest.raises(CancelledError):
        engine.inpaint(job_for(placed, num_images=3), progress=progress, cancel=token)
    assert [s for s, _, _ in seen] == [1, 2]
    assert all(t == 9 for _, t, _ in seen) and all(d for _, _, d in seen)


def test_progress_reports_every_stage(engine, placed):
    seen: list[int] = []
    engine.inpaint(job_for(placed, num_images=2), progress=lambda s, t, d="": seen.append(s))
    assert seen == [1, 2, 3, 4, 5, 6]


def test_place_subject_default_and_target_box():
    img, mask = coffee_with_mask()
    p = place_subject(img, mask, (1080, 1350))
    x0, y0, x1, y1 = subject_box(p.mask)
    assert abs((x0 + x1) / 2 - 540) <= 2                     # centred
    assert abs(y1 - int(0.78 * 1350)) <= 2                   # base on the lower-third line
    assert y0 > 0.25 * 1350                                  # room for a headline
    # the transform moves points the way the pixels moved
    sx0, sy0, sx1, sy1 = p.placement.src_box
    assert np.allclose(p.placement.apply_point(sx0, sy0), (x0, y0), atol=2)
    assert np.allclose(p.placement.apply_point(sx1, sy1), (x1, y1), atol=2)
    # a keep-mask moved with the transform matches the placed mask
    moved = np.asarray(p.placement.apply_mask(mask, fill=255)) < 128
    assert (moved == (np.asarray(p.mask) < 128)).mean() > 0.999
    q = place_subject(img, mask, (1080, 1350), placement={"box": [600, 100, 1000, 500], "anchor": "center"})
    qx0, qy0, qx1, qy1 = subject_box(q.mask)
    assert qx0 >= 598 and qx1 <= 1002 and qy0 >= 98 and qy1 <= 502
    assert abs((qy0 + qy1) / 2 - 300) <= 2


def test_place_subject_rejects_empty_mask():
    img, _ = coffee_with_mask()
    with pytest.raises(InputError):
        place_subject(img, Image.new("L", img.size, 255), (W, H))


def test_job_at_other_size_is_resized(engine, placed):
    job = job_for(placed, width=200, height=250)
    out = engine.inpaint(job)[0]
    assert out.size == (200, 250)
