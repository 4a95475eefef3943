"""Models tab: the catalog (present on disk, licence, VRAM need), the device and memory plan,
the vision backends in use, and downloads for the owner's PC."""

from __future__ import annotations

import logging

import gradio as gr

from studio.errors import InputError
from studio.runtime.catalog import catalog_status
from studio.i18n import MESSAGES, t
from studio.services import Services
from studio.ui.common import esc, guarded
from studio.ui.tabs.engines_panel import engine_words

log = logging.getLogger(__name__)

COLUMNS = ("name", "purpose", "present", "disk", "vram", "licence", "commercial", "outputs")


def catalog_rows(services: Services) -> list[list[object]]:
    lang = services.lang
    yes, no = t("yes", lang), t("no", lang)
    rows = []
    for st in catalog_status(services.presets.models, services.settings.models_dir):
        e = st.entry
        present = ("✅ " + t("models.present.yes", lang) if st.present else
                   ("⚠️ " + t("models.present.lfs", lang) if st.lfs_pointers else t("models.present.no", lang)))
        if e.source == "mediapipe-wheel":
            present = ("✅ " if st.present else "⚠️ ") + t("models.present.bundled", lang)
        rows.append([e.name(lang), t(f"models.purpose.{e.purpose}", lang), present, e.disk_gb, e.vram_gb,
                     licence_words(e.licence, e.commercial_use, lang),
                     yes if e.commercial_use else no, yes if e.outputs_commercial else no])
    return rows


def licence_words(licence: str, commercial: bool, lang: str) -> str:
    """The licence in plain words first, its exact name after (for looking it up)."""
    key = "models.licence.commercial" if commercial else "models.licence.noncommercial"
    return t(key, lang, name=licence)


def plan_words(plan: object, lang: str) -> str:
    """'CPU 전용 — …' : the plan's name in words and its notes as sentences (never a Python tuple)."""
    notes = " ".join(plan.notes(lang)) or t("models.plan.no_notes", lang)  # type: ignore[attr-defined]
    return f"{plan.label(lang)} — {notes}"  # type: ignore[attr-defined]


def device_markdown(services: Services) -> str:
    from studio.runtime.memory import choose_plan, detect_device

    lang = services.lang
    dev = detect_device()
    plan = choose_plan(dev.vram_gb if dev.cuda else None, services.settings.memory_plan, services.settings.quantize)
    vram = (t("ui.models.gpu_memory", lang, gb=f"{dev.vram_gb:.0f}") if dev.cuda and dev.vram_gb
            else t("models.no_gpu", lang))
    engine = services.engines.choice("inpaint")
    return "\n".join([
        f"- **{esc(t('models.label.device', lang))}**: {esc(dev.name)} ({esc(vram)})",
        f"- **{esc(t('models.label.plan', lang))}**: {esc(plan_words(plan, lang))}",
        "- **{}**: {} — {}".format(esc(t('models.label.engine', lang)), *map(esc, engine_words(engine, lang))),
    ])


def vision_markdown(services: Services) -> str:
    lang = services.lang
    lines = []
    for capability, info in services.vision.report().items():
        backend = info.get("backend") or "none"
        lic = info.get("licence") or ""
        commercial = info.get("commercial_use")
        what = t(f"models.capability.{capability}", lang) if f"models.capability.{capability}" in MESSAGES else capability
        # built-in tools in words; a downloaded model by the name the catalogue above uses
        key = f"ui.models.backend.{backend}"
        how = t(key, lang) if key in MESSAGES else t("ui.models.backend.model", lang, name=backend)
        use = "" if backend == "none" or commercial is None else " · " + licence_words(lic, bool(commercial), lang)
        lines.append(f"- **{esc(what)}**: {esc(how)}{esc(use)}")
    return "\n".join(lines)


def rembg_download(services: Services, entry, report) -> str:
    """A rembg cut-out model, fetched (URL and checksum from the catalogue) into models/rembg."""
    from pathlib import Path

    from studio.runtime import rembg_models

    name = Path(entry.files[0]).stem
    path = rembg_models.download(services.settings.models_dir, name, progress=report,
                                 presets_dir=services.settings.presets_dir)
    services.reload_vision()   # the next cut-out uses the new model
    return esc(t("rembg.download.done", services.lang, model=name, path=str(path)))


