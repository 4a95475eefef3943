"""Gallery helpers over the history: labels, the image rows a picker offers, a history id from a
widget value, and the source image of a record (read through the safe loader). Used by the
Gallery, Overlay and Video tabs and the video builder (moved out of workflows/overlay.py, issue 19).
They sit at the workflows layer, not in store/: they read images through vision's safe loader,
and the store stays below vision, render and schema, which use it."""

from __future__ import annotations

import logging
import math
from datetime import datetime
from typing import Any

from PIL import Image

from studio.errors import InputError, StudioError
from studio.i18n import t

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
MAX_RECORD_ID = 2**63 - 1


def local_time(created_at: str) -> str:
    """'2026-12-01 20:48' in the PC's own time zone (the row stores ISO 8601 with an offset)."""
    try:
        return datetime.fromisoformat(created_at).astimezone().strftime("%Y-%m-%d %H:%M")
    except (TypeError, ValueError):
        return str(created_at)[:16]


def record_label(rec: Any, lang: str) -> str:
    """'#12 · 제품 · 2026-12-01 20:48': the workflow in words, the local date."""
    return f"#{rec.id} · {t(f'tab.{rec.workflow}', lang)} · {local_time(rec.created_at)}"


def history_choices(services: Any, limit_n: int = 200) -> list[tuple[str, int]]:
    return [(record_label(rec, services.lang), rec.id) for rec in history_images(services, limit_n)]


def history_images(services: Any, limit_n: int = 200) -> list[Any]:
    return [rec for rec in services.store.list(limit=limit_n)
            if rec.path.suffix.lower() in IMAGE_SUFFIXES and rec.path.is_file()]


def safe_history_choices(services: Any, where: str) -> list[tuple[str, int]]:
    """`history_choices`, or none (logged) when the history cannot be read: a picker still builds."""
    try:
        return history_choices(services)
    except StudioError as exc:
        log.warning("history unavailable for the %s tab: %s", where, exc)
        return []


def record_id(value: object) -> int | None:
    """A history id from a widget/API value: None when empty, InputError when not a sane id."""
    if value is None or str(value).strip() in ("", "None"):
        return None
    try:
        number = float(str(value).strip())
    except ValueError as exc:
        raise InputError("input.bad_history_id") from exc
    if not math.isfinite(number) or number != int(number) or not 0 < number <= MAX_RECORD_ID:
        raise InputError("input.bad_history_id")
    return int(number)


def source_image(services: Any, upload: Any, record: object) -> tuple[Image.Image, int | None, tuple | None]:
    """(image, parent record id or None, focus box or None). The upload (a path, bytes or an
    image) goes through the safe loader; a history item is read through it as well."""
    from studio.vision.io import load_image

    if upload is not None and not (isinstance(upload, str) and not upload.strip()):
        return load_image(upload).image, None, None
    rid = record_id(record)
    if rid is not None:
        image, rec, focus = record_image(services, rid)
        return image, rec.id, focus
    raise InputError("overlay.no_image")


def record_focus(rec: Any) -> tuple[float, float, float, float] | None:
    """The focus box saved with a record (x0, y0, x1, y1), or None when absent or not four finite numbers."""
    box = rec.settings.get("focus_box") if isinstance(rec.settings, dict) else None
    if not isinstance(box, (list, tuple)) or len(box) != 4:
        return None
    try:
        focus = tuple(float(v) for v in box)
    except (TypeError, ValueError):
        return None
    return focus if all(math.isfinite(v) for v in focus) else None  # type: ignore[return-value]


def record_image(services: Any, rid: int) -> tuple[Image.Image, Any, tuple | None]:
    """(image read through the safe loader, the record, its focus box or None) of history item `rid`."""
    from studio.vision.io import load_image

    rec = services.store.get(int(rid))
    return load_image(rec.path).image, rec, record_focus(rec)
