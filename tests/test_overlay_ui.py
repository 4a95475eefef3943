"""The Overlay tab: builds with its API names, escapes LLM text, exports through the history store."""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from PIL import Image
from skimage import data

from fake_ollama import FakeOllama
from studio.errors import InputError
from studio.engines.registry import EngineProvider
from studio.services import Services
from studio.store.history import HistoryStore, NewRecord
from studio.text.llm import LLMClient
from studio.ui.tabs import overlay as tab

MODEL = "qwen2.5:7b-instruct"


@pytest.fixture
def fake():
    with FakeOllama(models=[MODEL]) as server:
        yield server


@pytest.fixture
def services(settings, presets, fake):
    store = HistoryStore.open(settings.outputs_dir, settings.db_path)
    svc = Services(settings=settings, presets=presets, store=store, engines=EngineProvider(settings, None),
                   _llm=LLMClient(fake.url, MODEL))
    yield svc
    store.close()


def _spec_fields(**kw) -> dict:
    base = dict(headline="오늘만 소금빵 1+1", sub_copy="갓 구운 소금빵을 만나 보세요.", cta="지금 방문해 보세요",
                layout="bottom_bar", badge="1+1", badge_corner="top_right", accent="#c08552", effect="auto",
                logo=None, logo_corner="top_left", ai_label=True)
    base.update(kw)
    return base


def test_tab_builds_inside_a_tab_with_api_names(services) -> None:
    with gr.Blocks() as demo:
        with gr.Tab("overlay"):
            tab.build(services)
    names = {fn.api_name for fn in demo.fns.values()}
    assert {"overlay_copy", "overlay_export", "overlay_preview", "overlay_caption_stream"} <= names
    boxes = [b for b in demo.blocks.values() if isinstance(b, gr.Textbox) and b.elem_id in
             ("overlay-caption", "overlay-hashtags")]
    assert len(boxes) == 2 and all("copy" in (b.buttons or []) for b in boxes)


def test_llm_html_and_script_are_escaped(services, fake: FakeOllama) -> None:
    evil = {"headline": "<script>alert(1)</script>", "sub_copy": "<img src=x onerror=alert(2)>",
            "cta": "**[클릭](javascript:alert(3))**", "hashtags": ["<b>태그</b>"], "caption": "<iframe>"}
    fake.replies.append(json.dumps(evil, ensure_ascii=False))
    head, sub, cta, caption, tags, summary = tab.generate_copy(
        services, industry="bakery", shop="소금빵집", product="소금빵", offer="1+1", tone="playful", target="",
        use_llm=True, seed=0)
    assert "<script>" not in summary and "&lt;script&gt;" in summary
    assert "<img" not in summary and "&lt;img" in summary
    assert "[클릭]" not in summary and "(javascript" not in summary and "**[" not in summary
    assert "&#91;클릭&#93;&#40;javascript:alert&#40;3&#41;&#41;" in summary  # shown literally, not a link
    assert "<b>" not in tags and "#b태그b" in tags  # hashtags are cleaned to bare words
    assert len(head) <= 20  # the headline goes to a plain textbox, clamped to 20 characters
    assert "글쓰기 AI" in summary
    assert tab.md_text("<a href='x'>_x_</a>") == "&lt;a href=&#x27;x&#x27;&gt;&#95;x&#95;&lt;/a&gt;"


def test_template_copy_when_llm_off(services, fake: FakeOllama) -> None:
    head, sub, cta, caption, tags, summary = tab.generate_copy(
        services, industry="cafe", shop="달빛", product="라떼", offer="20% 할인", tone="friendly", target="직장인",
        use_llm=False, seed=1)
    assert head and sub and cta and caption
    assert 10 <= len(tags.split()) <= 20 and all(t.startswith("#") for t in tags.split())
    assert "템플릿" in summary
    assert fake.chat_requests() == []


def test_export_saves_sizes_and_caption_through_the_store(services) -> None:
    photo = Image.fromarray(data.astronaut())
    gallery, paths, status = tab.export(
        services, upload=photo, record_id=None, sizes=["ig_portrait", "ig_square", "kakao_channel"],
        caption="<b>안녕하세요</b> 오늘도 구웠어요", hashtags="#소금빵 #빵스타그램 bakery", **_spec_fields())
    assert len(gallery) == 3 and len(paths) == 4
    sizes = {Image.open(p).size for p in paths if p.endswith(".png")}
    assert sizes == {(1080, 1350), (1080, 1080), (800, 800)}
    txt = [p for p in paths if p.endswith(".txt")]
    assert len(txt) == 1
    body = Path(txt[0]).read_text(encoding="utf-8")
    assert "오늘도 구웠어요" in body and "#소금빵 #빵스타그램 #bakery" in body
    rec = services.store.list(limit=1)[0]
    assert rec.workflow == "overlay" and rec.hashtags == ["소금빵", "빵스타그램", "bakery"]
    assert rec.copy["headline"] == "오늘만 소금빵 1+1"
    assert "<b>" not in status


def test_preview_from_history_uses_its_focus_box(services) -> None:
    photo = Image.fromarray(data.astronaut())
    rec = services.store.save_image(photo, NewRecord(workflow="person", engine="lite", model_ids=[], seed=1,
                                                     prompt_ko="", prompt_en="",
                                                     settings={"focus_box": [170, 20, 330, 220]}))
    choices = tab.history_choices(services)
    assert any(v == rec.id for _, v in choices)
    img, parent, focus = tab.source_image(services, None, rec.id)
    assert parent == rec.id and focus == (170.0, 20.0, 330.0, 220.0)
    out = tab.preview(services, upload=None, record_id=rec.id, size_id="youtube_thumb", **_spec_fields())
    assert out.size == (1280, 720)
    arr = np.asarray(out)
    assert arr.std() > 10
    with pytest.raises(InputError):
        tab.source_image(services, None, None)
    with pytest.raises(InputError):
        tab.export(services, upload=photo, record_id=None, sizes=[], caption="", hashtags="", **_spec_fields())
