"""Gallery tab: browse the history, open a result with its settings, delete."""

from __future__ import annotations

import json
import logging
from typing import Any

import gradio as gr

from studio.i18n import t
from studio.services import Services
from studio.ui.common import esc, guarded

log = logging.getLogger(__name__)

WORKFLOWS = ("person", "product", "advanced", "overlay", "video", "stock")
PAGE = 120


def _items(services: Services, workflow: str) -> tuple[list[tuple[str, str]], list[int]]:
    records = services.store.list(limit=PAGE, workflow=None if workflow == "all" else workflow)
    shown = [r for r in records if r.path.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp", ".mp4") and r.path.is_file()]
    return [(str(r.path), f"#{r.id} · {r.workflow}") for r in shown], [r.id for r in shown]


def _details_md(rec: Any, lang: str) -> str:
    rows = [
        ("ID", f"#{rec.id}"),
        ("🕒", rec.created_at),
        ("workflow", rec.workflow),
        ("engine", rec.engine),
        ("seed", rec.seed),
        ("prompt (ko)", rec.prompt_ko or "—"),
        ("prompt (en)", rec.prompt_en or "—"),
    ]
    if rec.hashtags:
        rows.append(("#", " ".join(rec.hashtags)))
    lines = [f"**{esc(k)}**: {esc(v)}" for k, v in rows]
    return "  \n".join(lines)


def build(services: Services) -> None:
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
    gallery = gr.Gallery(label=t("gallery.items", lang), columns=5, height=420, allow_preview=False,
                         buttons=["download"], elem_id="history-gallery")
    with gr.Row():
        with gr.Column(scale=3):
            detail_img = gr.Image(label=t("gallery.detail", lang), type="filepath", interactive=False,
                                  height=360)
        with gr.Column(scale=2):
            detail_md = gr.Markdown()
            settings_json = gr.JSON(label=t("gallery.settings", lang))
            files = gr.File(label=t("gallery.download", lang), file_count="multiple", interactive=False)
            delete = gr.Button(t("gallery.delete", lang), variant="stop")

    @guarded(lang)
    def load(wf: str):
        items, ids = _items(services, wf)
        note = gr.update(visible=not items, value=esc(t("gallery.empty", lang)))
        return items, ids, note

    @guarded(lang)
    def open_item(ids: list[int], evt: gr.SelectData):
        if evt is None or evt.index is None or evt.index >= len(ids):
            raise gr.Error(t("gallery.pick_first", lang))
        rec = services.store.get(ids[evt.index])
        paths = [str(p) for p in [rec.path, *rec.extra_paths] if p.is_file()]
        settings = dict(rec.settings)
        settings["model_ids"] = list(rec.model_ids)
        if rec.copy:
            settings["copy"] = rec.copy
        still = next((p for p in paths if not p.lower().endswith(".mp4")), None)  # a clip shows its poster
        return rec.id, still, _details_md(rec, lang), json.loads(json.dumps(settings, default=str)), paths

    @guarded(lang)
    def delete_item(rec_id: int | None, wf: str):
        if rec_id is None or rec_id == "":  # nothing selected, or the owner said no in the confirm box
            gr.Info(t("gallery.pick_first", lang))
            return tuple(gr.update() for _ in range(8))
        services.store.delete(int(rec_id))
        gr.Info(t("gallery.deleted", lang, id=rec_id))
        items, ids, note = load(wf)
        return items, ids, note, None, None, "", None, None

    outs = [gallery, ids_state, empty_note]
    # triggers=None: runs on page load and whenever the filter changes
    gr.on(None, load, [workflow], outs, api_name="gallery_list")
    refresh.click(load, [workflow], outs, api_name=False)
    gallery.select(open_item, [ids_state], [selected, detail_img, detail_md, settings_json, files],
                   api_name=False)
    delete.click(delete_item, [selected, workflow],
                 outs + [selected, detail_img, detail_md, settings_json, files],
                 js=f"(a, b) => confirm({json.dumps(t('gallery.confirm', lang))}) ? [a, b] : [null, b]",
                 api_name="gallery_delete")
