"""The owner's engine switch per task (a section of the Models tab): each engine with its status,
the active one with why it was chosen, and a switch that loads the new engine at once and, when
it cannot load, keeps the previous one and says why."""

from __future__ import annotations

import logging

from typing import Any

import gradio as gr

from studio.engines.base import TASKS
from studio.engines.registry import specs_for
from studio.i18n import t
from studio.services import Services
from studio.ui.common import esc, guarded

log = logging.getLogger(__name__)


def engine_choices(services: Services, task: str) -> list[tuple[str, str]]:
    lang = services.lang
    return [(t("engines.auto", lang), "auto")] + [(t(s.label_key, lang), s.name) for s in specs_for(task)]


def engine_words(choice: Any, lang: str) -> tuple[str, str]:
    """(the engine's display name, the reason) in the owner's words: never the internal id."""
    from studio.engines.registry import spec_for

    try:
        label = t(spec_for(choice.task, choice.name).label_key, lang)
    except Exception:  # an engine this build does not know: its id is all there is
        label = choice.name
    fields = {k: (label if v == choice.name else v) for k, v in choice.reason_fields.items()}
    return label, t(choice.reason_key, lang, **fields)


def engine_status_markdown(services: Services, task: str) -> str:
    """Each engine of the task with its status, then the active one and the reason."""
    lang = services.lang
    lines = []
    for spec, status in services.engines.status(task):
        lines.append("- " + esc(t("engines.row", lang, engine=t(spec.label_key, lang), status=t(status, lang))))
    choice = services.engines.choice(task)
    lines.append("")
    label, reason = engine_words(choice, lang)
    lines.append("**" + esc(t("engines.active_reason", lang, engine=label, reason=reason)) + "**")
    return "\n".join(lines)


def apply_engine_choice(services: Services, task: str, name: str) -> str:
    """Switch the task's engine now (a heavy one loads at once); the markdown says what happened."""
    if not name:
        raise gr.Error(t("engines.choice_label", services.lang, task=t(f"engine.task.{task}", services.lang)))
    services.engines.select(task, name, load=True)
    return engine_status_markdown(services, task)


def switch_engine_note(services: Services, task: str, name: str) -> str:
    """The ad tabs' switch: change the task's engine now; one line says which runs and why
    (a failed load keeps the previous engine and the line says so)."""
    if not name:
        raise gr.Error(t("engines.choice_label", services.lang, task=t(f"engine.task.{task}", services.lang)))
    choice = services.engines.select(task, name, load=True)
    lang = services.lang
    return esc(t("engines.active_reason", lang, engine=choice.name, reason=choice.reason(lang)))


def build_engine_panel(services: Services) -> None:
    lang = services.lang
    gr.Markdown(f"### {esc(t('engines.heading', lang))}")
    for task in TASKS:
        if not specs_for(task):
            continue
        with gr.Row():
            pick = gr.Dropdown(choices=engine_choices(services, task), value=services.engines.active_name(task),
                               label=t("engines.choice_label", lang, task=t(f"engine.task.{task}", lang)), scale=3)
            apply = gr.Button(t("engines.apply", lang), scale=1)
        status = gr.Markdown(engine_status_markdown(services, task))
        apply.click(guarded(lang)(_switcher(services, task)), [pick], [status], api_name=f"engine_{task}",
                    concurrency_limit=1)


def _switcher(services: Services, task: str):
    def switch_engine(name: str) -> str:
        return apply_engine_choice(services, task, name)

    return switch_engine
