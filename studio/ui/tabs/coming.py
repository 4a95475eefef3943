"""A tab whose capability is still to come says so plainly (no fake controls)."""

from __future__ import annotations

import gradio as gr

from studio.i18n import t
from studio.services import Services
from studio.ui.common import esc
from studio.ui.labels import label


def build_coming(services: Services, what_key: str) -> None:
    gr.Markdown(f"### {esc(label(what_key, services.lang))}\n\n{esc(t('tab.coming', services.lang, what=label(what_key, services.lang)))}")
