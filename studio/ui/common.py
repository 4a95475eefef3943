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
    """Turn StudioError into a translated gr.Error; anything else is logged and shown briefly.

    The owner never sees a bare traceback; the log has it.
    """

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except gr.Error:
                raise
            except StudioError as exc:
                raise gr.Error(exc.message(lang)) from exc
            except Exception as exc:  # the UI boundary: log the bug, show a short message
                log.exception("handler %s failed", fn.__name__)
                raise gr.Error(t("job.failed", lang, err=type(exc).__name__)) from exc

        return inner  # type: ignore[return-value]

    return wrap


def esc(text: object) -> str:
    """Escape anything (LLM output, filenames) before it reaches HTML or Markdown."""
    return html.escape(str(text), quote=True)
