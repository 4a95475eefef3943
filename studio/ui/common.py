"""Glue shared by the tabs: error mapping and safe text."""

from __future__ import annotations

import functools
import html
import logging
from typing import Any, Callable, TypeVar

import gradio as gr

from studio.errors import StudioError
from studio.i18n import t

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])


def guarded(lang: str) -> Callable[[F], F]:
    """Turn StudioError into a translated gr.Error; anything else is logged with its traceback
    and the owner reads one plain message saying what to do (never an exception name, a server
    path or a library's own text).
    """

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except gr.Error:
                raise
            except StudioError as exc:
                raise gr.Error(exc.message(lang), title=t("error.title", lang)) from exc
            except Exception as exc:  # the UI boundary: log the bug, show a short message
                log.exception("handler %s failed", fn.__name__)
                raise gr.Error(t("job.failed_plain", lang), title=t("error.title", lang)) from exc

        return inner  # type: ignore[return-value]

    return wrap


def esc(text: object) -> str:
    """Escape anything (LLM output, filenames) before it reaches HTML or Markdown."""
    return html.escape(str(text), quote=True)
