"""Stock tab: plan a batch, watch its images stream in, stop/resume it, export a ZIP with CSVs.

The batch runs in a worker thread under the GPU lock (`services.jobs.run`); the handler is a
generator that yields the gallery and the progress line as each image is stored.
"""

from __future__ import annotations

import logging
import queue
import threading
from pathlib import Path
from typing import Any, Iterator

import gradio as gr

from studio.engines.registry import specs_for
from studio.errors import StudioError
from studio.i18n import t
from studio.services import Services
from studio.text.stock_prompts import MODES, load_templates
from studio.ui.common import esc, guarded

log = logging.getLogger(__name__)

TOKEN_KEY = "stock"


def _summary_md(summary: Any, lang: str) -> str:
    lines = [t("stock.summary", lang, batch=summary.batch_id[:8], done=summary.done, total=summary.total,
               rejected=len(summary.rejected), failed=summary.failed, status=summary.status)]
    lines += [n.text(lang) for n in summary.notices]
    lines += [t("stock.rejected_item", lang, item=r["item"], reason=t(f"stock.reason.{r['reason']}", lang))
              for r in summary.rejected]
    return "  \n".join(esc(x) for x in lines)


def _stream(services: Services, batch_id: str, lang: str) -> Iterator[tuple[list, str]]:
    from studio.workflows.stock import run_batch

    events: "queue.Queue[tuple[str, Any]]" = queue.Queue()
    token = services.jobs.token(TOKEN_KEY)
    shown: list[tuple[str, str]] = []

    def work() -> None:
        try:
            summary = services.jobs.run(lambda: run_batch(
                batch_id, services, cancel=token,
                progress=lambda d, n, _desc="": events.put(("progress", (d, n))),
                on_image=lambda rec: events.put(("image", rec))), name="stock")
            events.put(("done", summary))
        except Exception as exc:  # noqa: BLE001 - handed to the UI thread, which shows it
            events.put(("error", exc))

    threading.Thread(target=work, name="stock-batch", daemon=True).start()
    status = ""
    while True:
        kind, value = events.get()
        if kind == "progress":
            status = esc(t("stock.ui.progress", lang, done=value[0], total=value[1]))
        elif kind == "image":
            shown.append((str(value.path), f"#{value.settings.get('batch_item')} · {value.engine}"))
        elif kind == "done":
            yield shown, _summary_md(value, lang)
            return
        else:
            raise value
        yield shown, status


def build(services: Services) -> None:
    lang = services.lang
    templates = load_templates(services.settings.presets_dir)
    engines = [s.name for s in specs_for("text2image") if s.auto or s.name == "tiny"]
    gr.Markdown(f"### {esc(t('stock.ui.title', lang))}\n{esc(t('stock.ui.intro', lang))}")
    batch_id = gr.Textbox(visible=False, label="batch")
    with gr.Row():
        with gr.Column(scale=2):
            mode = gr.Radio([(t(f"stock.ui.mode.{m}", lang), m) for m in MODES], value="keyword",
                            label=t("stock.ui.mode", lang))
            keywords = gr.Textbox(label=t("stock.ui.keywords", lang), placeholder="카페, 라떼아트")
            industry = gr.Dropdown([(f"{i.name_ko} ({i.id})", i.id) for i in templates.industries],
                                   value="background", label=t("stock.ui.industry", lang))
            count = gr.Slider(1, 500, value=20, step=1, label=t("stock.ui.count", lang))
            chain = gr.Dropdown(["auto", *engines], value=["auto", "lite"], multiselect=True,
                                label=t("stock.ui.chain", lang))
            with gr.Row():
                fmt = gr.Radio(["jpeg", "png"], value="jpeg", label=t("stock.ui.format", lang))
                quality = gr.Slider(60, 100, value=95, step=1, label=t("stock.ui.quality", lang))
            with gr.Row():
                min_short = gr.Number(value=2500, precision=0, label=t("stock.ui.upscale", lang))
                seed = gr.Number(value=0, precision=0, label=t("stock.ui.seed", lang))
            with gr.Row():
                start = gr.Button(t("stock.ui.start", lang), variant="primary")
                resume = gr.Button(t("stock.ui.resume", lang))
                stop = gr.Button(t("stock.ui.cancel", lang), variant="stop")
        with gr.Column(scale=3):
            status = gr.Markdown(label=t("stock.ui.status", lang))
            gallery = gr.Gallery(label=t("stock.ui.gallery", lang), columns=4, height=460, allow_preview=True)
            export = gr.Button(t("stock.ui.export", lang))
            zip_file = gr.File(label=t("stock.ui.zip", lang), interactive=False)

    @guarded(lang)
    def plan(mode_v: str, kw: str, ind: str, n: float, ch: list[str], f: str, q: float, ms: float, sd: float):
        from studio.workflows.stock import StockRequest, plan_batch

        req = StockRequest(mode=mode_v, keywords=kw or "", industry=ind, count=int(n), chain=tuple(ch or ["auto"]),
                           fmt=f, quality=int(q), min_short=int(ms or 0), seed=int(sd or 0))
        return plan_batch(req, services).id

    def run(bid: str):
        # a generator: errors surface while iterating, so they are translated here, not by @guarded
        if not bid:
            raise gr.Error(t("stock.nothing_to_resume", lang))
        try:
            yield from _stream(services, bid, lang)
        except StudioError as exc:
            raise gr.Error(exc.message(lang)) from exc
        except gr.Error:
            raise
        except Exception as exc:  # the UI boundary: log the bug, show a short message
            log.exception("stock batch failed")
            raise gr.Error(t("job.failed", lang, err=type(exc).__name__)) from exc

    @guarded(lang)
    def latest_unfinished() -> str:
        from studio.workflows.stock import batch_store

        with batch_store(services) as bs:
            batch = bs.latest(unfinished=True)
        if batch is None:
            raise gr.Error(t("stock.nothing_to_resume", lang))
        return batch.id

    @guarded(lang)
    def do_export(bid: str):
        from studio.workflows.stock import batch_store, export_zip

        if not bid:
            with batch_store(services) as bs:
                latest = bs.latest()
            if latest is None:
                raise gr.Error(t("stock.nothing_to_resume", lang))
            bid = latest.id
        target = Path(services.settings.outputs_dir) / "exports" / f"stock_{bid[:8]}.zip"
        return str(export_zip(services, bid, target))

    inputs = [mode, keywords, industry, count, chain, fmt, quality, min_short, seed]
    start.click(plan, inputs, batch_id, api_name="stock_plan").then(
        run, batch_id, [gallery, status], api_name="stock_run", concurrency_id="gpu", concurrency_limit=1)
    resume.click(latest_unfinished, None, batch_id, api_name="stock_latest").then(
        run, batch_id, [gallery, status], concurrency_id="gpu", concurrency_limit=1)
    stop.click(lambda: services.jobs.cancel(TOKEN_KEY), None, None, api_name="stock_cancel")
    export.click(do_export, batch_id, zip_file, api_name="stock_export")
