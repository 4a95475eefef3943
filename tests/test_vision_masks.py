"""Mask helpers and paste-back: invariants on synthetic masks and on the astronaut photo."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from skimage import data

from studio.vision import masks
from studio.vision.composite import add_contact_shadow, match_colour, paste_back
from studio.vision.faces import FaceBox


def _disc(w: int = 200, h: int = 160, c: tuple[int, int] = (100, 80), r: int = 40) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return np.where((xx - c[0]) ** 2 + (yy - c[1]) ** 2 <= r * r, 255, 0).astype(np.uint8)


def test_mask_and_inverse_cover_the_image_and_do_not_overlap() -> None:
    m = masks.feather(_disc(), 7)
    inv = masks.invert(m)
    assert np.all(masks.union(m, inv) >= 128)           # together they cover every pixel
    assert np.all(m.astype(int) + inv.astype(int) == 255)
    hard = masks.binarize(m)
    assert not np.any((hard > 0) & (masks.binarize(masks.invert(hard)) > 0))
    assert np.array_equal(masks.intersection(hard, masks.invert(hard)), np.zeros_like(hard))


def test_feather_is_monotone_along_a_ray_and_in_its_input() -> None:
    disc = _disc(r=40)
    f = masks.feather(disc, 9)
    ray = f[80, 100:200].astype(int)                      # from the centre outwards
    assert np.all(np.diff(ray) <= 0)
    assert ray[0] == 255 and ray[-1] == 0
    assert 0 < f[80, 140] < 255                           # the edge itself is soft
    bigger = masks.feather(_disc(r=50), 9)
    assert np.all(bigger.astype(int) >= f.astype(int))    # a larger mask never feathers lower


def test_feather_band_is_exactly_px_wide() -> None:
    disc = _disc(r=40)
    px = 6
    f = masks.feather(disc, px)
    inside = masks.erode(disc, px + 1) > 0
    outside = masks.dilate(disc, px + 1) == 0
    assert np.all(f[inside] == 255)
    assert np.all(f[outside] == 0)


def test_dilate_erode_grow_and_shrink() -> None:
    disc = _disc(r=30)
    assert masks.coverage(masks.dilate(disc, 5)) > masks.coverage(disc) > masks.coverage(masks.erode(disc, 5))
    assert np.array_equal(masks.dilate(disc, 0), disc)


def test_resize_to_engine_uses_multiples_of_16_and_keeps_soft_edges() -> None:
    m = masks.feather(_disc(w=1000, h=750, c=(500, 375), r=200), 12)
    out = masks.resize_to_engine(m, 1000, 750)
    assert out.shape == (752, 1008) and out.dtype == np.uint8
    assert out.shape[0] % 16 == 0 and out.shape[1] % 16 == 0
    assert np.any((out > 0) & (out < 255))
    assert abs(masks.coverage(out) - masks.coverage(m)) < 0.01
    assert masks.engine_size(5, 7) == (16, 16)


def test_coverage_and_stats() -> None:
    m = np.zeros((100, 200), np.uint8)
    m[10:60, 20:120] = 255
    assert masks.coverage(m) == pytest.approx(50 * 100 / 20000)
    st = masks.mask_stats(masks.feather(m, 4))
    assert st.bbox is not None and st.bbox[0] < 20 and st.bbox[2] > 120
    assert 0 < st.soft_fraction < 0.2
    assert masks.mask_stats(np.zeros((4, 4), np.uint8)).empty


def test_face_region_mask_options_nest() -> None:
    face = FaceBox((177, 67, 270, 160), 0.9, None, "haar")
    plain = masks.face_region_mask((512, 512), face, include_hair=False, include_neck=False)
    hair = masks.face_region_mask((512, 512), face, include_hair=True, include_neck=False)
    neck = masks.face_region_mask((512, 512), face, include_hair=False, include_neck=True)
    cx, cy = face.center
    assert plain[int(cy), int(cx)] == 255 and plain[5, 5] == 0
    assert np.all(hair >= plain) and masks.coverage(hair) > masks.coverage(plain)
    assert hair[40, int(cx)] == 255 and plain[40, int(cx)] == 0          # the crown above the box
    assert neck[200, int(cx)] == 255 and plain[200, int(cx)] == 0        # below the chin
    assert masks.mask_stats(hair).bbox[1] < masks.mask_stats(plain).bbox[1]


def test_face_region_mask_follows_eye_line_and_landmarks() -> None:
    lm = np.array([[120, 90], [180, 130], [150, 125], [125, 150], [170, 175]], np.float32)
    tilted = FaceBox((100, 70, 200, 190), 0.9, lm, "yunet")
    m = masks.face_region_mask((300, 300), tilted, include_hair=False)
    for x, y in lm.astype(int):
        assert m[y, x] == 255
    level = FaceBox((100, 70, 200, 190), 0.9, None, "haar")
    assert not np.array_equal(m, masks.face_region_mask((300, 300), level, include_hair=False))


def test_paste_back_keeps_kept_pixels_exactly_outside_the_blend_band() -> None:
    original = data.astronaut()
    generated = Image.new("RGB", (256, 256), (10, 200, 30))   # engine output, smaller: resized up
    face = FaceBox((177, 67, 270, 160), 0.9, None, "haar")
    keep = masks.face_region_mask((512, 512), face, include_hair=True)
    px = 8
    out = np.asarray(paste_back(generated, Image.fromarray(original), keep, feather_px=px))
    assert out.shape == original.shape
    core = masks.erode(keep, px + 1) > 0
    assert core.sum() > 1000
    assert np.array_equal(out[core], original[core])
    far = masks.dilate(keep, px + 1) == 0
    assert np.all(np.abs(out[far].astype(int) - np.array([10, 200, 30])) <= 2)
    band = ~core & ~far
    assert np.any(np.abs(out[band].astype(int) - original[band].astype(int)).sum(-1) > 0)


def test_seamless_and_colour_match_change_the_kept_region_gently() -> None:
    original = data.astronaut()
    generated = np.full_like(original, 60)
    keep = _disc(512, 512, (256, 256), 80)
    out = np.asarray(paste_back(Image.fromarray(generated), Image.fromarray(original), keep,
                                feather_px=4, seamless=True))
    core = masks.erode(keep, 6) > 0
    assert out.shape == original.shape
    assert not np.array_equal(out[core], original[core])      # Poisson moves colours...
    inner = core[:, 1:] & core[:, :-1]                         # ...but keeps the detail, in place:
    grad_out = np.diff(out[:, :, 1].astype(float), axis=1)[inner]
    grad_orig = np.diff(original[:, :, 1].astype(float), axis=1)[inner]
    assert np.corrcoef(grad_out, grad_orig)[0, 1] > 0.8
    darker = match_colour(original, generated, keep, strength=0.5)
    assert darker[core].mean() < original[core].mean()         # surroundings got darker
    assert np.array_equal(darker[~(keep > 0)], original[~(keep > 0)])


def test_contact_shadow_darkens_below_the_product_only() -> None:
    img = np.full((300, 400, 3), 200, np.uint8)
    subj = np.zeros((300, 400), np.uint8)
    subj[100:200, 150:250] = 255
    img[subj > 0] = (180, 30, 30)
    out = np.asarray(add_contact_shadow(Image.fromarray(img), subj, strength=0.6))
    assert np.array_equal(out[subj > 0], img[subj > 0])       # the product itself is untouched
    assert out[203, 200].mean() < img[203, 200].mean() - 20    # floor right under it is darker
    assert np.array_equal(out[20, 20], img[20, 20])            # far away nothing changes
    assert np.array_equal(np.asarray(add_contact_shadow(Image.fromarray(img), subj, 0.0)), img)
