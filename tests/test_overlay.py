"""Overlay rendering: real Hangul glyphs, safe zones, measured contrast, exact export sizes, crops."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data

from studio.errors import StudioError
from studio.render import fonts as fonts_mod
from studio.render.crop import crop_window, smart_crop
from studio.render.export import export_all, export_all_detailed
from studio.render.fonts import Fonts, find_hangul_face
from studio.render.overlay import (OverlaySpec, fit_text, load_layouts, render_overlay, render_overlay_detailed,
                                   wrap_eojeol)

LAYOUTS = ("bottom_bar", "top_banner", "centre_card", "price_badge", "ribbon")


@pytest.fixture(scope="module")
def fonts() -> Fonts:
    return Fonts.default()


def _photo(kind: str, w: int = 1080, h: int = 1350) -> Image.Image:
    if kind == "astronaut":
        return Image.fromarray(data.astronaut()).resize((w, h))
    if kind == "coffee":
        return Image.fromarray(data.coffee()).resize((w, h))
    if kind == "white":
        return Image.new("RGB", (w, h), (255, 255, 255))
    if kind == "grey":  # mid-grey: neither white nor black text alone reaches 4.5 by much
        return Image.new("RGB", (w, h), (122, 122, 122))
    rng = np.random.default_rng(0)  # a harsh black/white checkerboard with noise
    yy, xx = np.mgrid[0:h, 0:w]
    board = (((yy // 9) + (xx // 9)) % 2 * 255).astype(np.uint8)
    noise = rng.integers(0, 60, size=(h, w), dtype=np.uint8)
    arr = np.clip(board.astype(np.int16) - noise + 30, 0, 255).astype(np.uint8)
    return Image.fromarray(np.stack([arr] * 3, axis=2))


def _spec(layout: str, **kw) -> OverlaySpec:
    base = dict(headline="오늘만 바닐라라떼 1+1", sub_copy="직장인을 위한 바닐라라떼를 정성껏 준비했어요.",
                cta="지금 방문해 보세요", layout=layout, badge_text="20%\n할인", ai_label=True)
    base.update(kw)
    return OverlaySpec(**base)


def test_hangul_font_draws_distinct_glyphs(fonts: Fonts) -> None:
    font = fonts.get(48)
    boxes = {ch: font.getbbox(ch) for ch in "가나한글광고힣"}
    masks = {ch: np.asarray(font.getmask(ch)).tobytes() for ch in "가나한글광고힣"}
    tofu = np.asarray(font.getmask("\U0010fffd")).tobytes()
    assert len(set(masks.values())) == len(masks)  # every character has its own shape
    assert tofu not in masks.values()
    assert len(set(boxes.values())) > 2  # glyph bounding boxes differ
    assert fonts.supports("한") and not fonts.supports("\U0010fffd")
    assert fonts.drawable("커피 ☕️ 한 잔 😀") in ("커피 한 잔", "커피 ☕ 한 잔")


def test_rendered_headline_shows_real_glyphs(fonts: Fonts, presets) -> None:
    sns = presets.sns("ig_square")
    img = _photo("white", 1080, 1080)
    outs = []
    for text in ("가가가가", "한글광고", "각각각각"):
        res = render_overlay_detailed(img, OverlaySpec(headline=text, layout="centre_card"), sns, fonts)
        (head,) = [b for b in res.blocks if b.role == "headline"]
        outs.append(head.mask)
        # glyph boxes of the characters of one line differ: split the mask into 4 columns of ink
        cols = np.nonzero(head.mask.max(axis=0) > 0)[0]
        assert cols.size > 0
    assert not np.array_equal(outs[0], outs[1]) and not np.array_equal(outs[0], outs[2])
    ink = [int((m > 128).sum()) for m in outs]
    assert len(set(ink)) == 3  # different characters cover different numbers of pixels


def test_no_hangul_font_is_a_clear_korean_error(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(fonts_mod, "_candidates", lambda weight: [tmp_path / "nope.ttf"])
    find_hangul_face.cache_clear()
    try:
        with pytest.raises(StudioError) as ei:
            find_hangul_face("bold")
        assert ei.value.key == "render.no_hangul_font"
        assert "한글 글꼴" in ei.value.message("ko") and "manimgx-fonts-cjk" in ei.value.message("ko")
    finally:
        find_hangul_face.cache_clear()


def test_line_breaks_keep_korean_words_whole(fonts: Fonts) -> None:
    text = "직장인을 위한 바닐라라떼를 정성껏 준비했어요 오늘도 좋은 하루 보내세요"
    font = fonts.get(40)
    lines = wrap_eojeol(text, font, 300)
    assert lines is not None and len(lines) > 2
    assert " ".join(lines) == text
    words = set(text.split())
    for line in lines:
        assert set(line.split()) <= words
        assert font.getlength(line) <= 300
    assert wrap_eojeol("바닐라라떼바닐라라떼바닐라라떼", font, 100) is None  # would need a mid-word break
    fit = fit_text(text, fonts, (0, 0, 500, 400), max_size=200, max_lines=4)
    assert fit is not None and fit.size < 200 and len(fit.lines) <= 4
    bigger = fit_text(text, fonts, (0, 0, 1000, 800), max_size=200, max_lines=4)
    assert bigger is not None and bigger.size > fit.size  # size-to-fit grows with the box


@pytest.mark.parametrize("layout", LAYOUTS)
def test_text_stays_in_safe_zone_and_reaches_contrast(fonts: Fonts, presets, layout: str) -> None:
    logo = Image.new("RGBA", (200, 100), (30, 120, 200, 255))
    for bg, size_id in (("astronaut", "ig_portrait"), ("checker", "ig_story"), ("grey", "youtube_thumb")):
        sns = presets.sns(size_id)
        img = _photo(bg, sns.width, sns.height)
        spec = _spec(layout, logo=logo)
        res = render_overlay_detailed(img, spec, sns, fonts)
        out = np.asarray(res.image)
        assert res.image.size == (sns.width, sns.height)
        roles = {b.role for b in res.blocks}
        assert {"headline", "sub_copy", "cta", "badge", "ai_label"} <= roles, (layout, bg, roles)
        sx0, sy0, sx1, sy1 = sns.safe_box()
        # independent check: everything that differs from the same overlay without any text lies inside the safe box
        blank = render_overlay_detailed(img, OverlaySpec(layout=layout, logo=logo, badge_text="", ai_label=False),
                                        sns, fonts)
        base = np.asarray(blank.image).astype(np.int16)
        badge_free = render_overlay_detailed(img, _spec(layout, logo=logo, headline="", sub_copy="", cta="",
                                                        ai_label=False), sns, fonts)
        for other in (base, np.asarray(badge_free.image).astype(np.int16)):
            diff = np.abs(out.astype(np.int16) - other).max(axis=2) > 0
            ys, xs = np.nonzero(diff)
            assert xs.size > 0
            assert xs.min() >= sx0 and xs.max() < sx1 and ys.min() >= sy0 and ys.max() < sy1, (layout, bg)
        for block in res.blocks:
            x0, y0, x1, y1 = block.ink_box
            assert sx0 <= x0 and sy0 <= y0 and x1 <= sx1 and y1 <= sy1, (block.role, block.ink_box)
            # measured contrast from the output pixels: text colour vs the pixels right next to the glyphs
            ox, oy = block.origin
            mh, mw = block.mask.shape
            region = out[oy:oy + mh, ox:ox + mw].reshape(-1, 3)
            core = block.mask.reshape(-1) >= 250
            assert core.any()
            text_rgb = np.median(region[core], axis=0)
            ink = (block.mask > 0).astype(np.uint8)
            ring = (cv2.dilate(ink, np.ones((5, 5), np.uint8)) > 0) & (ink == 0)
            ring_px = region[ring.reshape(-1)]
            ratio = _contrast(text_rgb, ring_px)
            assert np.percentile(ratio, 0.5) >= 4.5, (layout, bg, block.role, block.effect, ratio.min())
            assert block.contrast >= 4.5


def _lum(rgb: np.ndarray) -> np.ndarray:
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return lin[..., 0] * 0.2126 + lin[..., 1] * 0.7152 + lin[..., 2] * 0.0722


def _contrast(text_rgb: np.ndarray, px: np.ndarray) -> np.ndarray:
    lt = float(_lum(text_rgb.reshape(1, 3))[0])
    lb = _lum(px)
    return (np.maximum(lt, lb) + 0.05) / (np.minimum(lt, lb) + 0.05)


def test_hard_backgrounds_get_shadow_or_outline(fonts: Fonts, presets) -> None:
    sns = presets.sns("ig_square")
    res = render_overlay_detailed(_photo("checker", 1080, 1080), _spec("price_badge"), sns, fonts)
    head = next(b for b in res.blocks if b.role == "headline")
    assert head.effect in ("shadow", "outline")
    forced = render_overlay_detailed(_photo("white", 1080, 1080), _spec("price_badge", effect="outline"), sns, fonts)
    assert next(b for b in forced.blocks if b.role == "headline").effect == "outline"
    plain = render_overlay_detailed(_photo("white", 1080, 1080), _spec("price_badge"), sns, fonts)
    head = next(b for b in plain.blocks if b.role == "headline")
    assert head.effect == "none" and head.colour == (17, 17, 17)  # dark text on white needs no help


def test_every_export_has_its_exact_size(fonts: Fonts, presets) -> None:
    sizes = presets.sns_sizes
    img = _photo("astronaut", 900, 700)
    out = export_all(img, _spec("bottom_bar"), sizes, focus_box=(300, 40, 560, 330), fonts=fonts)
    assert set(out) == {s.id for s in sizes}
    for s in sizes:
        assert out[s.id].size == (s.width, s.height), s.id
        assert out[s.id].mode == "RGB"
    detailed = export_all_detailed(img, _spec("ribbon"), sizes[:2], None, fonts)
    assert all(any(b.role == "headline" for b in r.blocks) for r in detailed.values())


def test_smart_crop_follows_the_focus_box() -> None:
    img = Image.fromarray(data.astronaut())  # 512x512, face near the top centre-left
    # landscape crop: the window moves up to the face instead of the centre
    win = crop_window(512, 512, 1280, 720, focus_box=(170, 20, 330, 220))
    assert win[1] < (512 - 288) / 2 and win[3] - win[1] == 288
    # portrait crop of a wide image keeps the subject on the right
    wide = Image.new("RGB", (1200, 400), (250, 250, 250))
    wide.paste((200, 30, 30), (950, 150, 1050, 250))
    x0, _, x1, _ = crop_window(1200, 400, 1080, 1350, focus_box=(950, 150, 1050, 250))
    assert x0 <= 950 and x1 >= 1050 and x0 > 400
    # without a box, saliency finds the red product rather than the middle
    out = np.asarray(smart_crop(wide, 320, 400))
    assert out.shape == (400, 320, 3)
    assert (out[..., 0].astype(int) - out[..., 1] > 100).sum() > 500
    assert smart_crop(img, 1080, 1350, (170, 20, 330, 220)).size == (1080, 1350)


def test_logo_and_ai_label_are_placed(fonts: Fonts, presets) -> None:
    sns = presets.sns("ig_square")
    img = _photo("white", 1080, 1080)
    logo = Image.new("RGBA", (100, 100), (0, 200, 0, 255))
    res = render_overlay_detailed(img, OverlaySpec(headline="로고 테스트", layout="centre_card", logo=logo,
                                                   logo_corner="top_left", ai_label=True), sns, fonts)
    out = np.asarray(res.image)
    sx0, sy0, _, _ = sns.safe_box()
    assert tuple(out[sy0 + 10, sx0 + 10]) == (0, 200, 0)
    label = next(b for b in res.blocks if b.role == "ai_label")
    assert label.text == "AI 생성" and label.contrast >= 4.5
    no_label = render_overlay_detailed(img, OverlaySpec(headline="로고 테스트", layout="centre_card"), sns, fonts)
    assert all(b.role != "ai_label" for b in no_label.blocks)


def test_layout_presets_load(presets) -> None:
    layouts = load_layouts(presets)
    assert set(LAYOUTS) <= set(layouts)
    for lay in layouts.values():
        for block in lay.blocks:
            x0, y0, x1, y1 = block.box
            assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1
    # an unknown layout id falls back instead of failing
    img = _photo("white", 1080, 1080)
    assert render_overlay(img, OverlaySpec(headline="안녕", layout="nope"), presets.sns("ig_square")).size == (1080, 1080)
