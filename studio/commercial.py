"""The "상업용으로 쓸 수 있는 모델만" switch (issue 23): one flag, `Settings.commercial_only`.

On (the default), every task uses only models whose licence allows business use
(`commercial_use` in presets/models.json): the engine registry skips non-commercial engines,
the vision kit never picks InsightFace or OpenPose by itself and refuses a non-commercial
cut-out model, and the stock upscaler uses only catalogued commercial files. Off, the
non-commercial models become choosable again; the Models tab (`ui.tabs.models.commercial_summary`)
says which, in plain words.

No torch here: the Models tab calls these at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from studio.engines.base import TASKS
from studio.i18n import t


@dataclass(frozen=True)
class TaskModel:
    task: str
    engine: str
    label: str
    licence: str
    commercial: bool


def engine_licence(task: str, engine: str, presets: Any, lang: str = "ko") -> tuple[str, bool]:
    """(licence words, commercial) of the models a task's engine loads; built-in engines are the
    studio's own code."""
    from studio.engines.registry import spec_for

    spec = spec_for(task, engine)
    if not spec.model_ids:
        return (t("commercial.builtin", lang), spec.name != "tiny")
    by_id = {m.id: m for m in presets.models}
    rows = [by_id[i] for i in spec.model_ids if i in by_id]
    if not rows:
        return ("unknown", False)
    licences = sorted({r.licence for r in rows})
    return (" + ".join(licences), all(r.commercial_use for r in rows))


def task_models(services: Any) -> list[TaskModel]:
    """Which engine each task uses now, with its licence."""
    out = []
    for task in TASKS:
        choice = services.engines.choice(task)
        lic, com = engine_licence(task, choice.name, services.presets, services.lang)
        from studio.engines.registry import spec_for

        out.append(TaskModel(task, choice.name, t(spec_for(task, choice.name).label_key, services.lang), lic, com))
    return out


def noncommercial_models(presets: Any, lang: str) -> list[str]:
    return [m.name(lang) for m in presets.models if not m.commercial_use]


def set_commercial_only(services: Any, on: bool) -> None:
    """Flip the switch while the app runs: settings, the engine choices made automatically, and
    the vision kit (rebuilt on next use) all follow."""
    settings = services.settings.with_(commercial_only=bool(on))
    services.settings = settings
    engines = services.engines
    engines.settings = settings
    with engines._lock:
        for task, choice in list(engines._choices.items()):
            if choice.reason_key not in ("engine.reason.forced", "engine.reason.selected") or on:
                engines.release(task, choice.name)
                engines._choices.pop(task, None)
    services.reload_vision()
