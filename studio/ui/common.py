"""Glue shared by the tabs: error mapping and safe text."""

from __future__ import annotations

import base64
import functools
import html
import logging
import tempfile
import types
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


def _raw_preprocess(self: gr.Image, payload: Any) -> str | None:
    """Hand the uploaded file to our safe loader untouched.

    gr.Image would open the file with PIL first (a decompression bomb or a text file named .png
    would fail there with Gradio's own English error). Bound per instance rather than through a
    gr.Image subclass, because Gradio writes a .pyi stub next to any module defining one.
    """
    if payload is None:
        return None
    url = getattr(payload, "url", None)
    if url and url.startswith("data:"):
        _, _, data = url.partition(",")
        with tempfile.NamedTemporaryFile(prefix="fitad_paste_", suffix=".bin", delete=False,
                                         dir=self.GRADIO_CACHE) as fh:
            fh.write(base64.b64decode(data))
            return fh.name
    return payload.path


def upload_image(**kwargs: Any) -> gr.Image:
    """A gr.Image (drag-and-drop, paste) whose value is the raw uploaded file's path."""
    image = gr.Image(type="filepath", **kwargs)
    image.preprocess = types.MethodType(_raw_preprocess, image)  # type: ignore[method-assign]
    return image


def form_handler(names: list[str], fn: Callable[[dict[str, Any], Any, Any], Any],
                 optional: tuple[str, ...] = ()) -> Callable[..., Any]:
    """A Gradio handler taking one value per named component, calling `fn(form, request, progress)`
    with `form` a dict by component name: the handler builds its typed request by keyword, not
    from a long positional list. The signature Gradio reads names every input (API callers see
    those names) and asks for the request and a progress tracker. `optional` names (the last
    inputs) default to None, so API callers may leave them out."""
    import inspect

    def handler(*args: Any) -> Any:
        values, request, progress = args[:-2], args[-2], args[-1]
        return fn(dict(zip(names, values)), request, progress)

    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    params = [inspect.Parameter(n, kind, **({"default": None} if n in optional else {})) for n in names]
    params += [inspect.Parameter("request", kind, annotation=gr.Request,
                                 **({"default": None} if optional else {})),
               inspect.Parameter("progress", kind, default=gr.Progress())]
    handler.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    handler.__annotations__ = {"request": gr.Request}
    handler.__name__ = getattr(fn, "__name__", "handler")
    handler.__qualname__ = handler.__name__
    return handler
