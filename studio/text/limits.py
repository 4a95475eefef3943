"""Length limits of every text the owner (or an API caller) types.

Checked where the text enters (tab handlers, request models), so no per-request computation
(prompt fitting, tokenising, the LLM, the database, PNG metadata) ever sees an unbounded text.
A text over its limit is refused with a message naming the field and the limit, not cut.
"""

from __future__ import annotations

from studio.errors import InputError
from studio.i18n import Ref

#: field -> the most characters accepted (Korean or English)
MAX_CHARS: dict[str, int] = {
    "shop": 40,
    "product": 60,
    "offer": 80,
    "target": 60,
    "prompt_ko": 500,
    "prompt_en": 1500,
    "headline": 40,
    "sub_copy": 120,
    "cta": 40,
    "caption": 2200,      # Instagram's own caption limit
    "hashtags": 1000,
    "badge": 30,
    "box": 80,
    "seed": 40,
}


def limit(value: object, field: str) -> str:
    """`value` as text ('' for None), or InputError("input.too_long") naming the field."""
    text = "" if value is None else str(value)
    most = MAX_CHARS[field]
    if len(text) > most:
        raise InputError("input.too_long", what=Ref(f"field.{field}"), n=len(text), max=most)
    return text
