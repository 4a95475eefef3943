"""Which catalog models are present on disk (no torch, no network: a directory scan)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from studio.presets import ModelEntry

LFS_POINTER_PREFIX = b"version https://git-lfs"


@dataclass(frozen=True)
class ModelStatus:
    entry: ModelEntry
    folder: Path
    present: bool
    missing: tuple[str, ...]
    lfs_pointers: tuple[str, ...]


def model_status(entry: ModelEntry, models_dir: Path) -> ModelStatus:
    """Every file pattern of the entry must match at least one real (non-pointer) file."""
    folder = models_dir / entry.local_dir
    missing: list[str] = []
    pointers: list[str] = []
    for pattern in entry.files or ["*"]:
        matches = [p for p in folder.glob(pattern) if p.is_file()] if folder.is_dir() else []
        if not matches:
            missing.append(pattern)
            continue
        for p in matches:
            if p.stat().st_size < 1024:
                with p.open("rb") as fh:
                    if fh.read(len(LFS_POINTER_PREFIX)) == LFS_POINTER_PREFIX:
                        pointers.append(str(p.relative_to(models_dir)))
    return ModelStatus(entry, folder, present=not missing and not pointers,
                       missing=tuple(missing), lfs_pointers=tuple(pointers))


def catalog_status(entries: list[ModelEntry], models_dir: Path) -> list[ModelStatus]:
    return [model_status(e, models_dir) for e in entries]
