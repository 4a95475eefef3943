"""The history's row types: `NewRecord` (what a workflow knows about a result before it is
stored) and `Record` (a stored row). Their own module, so that the PNG metadata writer and the
store both read them without importing each other; `studio.store.history` hands them on."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class NewRecord:
    """What a workflow knows about a result before it is stored."""

    workflow: str
    engine: str
    model_ids: list[str] = field(default_factory=list)
    seed: int | None = None
    prompt_ko: str = ""
    prompt_en: str = ""
    settings: dict = field(default_factory=dict)
    copy: dict = field(default_factory=dict)
    hashtags: list[str] = field(default_factory=list)
    kept_owner_pixels: bool = True
    parent_id: int | None = None


@dataclass(frozen=True, kw_only=True)
class Record(NewRecord):
    """A stored result: the NewRecord plus where and when it was stored. `path` is the absolute
    main file; `missing` is set by `reconcile`."""

    id: int
    created_at: str
    path: Path
    extra_paths: list[Path] = field(default_factory=list)
    missing: bool = False

    def to_new(self, **changes: Any) -> NewRecord:
        """The NewRecord fields of this record (e.g. to store a variation with parent_id=self.id)."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(NewRecord)}
        values.update(changes)
        return NewRecord(**values)
