"""The app shell: one gr.Blocks with the eight tabs, and the active-engine banner."""

from __future__ import annotations

import importlib
import logging
from functools import partial
from typing import Any, Callable

import gradio as gr

from studio.i18n import t
from studio.services import Services
from studio.ui.common import esc
from studio.ui.server import StudioBlocks
from studio.ui.tabs.coming import build_coming

log = logging.getLogger(__name__)

# tab key -> "module" (with a build(services) function) or None for a capability still to come
TABS: tuple[tuple[str, str | None], ...] = (
    ("person", "studio.ui.tabs.person"),
    ("product", "studio.ui.tabs.product"),
    ("advanced", "studio.ui.tabs.advanced"),
    ("overlay", "studio.ui.tabs.overlay"),
    ("video", "studio.ui.tabs.video"),
    ("stock", "studio.ui.tabs.stock"),
    ("gallery", "studio.ui.tabs.gallery"),
    ("models", "studio.ui.tabs.models"),
)

#: Korean fonts first for the whole UI (installed ones, no web fonts: the studio stays offline).
KOREAN_FONTS = ('"Pretendard", "Apple SD Gothic Neo", "Malgun Gothic", "맑은 고딕", "Noto Sans KR", '
                '"Noto Sans CJK KR", "NanumBarunGothic", "NanumGothic", sans-serif')

CSS = """
#engine-banner {border-left: 4px solid #c08552; padding: 4px 12px; background: rgba(192,133,82,.08);}
footer {display: none !important;}
:root, .gradio-container, .gradio-container * {--font: FONTS;}
.gradio-container, .gradio-container button, .gradio-container input, .gradio-container textarea,
.gradio-container select, .gradio-container label, .gradio-container .prose {font-family: FONTS !important;}
/* Korean words break between syllables without splitting a word; long choices wrap, never clip */
.gradio-container {word-break: keep-all; overflow-wrap: break-word;}
.gradio-container [role=tab], .gradio-container .overflow-dropdown button {white-space: nowrap !important;}
.gradio-container button {white-space: normal; min-height: fit-content; height: auto;}
.gradio-container .wrap-inner input {text-overflow: ellipsis;}
.gradio-container .secondary-wrap input {min-width: 0;}
.handoff-row button {min-width: 0;}
/* the Overlay's writing-AI options: one per line, so their labels are never squeezed */
#overlay-llm-row, #overlay-llm-row .form {flex-direction: column !important; flex-wrap: nowrap !important;}
#overlay-llm-row > *, #overlay-llm-row .form > * {min-width: 100% !important; width: 100% !important;}
@media (max-width: 640px) {
  .gradio-container {padding-left: 6px !important; padding-right: 6px !important;}
  .gradio-container .tab-container button, .gradio-container [role=tab] {padding: 4px 7px;}
  .gradio-container [id$="-choices"] > * {min-width: 40% !important;}
}
""".replace("FONTS", KOREAN_FONTS)


def _builder(key: str, module: str | None) -> Callable[[Services], Any]:
    if module is None:
        return partial(build_coming, what_key=f"coming.{key}")
    return importlib.import_module(module).build


def engine_banner(choice: Any, lang: str) -> str:
    """The banner in the owner's words: the engine's display name, never its internal id."""
    from studio.ui.tabs.engines_panel import engine_words

    label, reason = engine_words(choice, lang)
    return f"**{esc(t('engine.banner', lang, engine=label))}** — {esc(reason)}"


def build_app(services: Services) -> gr.Blocks:
    lang = services.lang
    choice = services.engines.choice("inpaint")
    with StudioBlocks(title=t("app.title", lang), analytics_enabled=False) as demo:
        demo.studio_lang = lang
        gr.Markdown(f"## {esc(t('app.title', lang))}\n{esc(t('app.subtitle', lang))}")
        gr.Markdown(engine_banner(choice, lang), elem_id="engine-banner")
        parts: dict[str, Any] = {}
        tab_items: dict[str, Any] = {}
        with gr.Tabs(elem_id="main-tabs") as tabs:
            for key, module in TABS:
                with gr.Tab(t(f"tab.{key}", lang), id=key, elem_id=f"tab-{key}") as tab_items[key]:
                    parts[key] = _builder(key, module)(services)
        if isinstance(parts.get("gallery"), dict):
            from studio.ui.tabs.gallery import wire_reuse

            # keys starting with "_" (the hand-off parts) are not settings to reuse
            forms = {k: {n: c for n, c in v.items() if not n.startswith("_")} for k, v in parts.items()
                     if k != "gallery" and isinstance(v, dict)}
            wire_reuse(services, parts["gallery"], tabs, forms)
        from studio.ui.handoff import wire_handoffs

        wire_handoffs(services, tabs, tab_items, parts)
    return demo
