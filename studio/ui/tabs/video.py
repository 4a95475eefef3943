"""Video tab: an ad image (history or upload) -> a 5-15 s clip with motion or AI, previewed in a player.

Handlers are plain functions of (services, keyword values) so tests call them without a browser;
`build(services)` only wires widgets to them. Uploads (image, logo) go through the safe loader;
the music file is checked by the encoder (a file that is not audio gets a clear message).
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import gradio as gr
from PIL import Image

from studio.i18n import t
from studio.runtime.jobs import CancelToken
from studio.services import Services
from studio.workflows.gallery import history_choices, safe_history_choices  # noqa: F401  (history_choices: the tab's own API)
from studio.ui.common import esc, guarded
from studio.ui.tabs.ads import upload_image

log = logging.getLogger(__name__)

STYLES = ("auto", "zoom", "zoom_out", "pan", "parallax")
STRENGTHS = ("gentle", "normal", "strong")  # studio.engines.motion.STRENGTHS
SIZES = ("9:16", "1:1", "4:5")


# --- handlers (no gradio inside) -----------------------------------------------------------------
def make_request(services: Services, **values: Any) -> Any:
    """The form's values -> the one video request (`studio.workflows.video.request_from_form`,
    looked up in the workflow registry)."""
    from studio.workflows.registry import workflow

    return workflow("video").make_request(services=services, **values)


def make_clip(services: Services, progress: Callable[[int, int, str], None] | None = None,
              cancel: CancelToken | None = None, **values: Any) -> tuple[str, str]:
    """(clip path, notes markdown)."""
    from studio.engines.registry import spec_for
    from studio.workflows.registry import workflow

    lang = services.lang
    req = make_request(services, **values)
    out = workflow("video").runner()(req, services, progress, cancel)
    notes = [n.text(lang) for n in out.notices]
    label = t(spec_for("image2video", out.engine).label_key, lang)
    notes.append(t("video.saved", lang, id=out.record.id, seconds=f"{out.probe.duration:.1f}",
                   w=out.probe.width, h=out.probe.height, engine=label))
    return str(out.path), "  \n".join(esc(n) for n in notes)


# --- widgets ---------------------------------------------------------------------------------------
def build(services: Services) -> dict[str, Any]:
    from studio.render.overlay import load_layouts

    lang = services.lang
    from studio.engines.registry import spec_for

    choice = services.engines.choice("image2video")
    label = t(spec_for("image2video", choice.name).label_key, lang)
    gr.Markdown(esc(t("video.engine_note", lang, engine=label, reason=choice.reason(lang))) + "  \n"
                + esc(t("video.hunyuan_excluded", lang)), elem_id="video-engine-note")
    history = safe_history_choices(services, "video")
    with gr.Row():
        with gr.Column(scale=1):
            pick = gr.Dropdown(choices=history, value=None, label=t("video.history", lang), elem_id="video-history")
            upload = upload_image(label=t("video.upload", lang), height=260, elem_id="video-upload")
            more = gr.Dropdown(choices=history, value=[], multiselect=True, label=t("video.more", lang))
            mode = gr.Radio(choices=[(t("video.mode.motion", lang), "motion"), (t("video.mode.ai", lang), "ai")],
                            value="motion", label=t("video.mode", lang))
            style = gr.Dropdown(choices=[(t(f"video.style.{s}", lang), s) for s in STYLES], value="auto",
                                label=t("video.style", lang))
            strength = gr.Radio(choices=[(t(f"video.strength.{s}", lang), s) for s in STRENGTHS], value="normal",
                                label=t("video.strength", lang), elem_id="video-strength")
            prompt = gr.Textbox(label=t("video.prompt", lang), lines=2, visible=False)
            keep = gr.Checkbox(value=True, label=t("video.keep", lang), visible=False)
            seconds = gr.Slider(5, 15, value=5, step=1, label=t("video.seconds", lang))
            size = gr.Radio(choices=[(t(f"video.size.{s}", lang), s) for s in SIZES], value="9:16",
                            label=t("video.size", lang))
            with gr.Accordion(t("video.text", lang), open=True):
                headline = gr.Textbox(label=t("overlay.headline", lang))
                sub_copy = gr.Textbox(label=t("overlay.sub_copy", lang))
                cta = gr.Textbox(label=t("overlay.cta", lang))
                badge = gr.Textbox(label=t("overlay.badge", lang))
                layouts = load_layouts(services.presets)
                layout = gr.Dropdown(choices=[(v.name(lang), k) for k, v in layouts.items()], value="bottom_bar",
                                     label=t("overlay.layout", lang))
            with gr.Accordion(t("video.end_card", lang), open=False):
                shop = gr.Textbox(label=t("video.end_card", lang))
                tagline = gr.Textbox(label=t("video.tagline", lang))
                logo = upload_image(label=t("video.logo", lang), height=120)
            music = gr.File(label=t("video.music", lang), type="filepath", file_count="single")
            with gr.Row():
                make = gr.Button(t("video.make", lang), variant="primary", elem_id="video-make")
                make_ai = gr.Button(t("video.make", lang), variant="primary", elem_id="video-make-ai", visible=False)
                cancel = gr.Button(t("ads.cancel", lang), variant="stop", elem_id="video-cancel")
        with gr.Column(scale=1):
            player = gr.Video(label=t("video.player", lang), interactive=False, height=640, elem_id="video-player")
            notes = gr.Markdown(elem_id="video-notes")

    def on_mode(m: str):
        ai = m == "ai"
        return (gr.update(visible=ai), gr.update(visible=ai), gr.update(visible=not ai), gr.update(visible=not ai),
                gr.update(visible=not ai), gr.update(visible=ai))

    @guarded(lang)
    def on_make(pick_v, upload_v, more_v, mode_v, style_v, prompt_v, keep_v, seconds_v, size_v, headline_v,
                sub_v, cta_v, badge_v, layout_v, shop_v, tagline_v, logo_v, music_v, strength_v="normal",
                request: gr.Request = None, progress=gr.Progress()):
        token = services.jobs.token(_session_key(request))

        def report(step: int, total: int, desc: str = "") -> None:
            progress((step, max(total, 1)), desc=desc)

        return make_clip(services, report, token, history_id=pick_v, upload=upload_v, more_ids=more_v,
                         mode=mode_v, style=style_v, prompt_ko=prompt_v, keep=keep_v, seconds=seconds_v,
                         size=size_v, headline=headline_v, sub_copy=sub_v, cta=cta_v, badge=badge_v,
                         layout=layout_v, shop=shop_v, tagline=tagline_v, logo=logo_v, music=music_v,
                         strength=strength_v or "normal")

    def on_cancel(request: gr.Request):
        services.jobs.cancel(_session_key(request))
        gr.Info(title=t("ui.info.title", lang), message=t("job.cancelled", lang))

    mode.change(on_mode, [mode], [prompt, keep, style, strength, make, make_ai], api_name=False)
    inputs = [pick, upload, more, mode, style, prompt, keep, seconds, size, headline, sub_copy, cta, badge, layout,
              shop, tagline, logo, music, strength]
    # motion clips are CPU work: their own queue, beside the GPU's (two at a time); AI clips wait for
    # the GPU queue. (A motion request sent to the AI event still works, and an AI request sent to
    # the motion event still takes the GPU lock inside the workflow.)
    event = make.click(on_make, inputs, [player, notes], api_name="video_make", concurrency_id="video_motion",
                       concurrency_limit=2)
    event_ai = make_ai.click(on_make, inputs, [player, notes], api_name="video_make_ai", concurrency_id="gpu",
                             concurrency_limit=1)
    cancel.click(on_cancel, None, None, api_name="video_cancel", cancels=[event, event_ai], queue=False)
    # what the hand-offs fill (studio.ui.handoff): the picture, the words, the shop name
    return {"_handoff": {"pick": pick, "more": more, "headline": headline, "sub_copy": sub_copy, "cta": cta,
                         "badge": badge, "layout": layout, "shop": shop}}


def _session_key(request: gr.Request | None) -> str:
    session = getattr(request, "session_hash", None) or "local"
    return f"{session}:video"
