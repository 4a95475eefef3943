"""SNS crops keep the subject: a 9:16 story crop of a wide product keeps both of its sides."""

from __future__ import annotations

import numpy as np
from PIL import Image

from studio.render.crop import smart_crop, subject_box


def _scene(w: int = 1080, h: int = 1350, box=(90, 520, 990, 880)) -> tuple[Image.Image, np.ndarray]:
    yy, xx = np.mgrid[0:h, 0:w]
    arr = np.stack([(xx * 200 // w + 30), (yy * 120 // h + 80), np.full_like(xx, 150)], -1).astype(np.uint8)
    keep = np.zeros((h, w), np.uint8)
    x0, y0, x1, y1 = box
    arr[y0:y1, x0:x1] = (230, 20, 20)
    keep[y0:y1, x0:x1] = 255
    return Image.fromarray(arr), keep


def _red_box(img: Image.Image) -> tuple[int, int, int, int] | None:
    a = np.asarray(img).astype(int)
    red = (a[..., 0] > 200) & (a[..., 1] < 60) & (a[..., 2] < 60)
    ys, xs = np.nonzero(red)
    return (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) if xs.size else None


def test_story_crop_keeps_both_sides_of_a_wide_product() -> None:
    img, keep = _scene()
    out = smart_crop(img, 1080, 1920, keep=keep)
    assert out.size == (1080, 1920)
    box = _red_box(out)
    assert box is not None
    x0, y0, x1, y1 = box
    assert x0 > 5 and x1 < 1075, "a side of the product was cut"
    # the whole product, undistorted: same aspect as in the photo
    assert abs((x1 - x0) / (y1 - y0) - 900 / 360) < 0.05


def test_the_old_way_cut_the_sides_and_the_focus_box_alone_now_keeps_them() -> None:
    img, keep = _scene()
    from studio.render.crop import crop_window

    x0, _, x1, _ = crop_window(1080, 1350, 1080, 1920, (90, 520, 990, 880))
    assert x1 - x0 < 900  # the largest 9:16 window is narrower than the product
    out = smart_crop(img, 1080, 1920, focus_box=(90, 520, 990, 880))
    bx0, _, bx1, _ = _red_box(out)
    assert bx0 > 5 and bx1 < 1075


def test_a_subject_that_fits_is_cropped_around_not_padded() -> None:
    img, keep = _scene(box=(600, 300, 900, 700))
    out = smart_crop(img, 1080, 1920, keep=keep)
    x0, y0, x1, y1 = _red_box(out)
    # enlarged from the 759-wide window to 1080 (crop, no padding): the product is bigger than in the photo
    assert (x1 - x0) > 300 * 1.3 and x0 > 0 and x1 < 1080


def test_subject_box_joins_focus_and_keep() -> None:
    keep = np.zeros((100, 200), np.uint8)
    keep[10:20, 150:190] = 255
    assert subject_box((5, 50, 40, 90), keep, (200, 100)) == (5.0, 10.0, 190.0, 90.0)
    assert subject_box(None, None, (200, 100)) is None
    assert subject_box((1, 2, float("inf"), 4), None, (200, 100)) is None


def test_overlay_story_export_of_a_product_result_keeps_it(services_for_crop=None) -> None:
    """Through the Overlay export: a product result's focus box (from its record) keeps the sides."""
    from studio.render.export import export_all
    from studio.render.overlay import OverlaySpec
    from studio.presets import Presets
    from studio.config import REPO_ROOT

    presets = Presets(REPO_ROOT / "presets")
    img, keep = _scene()
    outs = export_all(img, OverlaySpec(headline=""), [presets.sns("ig_story")], focus_box=(90, 520, 990, 880))
    bx0, _, bx1, _ = _red_box(outs["ig_story"])
    assert bx0 > 5 and bx1 < 1075
