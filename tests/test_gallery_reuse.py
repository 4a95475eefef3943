"""The gallery speaks the owner's language and "use these settings again" reopens the right tab
filled in with them."""

from __future__ import annotations

import numpy as np
from PIL import Image

from studio.store.history import NewRecord


def _fn(app, api_name: str):
    return next(f for f in app.demo.fns.values() if f.api_name == api_name)


def _by_elem(outputs, values):
    return {getattr(c, "elem_id", None) or getattr(c, "label", None) or str(c._id): v for c, v in zip(outputs, values)}


def _store_product(app):
    img = Image.fromarray(np.full((300, 300, 3), 180, np.uint8))
    return app.services.store.save_image(img, NewRecord(
        workflow="product", engine="lite", seed=11, prompt_ko="창가 햇살 라떼", prompt_en="a latte by the window",
        settings={"industry": "flower", "style": "natural", "sns_size": "ig_story", "product_box": [90, 20, 520, 380],
                  "options": {"steps": 9, "guidance": 12.5, "mask_feather": 5, "mask_dilate": 3, "seed": 11}}))


def test_summary_is_readable_not_field_names(running_app) -> None:
    from studio.ui.tabs.gallery import summary_md

    rec = _store_product(running_app)
    md = summary_md(rec, running_app.services)
    assert "꽃집" in md or "꽃" in md
    assert "1080×1920" in md and "창가 햇살 라떼" in md and "11" in md and "빠른 배경 합성" in md
    for dev in ("workflow", "engine:", "seed:", "None", "{", "sns_size", "prompt_en", "options"):
        assert dev not in md, dev


def test_use_these_settings_again_reopens_the_product_tab_filled_in(running_app) -> None:
    rec = _store_product(running_app)
    fn = _fn(running_app, "gallery_reuse")
    # through the API as a client would call it: it answers (no error)
    running_app.client().predict(rec.id, api_name="/gallery_reuse")
    out = fn.fn(rec.id)
    tabs_update, rest = out[0], out[1:]
    assert tabs_update.selected == "product"
    comps = fn.outputs[1:]
    filled = {}
    for comp, upd in zip(comps, rest):
        value = upd.get("value") if isinstance(upd, dict) else getattr(upd, "value", None)
        if isinstance(upd, dict) and "value" in upd:
            filled[comp._id] = value
    # the product tab's widgets got the record's values; other tabs were left alone
    person_ids = {c._id for c in running_app.demo.blocks.values() if getattr(c, "elem_id", "") == "person-prompt-ko"}
    product_prompt = next(c for c in running_app.demo.blocks.values() if getattr(c, "elem_id", "") == "product-prompt-ko")
    product_box = next(c for c in running_app.demo.blocks.values() if getattr(c, "elem_id", "") == "product-box")
    product_prompt_en = next(c for c in running_app.demo.blocks.values() if getattr(c, "elem_id", "") == "product-prompt-en")
    assert filled[product_prompt._id] == "창가 햇살 라떼"
    assert filled[product_prompt_en._id] == "a latte by the window"
    assert filled[product_box._id] == "90,20,520,380"
    assert not (person_ids & set(filled))
    values = set(map(str, filled.values()))
    assert {"flower", "natural", "ig_story", "11", "9", "12.5"} <= values


def test_use_again_for_an_overlay_reopens_the_overlay_tab(running_app) -> None:
    from studio.workflows import overlay as ov

    src = _store_product(running_app)
    ov.export(running_app.services, upload=None, record_id=src.id, sizes=["ig_square"], caption="오늘의 꽃",
              hashtags="#꽃집 #꽃다발", headline="봄 꽃다발", sub_copy="한 다발 가득", cta="예약하세요",
              layout="bottom_bar", badge="", badge_corner="top_right", accent="#c08552", effect="auto", logo=None,
              logo_corner="top_left", ai_label=True)
    rec = running_app.services.store.list(limit=1)[0]
    fn = _fn(running_app, "gallery_reuse")
    out = fn.fn(rec.id)
    assert out[0].selected == "overlay"
    vals = [u.get("value") for u in out[1:] if isinstance(u, dict) and "value" in u]
    assert "봄 꽃다발" in vals and "#꽃집 #꽃다발" in vals and src.id in vals


def test_use_again_without_a_pick_says_so(running_app) -> None:
    import pytest
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as exc:
        running_app.client().predict(None, api_name="/gallery_reuse")
    assert "먼저 고르세요" in str(exc.value)
    with pytest.raises(AppError) as exc:
        running_app.client().predict(10**20, api_name="/gallery_reuse")
    assert "기록 번호가 올바르지 않습니다" in str(exc.value) or "찾을 수 없습니다" in str(exc.value)
