"""Overlay tab: Korean copy + hashtags, text placement, preview and SNS exports.

Widgets only: the work (safe image loading, limits, rendering every size, the history row, the
caption file) is `studio.workflows.overlay`. Text from the LLM goes into plain textboxes;
anything shown as Markdown/HTML is escaped first.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import gradio as gr
from PIL import Image

from studio.errors import StudioError
from studio.i18n import t
from studio.render.overlay import load_layouts
from studio.services import Services
from studio.workflows.gallery import safe_history_choices
from studio.text.copywriter import TONES
from studio.ui.common import esc, form_handler, guarded, upload_image
from studio.workflows.overlay import (  # noqa: F401  (re-exported for callers of the tab module)
    CORNERS, DEFAULT_SIZES, copy_summary_md, export, generate_copy, history_choices, history_images, make_spec,
    md_text, parse_hashtags, preview, record_label, source_image, stream_caption)

log = logging.getLogger(__name__)


def _thumbs(services: Services) -> tuple[list[tuple[str, str]], list[int]]:
    try:
        recs = history_images(services, 60)
    except StudioError as exc:
        log.warning("history unavailable for the overlay tab: %s", exc)
        return [], []
    return [(str(r.path), record_label(r, services.lang)) for r in recs], [r.id for r in recs]


# --- widgets -------------------------------------------------------------------------------------
def build(services: Services) -> dict[str, Any]:
    lang = services.lang
    presets = services.presets
    g = guarded(lang)
    layouts = load_layouts(presets)
    corner_choices = [(t(f"overlay.corner.{c}", lang), c) for c in CORNERS]

    with gr.Row():
        with gr.Column(scale=1):
            gr.Markdown(f"### {esc(t('overlay.source', lang))}")
            thumbs, thumb_ids = _thumbs(services)
            history_pick = gr.Gallery(value=thumbs, label=t("overlay.history", lang), columns=4, height=170,
                                      allow_preview=False, elem_id="overlay-history")
            thumb_ids_state = gr.State(thumb_ids)
            with gr.Row():
                record = gr.Dropdown(choices=safe_history_choices(services, "overlay"), value=None, show_label=False, scale=3,
                                     allow_custom_value=False, elem_id="overlay-record")
                refresh = gr.Button(t("overlay.refresh", lang), size="sm", scale=1)
            upload = upload_image(label=t("overlay.upload", lang), sources=["upload", "clipboard"], height=260,
                                  elem_id="overlay-upload")

            gr.Markdown(f"### {esc(t('overlay.copy', lang))}")
            industry = gr.Dropdown(choices=[(i.name(lang), i.id) for i in presets.industries],
                                   value=presets.industries[0].id, label=t("overlay.industry", lang),
                                   elem_id="overlay-industry")
            shop = gr.Textbox(label=t("overlay.shop", lang), max_lines=1)
            product = gr.Textbox(label=t("overlay.product", lang), max_lines=1)
            offer = gr.Textbox(label=t("overlay.offer", lang), max_lines=1)
            tone = gr.Radio(choices=[(t(f"overlay.tone.{tone_id}", lang), tone_id) for tone_id in TONES], value=presets.industries[0].copy_tone,
                            label=t("overlay.tone", lang))
            target = gr.Textbox(label=t("overlay.target", lang), max_lines=1)
            with gr.Row(elem_id="overlay-llm-row"):
                use_llm = gr.Checkbox(value=True, label=t("overlay.use_llm", lang), elem_id="overlay-use-llm", min_width=220)
                english_tags = gr.Checkbox(value=False, label=t("overlay.english_tags", lang), min_width=160)
                model = gr.Dropdown(choices=[services.settings.ollama_model], value=services.settings.ollama_model,
                                    label=t("overlay.model", lang), allow_custom_value=True, min_width=220)
                models_btn = gr.Button(t("overlay.models", lang), size="sm")
            with gr.Row():
                gen = gr.Button(t("overlay.generate", lang), variant="primary", elem_id="overlay-generate")
                stream_btn = gr.Button(t("overlay.stream", lang))
            summary = gr.Markdown()
        with gr.Column(scale=1):
            headline = gr.Textbox(label=t("overlay.headline", lang), max_lines=1, max_length=20)
            sub_copy = gr.Textbox(label=t("overlay.sub_copy", lang), lines=2)
            cta = gr.Textbox(label=t("overlay.cta", lang), max_lines=1)
            caption = gr.Textbox(label=t("overlay.caption", lang), lines=6, buttons=["copy"], elem_id="overlay-caption")
            hashtags = gr.Textbox(label=t("overlay.hashtags", lang), lines=3, buttons=["copy"], elem_id="overlay-hashtags")

            gr.Markdown(f"### {esc(t('overlay.place', lang))}")
            layout = gr.Dropdown(choices=[(x.name(lang), x.id) for x in layouts.values()], value="bottom_bar",
                                 label=t("overlay.layout", lang))
            with gr.Row():
                badge = gr.Textbox(label=t("overlay.badge", lang), max_lines=1)
                badge_corner = gr.Dropdown(choices=corner_choices, value="top_right", label=t("overlay.badge_corner", lang))
            with gr.Row():
                accent = gr.ColorPicker(value=presets.industries[0].palette[-1], label=t("overlay.accent", lang))
                effect = gr.Radio(choices=[(t(f"overlay.effect.{e}", lang), e) for e in ("auto", "shadow", "outline")],
                                  value="auto", label=t("overlay.effect", lang))
            with gr.Row():
                logo = upload_image(label=t("overlay.logo", lang), height=170, sources=["upload"],
                                    elem_id="overlay-logo")
                logo_corner = gr.Dropdown(choices=corner_choices, value="top_left", label=t("overlay.logo_corner", lang))
            ai_label = gr.Checkbox(value=True, label=t("overlay.ai_label", lang))
            sizes = gr.CheckboxGroup(choices=[(f"{s.name(lang)} ({s.width}×{s.height})", s.id)
                                              for s in presets.sns_sizes],
                                     value=[s for s in DEFAULT_SIZES if any(x.id == s for x in presets.sns_sizes)],
                                     label=t("overlay.sizes", lang))
            with gr.Row():
                preview_btn = gr.Button(t("overlay.preview", lang))
                export_btn = gr.Button(t("overlay.export", lang), variant="primary", elem_id="overlay-export")
            to_video = gr.Button(t("ui.handoff.to_video", lang), size="sm", elem_id="overlay-to-video")
        with gr.Column(scale=1):
            preview_img = gr.Image(type="pil", label=t("overlay.preview", lang), interactive=False, format="png")
            status = gr.Markdown()
            exports = gr.Gallery(label=t("overlay.exports", lang), columns=2, height=360, allow_preview=True,
                                 elem_id="overlay-exports")
            files = gr.File(label=t("overlay.files", lang), file_count="multiple", interactive=False)

    copy_in = [("industry", industry), ("shop", shop), ("product", product), ("offer", offer), ("tone", tone),
               ("target", target)]
    spec_in = [("headline", headline), ("sub_copy", sub_copy), ("cta", cta), ("layout", layout), ("badge", badge),
               ("badge_corner", badge_corner), ("accent", accent), ("effect", effect), ("logo", logo),
               ("logo_corner", logo_corner), ("ai_label", ai_label)]

    def by_name(pairs: list[tuple[str, Any]], values: tuple) -> dict[str, Any]:
        return {name: v for (name, _), v in zip(pairs, values)}

    copy_fields = copy_in + [("use_llm", use_llm), ("english_tags", english_tags), ("model", model)]

    @g
    def on_generate(kw: dict[str, Any], request: Any, progress: Any) -> tuple:
        if kw.get("use_llm"):  # the owner sees that it is waiting, and for how long at most
            progress(None, desc=t("overlay.llm_waiting", lang, secs=services.settings.llm_timeout_s))
        return generate_copy(services, **kw)

    def on_stream(*values: Any) -> Iterator[str]:  # a generator: gradio streams it (not wrapped by `guarded`)
        kw = by_name(copy_in + [("model", model)], values)
        try:
            yield from stream_caption(services, **kw)
        except StudioError as exc:
            raise gr.Error(exc.message(lang), title=t("error.title", lang)) from exc
        except Exception as exc:  # the UI boundary (generators are not wrapped by `guarded`)
            log.exception("caption stream failed")
            raise gr.Error(t("job.failed_plain", lang), title=t("error.title", lang)) from exc

    @g
    def on_models() -> Any:
        names = services.llm.list_models()
        current = services.settings.ollama_model
        return gr.update(choices=names or [current], value=current if current in names or not names else names[0])

    @g
    def on_refresh() -> tuple:
        items, ids = _thumbs(services)
        return gr.update(choices=history_choices(services)), items, ids

    @g
    def on_pick(ids: list[int], evt: gr.SelectData) -> Any:
        if evt is None or evt.index is None or not 0 <= int(evt.index) < len(ids):
            return gr.update()
        return gr.update(value=ids[int(evt.index)])

    @g
    def on_preview(*values: Any) -> Image.Image:
        kw = by_name([("upload", upload), ("record_id", record)] + spec_in + [("sizes", sizes)], values)
        chosen = kw.pop("sizes") or list(DEFAULT_SIZES[:1])
        return preview(services, size_id=chosen[0], **kw)

    @g
    def on_export(*values: Any) -> tuple:
        kw = by_name([("upload", upload), ("record_id", record), ("sizes", sizes), ("caption", caption),
                      ("hashtags", hashtags)] + spec_in, values)
        gallery, paths, msg = export(services, **kw)
        return gallery, paths, msg

    gen.click(form_handler([n for n, _ in copy_fields], on_generate), [c for _, c in copy_fields],
              [headline, sub_copy, cta, caption, hashtags, summary], api_name="overlay_copy")
    stream_btn.click(on_stream, [c for _, c in copy_in] + [model], [caption], api_name="overlay_caption_stream")
    models_btn.click(on_models, None, [model], api_name="overlay_models")
    refresh.click(on_refresh, None, [record, history_pick, thumb_ids_state], api_name="overlay_history")
    history_pick.select(on_pick, [thumb_ids_state], [record], api_name=False)
    preview_inputs = [upload, record] + [c for _, c in spec_in] + [sizes]
    preview_btn.click(on_preview, preview_inputs, [preview_img], api_name="overlay_preview")
    export_btn.click(on_export, [upload, record, sizes, caption, hashtags] + [c for _, c in spec_in],
                     [exports, files, status], api_name="overlay_export")
    # the gallery's "use these settings again" fills these
    return {"record": record, "caption": caption, "hashtags": hashtags, "sizes": sizes,
            **{name: comp for name, comp in spec_in if name not in ("logo", "logo_corner", "badge_corner")},
            # what the hand-offs fill and carry on (studio.ui.handoff); not part of "use these settings again"
            "_handoff": {"record": record, "history": history_pick, "thumb_ids": thumb_ids_state,
                         "industry": industry, "tone": tone, "shop": shop, "product": product,
                         "headline": headline, "sub_copy": sub_copy, "cta": cta, "badge": badge,
                         "layout": layout, "to_video": to_video}}