def commercial_summary(services: Services) -> str:
    """Markdown for the Models tab: what the switch does now, which model each task uses and its
    licence, where no commercial model is present (and what to download), and what turning it
    off would change."""
    from studio.commercial import noncommercial_models, task_models
    from studio.engines.base import TASKS
    from studio.engines.registry import commercial_gap

    lang = services.lang
    on = bool(getattr(services.settings, "commercial_only", True))
    others = ", ".join(noncommercial_models(services.presets, lang)[:6]) or "-"
    lines = [esc(t("commercial.on", lang)) if on else esc(t("commercial.off", lang, models=others))]
    if on:
        lines.append(esc(t("commercial.off_would", lang, models=others)))
    for row in task_models(services):
        flag = "✅" if row.commercial else "⚠️"
        lines.append(f"- {esc(t('commercial.task.' + row.task, lang))}: {esc(row.label)} — {esc(row.licence)} {flag}")
    for task in TASKS:
        gap = commercial_gap(task, services.settings)
        if gap:
            lines.append(f"- ⬇️ {esc(gap['message'])}")
    return "\n".join(lines)


def build_commercial_switch(services: Services) -> tuple[object, object]:
    """The one switch "상업용으로 쓸 수 있는 모델만" (issue 23) and what it means now."""
    lang = services.lang
    gr.Markdown(f"### {esc(t('commercial.title', lang))}")
    box = gr.Checkbox(value=bool(getattr(services.settings, "commercial_only", True)),
                      label=t("commercial.switch", lang), elem_id="commercial-only")
    md = gr.Markdown(commercial_summary(services), elem_id="commercial-summary")
    return box, md


def build(services: Services) -> None:
    lang = services.lang
    switch, switch_md = build_commercial_switch(services)
    gr.Markdown(f"### {esc(t('models.catalog', lang))}")
    table = gr.Dataframe(value=catalog_rows(services), headers=[t(f"models.col.{c}", lang) for c in COLUMNS],
                         interactive=False, wrap=True, elem_id="model-catalog")
    gr.Markdown(esc(t("models.licence_note", lang)))
    gr.Markdown(f"### {esc(t('models.device', lang))}")
    check = gr.Button(t("models.check", lang))
    device_md = gr.Markdown()
    gr.Markdown(f"### {esc(t('models.vision', lang))}")
    vision_md = gr.Markdown()

    @guarded(lang)
    def refresh_device():
        return device_markdown(services), vision_markdown(services), catalog_rows(services)

    check.click(refresh_device, None, [device_md, vision_md, table], api_name="models_device")

    @guarded(lang)
    def on_switch(on: bool):
        from studio.commercial import set_commercial_only

        set_commercial_only(services, bool(on))
        return commercial_summary(services), device_markdown(services), vision_markdown(services)

    switch.change(on_switch, [switch], [switch_md, device_md, vision_md], api_name="models_commercial_only")
    # also on page load (after the first HTTP 200, so startup stays light)
    gr.on(None, refresh_device, None, [device_md, vision_md, table], api_name=False)

    gr.Markdown(f"### {esc(t('models.download', lang))}")
    with gr.Row():
        pick = gr.Dropdown(choices=[(m.name(lang), m.id) for m in services.presets.models],
                           label=t("models.pick", lang), scale=3)
        token = gr.Textbox(label=t("models.token", lang), type="password", scale=2)
        download = gr.Button(t("models.download", lang), variant="primary", scale=1)
    download_md = gr.Markdown()

    @guarded(lang)
    def do_download(model_id: str, hf_token: str, progress=gr.Progress()):
        from studio.runtime.downloader import download_model

        if not model_id:
            raise InputError("models.pick_first")
        entry = services.presets.model(model_id)

        def report(done: int, total: int, desc: str = "") -> None:
            progress((done, total) if total else None, desc=desc or entry.name(lang))

        if entry.source == "rembg":
            return rembg_download(services, entry, report), catalog_rows(services)
        if entry.source == "mediapipe-wheel":
            from studio.runtime.bundled_models import bundled_files, ensure_bundled

            ensure_bundled(services.settings.models_dir, progress=lambda m: report(0, 0, m), lang=lang)
            return esc(t("bundled.ready", lang, n=len(bundled_files()))), catalog_rows(services)
        if entry.source in ("ollama", "manual"):  # not fetched here: say how (the note names the step)
            how = entry.note(lang)
            return esc(t("commercial.manual_download", lang, model=entry.name(lang), how=how)), catalog_rows(services)
        result = download_model(model_id, services.settings.models_dir, presets=services.presets,
                                token=hf_token or None, progress=report)
        done = t("models.downloaded", lang, files=result.files)
        return f"{esc(done)} `{esc(result.path)}`", catalog_rows(services)

    download.click(do_download, [pick, token], [download_md, table], api_name="models_download",
                   concurrency_id="downloads", concurrency_limit=1)

    from studio.ui.tabs.engines_panel import build_engine_panel

    build_engine_panel(services)  # the owner's engine switch per task
