"""A tab whose capability is still to come says so plainly (no fake controls)."""

from __future__ import annotations

import gradio as gr

from studio.i18n import t
from studio.services import Services
from studio.ui.common import esc


def build_coming(services: Services, what_key: str) -> None:
    gr.Markdown(f"### {esc(t(what_key, services.lang))}\n\n{esc(t('tab.coming', services.lang, what=t(what_key, services.lang)))}")
