"""Gallery tab: browse the history, open a result with a readable summary of how it was made,
use those settings again (reopens the right tab, filled in), delete."""

from __future__ import annotations

import json
import logging
from typing import Any

import gradio as gr

from studio.errors import StudioError
from studio.i18n import t
from studio.services import Services
from studio.ui.common import esc, guarded
from studio.workflows.gallery import local_time, record_label

log = logging.getLogger(__name__)

WORKFLOWS = ("person", "product", "advanced", "overlay", "video", "stock")
AD_TABS = ("person", "product", "advanced")
PAGE = 120


def _items(services: Services, workflow: str) -> tuple[list[tuple[str, str]], list[int]]:
    records = services.store.list(limit=PAGE, workflow=None if workflow in ("all", None, "") else workflow)
    shown = [r for r in records if r.path.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp", ".mp4") and r.path.is_file()]
    return [(str(r.path), record_label(r, services.lang)) for r in shown], [r.id for r in shown]


def _preset_name(getter: Any, id_: Any, lang: str) -> str | None:
    if not id_:
        return None
    try:
        return getter(str(id_)).name(lang)
    except (KeyError, StudioError, ValueError, IndexError):
        return str(id_)


def summary_md(rec: Any, services: Services) -> str:
    """How a result was made, in the owner's words (no field names, no JSON)."""
    lang, presets = services.lang, services.presets
    st = rec.settings if isinstance(rec.settings, dict) else {}
    lines = [f"### {esc(record_label(rec, lang))}"]

    def row(key: str, value: Any) -> None:
        if value not in (None, "", [], {}):
            lines.append(f"- **{esc(t(key, lang))}**: {esc(value)}")

    row("gallery.row.made", local_time(rec.created_at))
    row("gallery.row.industry", _preset_name(presets.industry, st.get("industry"), lang))
    row("gallery.row.style", _preset_name(presets.style, st.get("style"), lang))
    sns_id = st.get("sns_size")
    if sns_id:
        size = presets.sns(str(sns_id))
        row("gallery.row.size", f"{size.name(lang)} ({size.width}×{size.height})")
    elif st.get("sizes"):
        names = []
        for s in st.get("sizes") or []:
            size = presets.sns(str(s))
            names.append(f"{size.name(lang)} ({size.width}×{size.height})")
        row("gallery.row.sizes", ", ".join(names))
    row("gallery.row.engine", t(f"gallery.engine.{rec.engine}", lang) if f"gallery.engine.{rec.engine}" in _keys()
        else rec.engine)
    if rec.seed is not None:
        row("gallery.row.seed", rec.seed)
    if rec.workflow == "overlay":
        copy = rec.copy or {}
        row("overlay.headline", copy.get("headline"))
        row("overlay.sub_copy", copy.get("sub_copy"))
        row("overlay.cta", copy.get("cta"))
    else:
        row("gallery.row.prompt_ko", rec.prompt_ko)
        row("gallery.row.prompt_en", rec.prompt_en)
    if rec.hashtags:
        row("gallery.row.hashtags", " ".join(f"#{x}" for x in rec.hashtags))
    row("gallery.row.ai", t("gallery.ai.kept" if rec.kept_owner_pixels else "gallery.ai.generated", lang))
    return "\n".join(lines)


def _keys() -> set[str]:
    from studio.i18n import MESSAGES

    return set(MESSAGES)


def reuse_values(rec: Any) -> tuple[str, dict[str, Any]]:
    """(tab id, {component name: value}) that redo `rec` with the same settings.

    Ad tabs get industry, style, size, prompts, seed, the advanced options and the face/box; the
    Overlay tab gets this result as its source with the same words, layout and sizes. The photo
    itself is not stored, so an ad tab asks for it again.
    """
    st = rec.settings if isinstance(rec.settings, dict) else {}
    if rec.workflow in AD_TABS:
        opts = st.get("options") if isinstance(st.get("options"), dict) else {}
        values: dict[str, Any] = {"industry": st.get("industry"), "style": st.get("style"),
                                  "sns": st.get("sns_size"), "prompt_ko": rec.prompt_ko, "prompt_en": rec.prompt_en,
                                  "seed": rec.seed if rec.seed is not None else opts.get("seed"),
                                  "steps": opts.get("steps"), "guidance": opts.get("guidance"),
                                  "cn_scale": opts.get("controlnet_scale"), "cn_start": opts.get("control_start"),
                                  "cn_end": opts.get("control_end"), "feather": opts.get("mask_feather"),
                                  "dilate": opts.get("mask_dilate")}
        if isinstance(st.get("detail_pass"), bool):  # the detail pass (issue 24)
            values["detail"] = st["detail_pass"]
            values["detail_strength"] = st.get("detail_strength")
        if st.get("product_box"):
            values["box"] = ",".join(str(int(v)) for v in st["product_box"])
        return rec.workflow, {k: v for k, v in values.items() if v is not None}
    if rec.workflow == "overlay":
        copy = rec.copy or {}
        values = {"record": rec.parent_id or rec.id, "headline": copy.get("headline"),
                  "sub_copy": copy.get("sub_copy"), "cta": copy.get("cta"), "caption": copy.get("caption"),
                  "hashtags": " ".join(f"#{x}" for x in rec.hashtags) if rec.hashtags else None,
                  "layout": st.get("layout"), "badge": st.get("badge"), "accent": st.get("accent"),
                  "effect": st.get("effect"), "ai_label": st.get("ai_label"), "sizes": st.get("sizes")}
        return "overlay", {k: v for k, v in values.items() if v is not None}
    raise StudioError("gallery.no_reuse")


def wire_reuse(services: Services, parts: dict[str, Any], tabs: gr.Tabs, forms: dict[str, dict[str, Any]]) -> None:
    """Connect the gallery's 'use these settings again' button to the other tabs' widgets."""
    lang = services.lang
    targets: list[tuple[str, str, Any]] = [(tab, name, comp) for tab, form in forms.items() if form
                                           for name, comp in form.items()]

    @guarded(lang)
    def reuse(rec_id: Any) -> list[Any]:
        from studio.workflows.gallery import record_id

        rid = record_id(rec_id)
        if rid is None:
            raise StudioError("gallery.pick_first")
        rec = services.store.get(rid)
        tab, values = reuse_values(rec)
        if tab not in forms or not forms[tab]:
            raise StudioError("gallery.no_reuse")
        if tab == "overlay" and "record" in values:
            from studio.workflows.gallery import history_choices

            gr.Info(title=t("ui.info.title", lang), message=t("gallery.reused_overlay", lang, id=rec.id))
            out = [gr.Tabs(selected=tab)]
            for t_tab, name, _comp in targets:
                if t_tab != tab or name not in values:
                    out.append(gr.update())
                elif name == "record":
                    out.append(gr.update(choices=history_choices(services), value=values["record"]))
                else:
                    out.append(gr.update(value=values[name]))
            return out
        gr.Info(title=t("ui.info.title", lang), message=t("gallery.reused", lang, id=rec.id, tab=t(f"tab.{tab}", lang)))
        return [gr.Tabs(selected=tab)] + [gr.update(value=values[name]) if t_tab == tab and name in values
                                          else gr.update() for t_tab, name, _comp in targets]

    parts["reuse"].click(reuse, [parts["selected"]], [tabs] + [comp for _, _, comp in targets],
                         api_name="gallery_reuse")


def build(services: Services) -> dict[str, Any]:
    lang = services.lang
    report = services.startup_report  # scanned once at startup, not again per UI build
    if report is not None and (report.missing_files or report.orphan_files):
        gr.Markdown(esc(t("gallery.reconcile", lang, missing=len(report.missing_files),
                              orphans=len(report.orphan_files))))
    ids_state = gr.State([])
    selected = gr.Number(value=None, visible=False, precision=0, label="id")
    with gr.Row():
        choices = [(t("gallery.all", lang), "all")] + [(t(f"tab.{w}", lang), w) for w in WORKFLOWS]
        workflow = gr.Dropdown(choices=choices, value="all", label=t("gallery.filter", lang), scale=3)
        refresh = gr.Button(t("gallery.refresh", lang), scale=1)
    empty_note = gr.Markdown(visible=False)
    gallery = gr.Gallery(label=t("gallery.items", lang), columns=6, height=300, allow_preview=False,
                         buttons=["download"], elem_id="history-gallery")
    with gr.Row():
        with gr.Column(scale=3):
            detail_img = gr.Image(label=t("gallery.detail", lang), type="filepath", interactive=False,
                                  height=340)
        with gr.Column(scale=2):
            detail_md = gr.Markdown(elem_id="gallery-summary")
            reuse_btn = gr.Button(t("gallery.reuse", lang), variant="primary", elem_id="gallery-reuse")
            files = gr.File(label=t("gallery.download", lang), file_count="multiple", interactive=False)
            delete = gr.Button(t("gallery.delete", lang), variant="stop", size="sm")

    @guarded(lang)
    def load(wf: str):
        items, ids = _items(services, wf)
        note = gr.update(visible=not items, value=esc(t("gallery.empty", lang)))
        return items, ids, note

    @guarded(lang)
    def open_item(ids: list[int], evt: gr.SelectData):
        if evt is None or evt.index is None or not 0 <= int(evt.index) < len(ids):
            raise StudioError("gallery.pick_first")
        rec = services.store.get(ids[int(evt.index)])
        paths = [str(p) for p in [rec.path, *rec.extra_paths] if p.is_file()]
        still = next((p for p in paths if not p.lower().endswith(".mp4")), None)  # a clip shows its poster
        return rec.id, still, summary_md(rec, services), paths

    @guarded(lang)
    def delete_item(rec_id: int | None, wf: str):
        from studio.workflows.gallery import record_id

        rid = record_id(rec_id)
        if rid is None:  # nothing selected, or the owner said no in the confirm box
            gr.Info(title=t("ui.info.title", lang), message=t("gallery.pick_first", lang))
            return tuple(gr.update() for _ in range(7))
        services.store.delete(rid)
        gr.Info(title=t("ui.info.title", lang), message=t("gallery.deleted", lang, id=rid))
        items, ids, note = load(wf)
        return items, ids, note, None, None, "", None

    outs = [gallery, ids_state, empty_note]
    # triggers=None: runs on page load and whenever the filter changes
    gr.on(None, load, [workflow], outs, api_name="gallery_list")
    refresh.click(load, [workflow], outs, api_name=False)
    gallery.select(open_item, [ids_state], [selected, detail_img, detail_md, files], api_name=False)
    delete.click(delete_item, [selected, workflow],
                 outs + [selected, detail_img, detail_md, files],
                 js=f"(a, b) => confirm({json.dumps(t('gallery.confirm', lang))}) ? [a, b] : [null, b]",
                 api_name="gallery_delete")
    return {"reuse": reuse_btn, "selected": selected}
