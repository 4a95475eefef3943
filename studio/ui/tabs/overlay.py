"""Overlay tab: Korean copy + hashtags, text placement, preview and SNS exports.

The handlers are plain functions of (services, keyword values) so tests call them without a
browser; `build(services)` only wires widgets to them. Text from the LLM goes into plain
textboxes; anything shown as Markdown/HTML is escaped first.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import gradio as gr
from PIL import Image

from studio.errors import InputError, StudioError
from studio.render.export import export_all
from studio.render.overlay import OverlaySpec, load_layouts, render_overlay
from studio.services import Services
from studio.text.copywriter import TONES, AdCopy, CopyRequest, clean_tag, write_copy_detailed
from studio.i18n import t
from studio.ui.common import esc, guarded

log = logging.getLogger(__name__)


CORNERS = ("top_left", "top_right", "bottom_left", "bottom_right")
DEFAULT_SIZES = ("ig_portrait", "ig_square", "ig_story")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")




# --- handlers (no gradio inside) -----------------------------------------------------------------
def history_choices(services: Services, limit: int = 200) -> list[tuple[str, int]]:
    out = []
    for rec in services.store.list(limit=limit):
        if rec.path.suffix.lower() in IMAGE_SUFFIXES and rec.path.is_file():
            out.append((f"#{rec.id} · {rec.workflow} · {rec.created_at[:16]}", rec.id))
    return out


def _safe_history(services: Services) -> list[tuple[str, int]]:
    try:
        return history_choices(services)
    except StudioError as exc:
        log.warning("history unavailable for the overlay tab: %s", exc)
        return []


def source_image(services: Services, upload: Image.Image | None,
                 record_id: int | None) -> tuple[Image.Image, int | None, tuple | None]:
    """(image, parent record id or None, focus box or None)."""
    if upload is not None:
        return upload.convert("RGB"), None, None
    if record_id is not None and str(record_id).strip() not in ("", "None"):
        rec = services.store.get(int(record_id))
        with Image.open(rec.path) as im:
            image = im.convert("RGB")
        box = rec.settings.get("focus_box") if isinstance(rec.settings, dict) else None
        focus = tuple(float(v) for v in box) if isinstance(box, (list, tuple)) and len(box) == 4 else None
        return image, rec.id, focus
    raise InputError("overlay.no_image")


def _llm(services: Services, use_llm: bool, model: str | None) -> Any:
    if not use_llm:
        return None
    client = services.llm
    if model and model != client.model:
        client = client.with_model(model)
    return client


# one pass: HTML's five characters plus Markdown's punctuation become entities
_MD_SAFE = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;",
                          **{c: f"&#{ord(c)};" for c in "[]()*_`!#|~\\{}"}})


def md_text(text: object) -> str:
    """Plain text for Markdown: HTML-escaped (no tags/scripts) and Markdown-inert (no links, emphasis).

    Same as `studio.ui.common.esc` for HTML, plus Markdown punctuation, in a single pass.
    """
    return str(text).translate(_MD_SAFE)


def copy_summary_md(copy: AdCopy, source: str, note: str, lang: str) -> str:
    """A short Markdown summary; every piece of copy is escaped (it may come from an LLM)."""
    src = t(f"overlay.source.{source}", lang)
    return (f"**{md_text(src)}** · {md_text(note)}  \n"
            f"**{md_text(copy.headline)}** — {md_text(copy.sub_copy)} · {md_text(copy.cta)}")


def generate_copy(services: Services, *, industry: str, shop: str, product: str, offer: str, tone: str,
                  target: str, use_llm: bool, model: str | None = None,
                  seed: int | None = None) -> tuple[str, str, str, str, str, str]:
    """(headline, sub_copy, cta, caption, hashtags line, summary markdown)."""
    req = CopyRequest(industry=industry, shop_name=shop or "", product=product or "", offer=offer or "",
                      tone=tone if tone in TONES else "friendly", target=target or "")
    res = write_copy_detailed(req, services.presets, _llm(services, use_llm, model), seed=seed)
    c = res.copy
    return (c.headline, c.sub_copy, c.cta, c.caption, c.hashtag_line(),
            copy_summary_md(c, res.source, res.note(services.lang), services.lang))


def stream_caption(services: Services, *, industry: str, shop: str, product: str, offer: str, tone: str,
                   target: str, model: str | None = None) -> Iterator[str]:
    """Stream a fresh caption from the LLM, piece by piece (the textbox shows it growing)."""
    llm = _llm(services, True, model)
    ind = services.presets.industry(industry)
    prompt = (f"{ind.name_ko} '{shop or ind.name_ko}'의 {product or ind.products_ko[0]} 인스타그램 캡션을 "
              f"3~5줄로 써 주세요. 혜택: {offer or '없음'}. 타깃: {target or '일반 고객'}. 말투: {tone}. "
              "해시태그는 빼고 본문만 쓰세요.")
    text = ""
    for piece in llm.stream_chat([{"role": "user", "content": prompt}]):
        text += piece
        yield text


def parse_hashtags(line: str) -> list[str]:
    tags = []
    for raw in line.replace(",", " ").split():
        tag = clean_tag(raw)
        if tag and tag.lower() not in {t.lower() for t in tags}:
            tags.append(tag)
    return tags


def make_spec(*, headline: str, sub_copy: str, cta: str, layout: str, badge: str, badge_corner: str, accent: str,
              effect: str, logo: Image.Image | None, logo_corner: str, ai_label: bool) -> OverlaySpec:
    return OverlaySpec(headline=(headline or "").strip(), sub_copy=(sub_copy or "").strip(), cta=(cta or "").strip(),
                       layout=layout, badge_text=(badge or "").replace("\\n", "\n"),
                       badge_corner=badge_corner if badge_corner in CORNERS else None,
                       accent=_hex(accent), effect=effect if effect in ("auto", "shadow", "outline") else "auto",
                       logo=logo, logo_corner=logo_corner if logo_corner in CORNERS else None, ai_label=bool(ai_label))


def _hex(value: str | None) -> str:
    """gr.ColorPicker may give '#rrggbb' or 'rgba(r, g, b, a)'."""
    v = (value or "").strip()
    if v.startswith("rgb"):
        nums = [float(x) for x in v[v.index("(") + 1:v.index(")")].split(",")[:3]]
        return "#" + "".join(f"{int(round(n)):02x}" for n in nums)
    return v or "#e4572e"


def preview(services: Services, *, upload: Image.Image | None, record_id: int | None, size_id: str,
            **spec_fields: Any) -> Image.Image:
    image, _parent, focus = source_image(services, upload, record_id)
    spec = make_spec(**spec_fields)
    return render_overlay(image, spec, services.presets.sns(size_id), focus_box=focus)


def export(services: Services, *, upload: Image.Image | None, record_id: int | None, sizes: list[str],
           caption: str, hashtags: str, **spec_fields: Any) -> tuple[list[tuple[Image.Image, str]], list[str], str]:
    """Render every selected size, store them (one record + extra files + caption .txt)."""
    from studio.store.history import NewRecord

    if not sizes:
        raise InputError("overlay.no_sizes")
    spec = make_spec(**spec_fields)
    if not spec.headline:
        raise InputError("overlay.no_headline")
    image, parent, focus = source_image(services, upload, record_id)
    sns = [services.presets.sns(s) for s in sizes]
    outs = export_all(image, spec, sns, focus_box=focus)
    tags = parse_hashtags(hashtags or "")
    copy = {"headline": spec.headline, "sub_copy": spec.sub_copy, "cta": spec.cta, "caption": caption or ""}
    settings = {"layout": spec.layout, "badge": spec.badge_text, "accent": spec.accent, "effect": spec.effect,
                "ai_label": spec.ai_label, "sizes": [s.id for s in sns]}
    if focus is not None:
        settings["focus_box"] = list(focus)
    first = sns[0].id
    rec = services.store.save_image(outs[first], NewRecord(
        workflow="overlay", engine="overlay", model_ids=[], seed=None, prompt_ko=spec.headline, prompt_en="",
        settings=settings, copy=copy, hashtags=tags, kept_owner_pixels=True, parent_id=parent))
    caption_txt = (caption or "").rstrip() + ("\n\n" + " ".join(f"#{t}" for t in tags) if tags else "") + "\n"
    files: dict[str, bytes | Image.Image] = {s: outs[s] for s in outs if s != first}
    files["caption.txt"] = caption_txt.encode("utf-8")
    rec = services.store.add_files(rec.id, files)
    gallery = [(outs[s.id], f"{s.name(services.lang)} · {s.width}×{s.height}") for s in sns]
    paths = [str(rec.path)] + [str(p) for p in rec.extra_paths]
    return gallery, paths, md_text(t("overlay.saved", services.lang, id=rec.id, n=len(sns)))


# --- widgets -------------------------------------------------------------------------------------
def build(services: Services) -> None:
    lang = services.lang
    presets = services.presets
    g = guarded(lang)
    layouts = load_layouts(presets)
    corner_choices = [(t(f"overlay.corner.{c}", lang), c) for c in CORNERS]

    with gr.Row():
        with gr.Column(scale=1):
            gr.Markdown(f"### {esc(t('overlay.source', lang))}")
            record = gr.Dropdown(choices=_safe_history(services), value=None, label=t("overlay.history", lang), allow_custom_value=False)
            refresh = gr.Button(t("overlay.refresh", lang), size="sm")
            upload = gr.Image(type="pil", label=t("overlay.upload", lang), sources=["upload", "clipboard"], height=260)

            gr.Markdown(f"### {esc(t('overlay.copy', lang))}")
            industry = gr.Dropdown(choices=[(i.name(lang), i.id) for i in presets.industries],
                                   value=presets.industries[0].id, label=t("overlay.industry", lang))
            shop = gr.Textbox(label=t("overlay.shop", lang), max_lines=1)
            product = gr.Textbox(label=t("overlay.product", lang), max_lines=1)
            offer = gr.Textbox(label=t("overlay.offer", lang), max_lines=1)
            tone = gr.Radio(choices=[(t(f"overlay.tone.{tone_id}", lang), tone_id) for tone_id in TONES], value=presets.industries[0].copy_tone,
                            label=t("overlay.tone", lang))
            target = gr.Textbox(label=t("overlay.target", lang), max_lines=1)
            with gr.Row():
                use_llm = gr.Checkbox(value=True, label=t("overlay.use_llm", lang))
                model = gr.Dropdown(choices=[services.settings.ollama_model], value=services.settings.ollama_model,
                                    label=t("overlay.model", lang), allow_custom_value=True)
                models_btn = gr.Button(t("overlay.models", lang), size="sm")
            with gr.Row():
                gen = gr.Button(t("overlay.generate", lang), variant="primary")
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
                logo = gr.Image(type="pil", image_mode="RGBA", label=t("overlay.logo", lang), height=120,
                                sources=["upload"])
                logo_corner = gr.Dropdown(choices=corner_choices, value="top_left", label=t("overlay.logo_corner", lang))
            ai_label = gr.Checkbox(value=True, label=t("overlay.ai_label", lang))
            sizes = gr.CheckboxGroup(choices=[(f"{s.name(lang)} ({s.width}×{s.height})", s.id)
                                              for s in presets.sns_sizes],
                                     value=[s for s in DEFAULT_SIZES if any(x.id == s for x in presets.sns_sizes)],
                                     label=t("overlay.sizes", lang))
            with gr.Row():
                preview_btn = gr.Button(t("overlay.preview", lang))
                export_btn = gr.Button(t("overlay.export", lang), variant="primary")
        with gr.Column(scale=1):
            preview_img = gr.Image(type="pil", label=t("overlay.preview", lang), interactive=False, format="png")
            status = gr.Markdown()
            exports = gr.Gallery(label=t("overlay.exports", lang), columns=2, height=360, allow_preview=True)
            files = gr.File(label=t("overlay.files", lang), file_count="multiple", interactive=False)

    copy_in = [("industry", industry), ("shop", shop), ("product", product), ("offer", offer), ("tone", tone),
               ("target", target)]
    spec_in = [("headline", headline), ("sub_copy", sub_copy), ("cta", cta), ("layout", layout), ("badge", badge),
               ("badge_corner", badge_corner), ("accent", accent), ("effect", effect), ("logo", logo),
               ("logo_corner", logo_corner), ("ai_label", ai_label)]

    def by_name(pairs: list[tuple[str, Any]], values: tuple) -> dict[str, Any]:
        return {name: v for (name, _), v in zip(pairs, values)}

    @g
    def on_generate(*values: Any) -> tuple:
        kw = by_name(copy_in + [("use_llm", use_llm), ("model", model)], values)
        return generate_copy(services, **kw)

    def on_stream(*values: Any) -> Iterator[str]:  # a generator: gradio streams it (not wrapped by `guarded`)
        kw = by_name(copy_in + [("model", model)], values)
        try:
            yield from stream_caption(services, **kw)
        except StudioError as exc:
            raise gr.Error(exc.message(lang)) from exc

    @g
    def on_models() -> Any:
        names = services.llm.list_models()
        current = services.settings.ollama_model
        return gr.update(choices=names or [current], value=current if current in names or not names else names[0])

    @g
    def on_refresh() -> Any:
        return gr.update(choices=history_choices(services))

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

    gen.click(on_generate, [c for _, c in copy_in] + [use_llm, model],
              [headline, sub_copy, cta, caption, hashtags, summary], api_name="overlay_copy")
    stream_btn.click(on_stream, [c for _, c in copy_in] + [model], [caption], api_name="overlay_caption_stream")
    models_btn.click(on_models, None, [model], api_name="overlay_models")
    refresh.click(on_refresh, None, [record], api_name="overlay_history")
    preview_inputs = [upload, record] + [c for _, c in spec_in] + [sizes]
    preview_btn.click(on_preview, preview_inputs, [preview_img], api_name="overlay_preview")
    export_btn.click(on_export, [upload, record, sizes, caption, hashtags] + [c for _, c in spec_in],
                     [exports, files, status], api_name="overlay_export")
