"""Atomic file writes and the clean-up of interrupted ones.

`atomic_write(path, data)` writes to a temp file in the same folder (name starts with
`TEMP_PREFIX`, so it is recognisable and never looks like a result), flushes and fsyncs it,
`os.replace`s it onto `path` and fsyncs the folder. A reader therefore sees either no file or the
whole file, never half of one. If the write fails the temp file is removed and the OSError
propagates unchanged (the caller maps ENOSPC to a "disk full" message).

A process killed mid-write leaves a temp file behind; `clean_stale_temps` removes those whose
writer is gone. It runs when the store opens.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from pathlib import Path

log = logging.getLogger(__name__)

TEMP_PREFIX = ".fitad-tmp-"
TEMP_SUFFIX = ".part"
CHUNK = 1 << 20
# A temp file whose writer cannot be identified (Windows, foreign name) is stale after this long.
STALE_AFTER_S = 3600.0

# Indirection so fault tests can fail a write halfway without patching `os` for everybody.
_os_write = os.write
_os_fsync = os.fsync


def temp_path_for(path: Path) -> Path:
    """A fresh temp name next to `path`: `.fitad-tmp-<pid>-<random>-<name>.part`."""
    return path.with_name(f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}-{path.name}{TEMP_SUFFIX}")


def fsync_dir(folder: Path) -> None:
    """Make a rename/unlink in `folder` durable (no-op where folders cannot be opened, e.g. Windows)."""
    if os.name == "nt":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        _os_fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, *, overwrite: bool = False) -> Path:
    """Write `data` to `path` atomically and durably; returns `path`.

    With `overwrite=False` an existing `path` raises FileExistsError (names are unique by design,
    so an existing file means a bug or a leftover, and it must not be clobbered).
    """
    path = Path(path)
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_for(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o644)
    try:
        try:
            view = memoryview(data)
            while view:
                written = _os_write(fd, view[:CHUNK])
                view = view[written:]
            _os_fsync(fd)
        finally:
            os.close(fd)
        if not overwrite and path.exists():
            raise FileExistsError(f"refusing to overwrite {path}")
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    fsync_dir(folder)
    return path


def remove_files(paths: list[Path]) -> list[Path]:
    """Delete `paths` (missing ones are fine); returns those that could not be deleted."""
    failed: list[Path] = []
    folders: set[Path] = set()
    for p in paths:
        try:
            p.unlink()
            folders.add(p.parent)
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("could not delete %s: %s", p, exc)
            failed.append(p)
    for folder in folders:
        try:
            fsync_dir(folder)
        except OSError as exc:
            log.warning("could not fsync %s: %s", folder, exc)
    return failed


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        return
    except OSError as exc:
        log.warning("could not remove temp file %s: %s", path, exc)


def _pid_alive(pid: int) -> bool | None:
    """True/False on POSIX; None where it cannot be told safely (os.kill on Windows terminates)."""
    if os.name == "nt":
        return None
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return None
    return True


def is_temp_name(name: str) -> bool:
    return name.startswith(TEMP_PREFIX)


def clean_stale_temps(root: Path, *, max_depth: int = 1) -> list[Path]:
    """Remove temp files under `root` (and its sub-folders up to `max_depth`) left by dead writers.

    A temp file belongs to a dead writer when its pid no longer runs, or, where that cannot be
    checked, when it is older than STALE_AFTER_S. Returns the removed paths.
    """
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    folders = [root]
    if max_depth >= 1:
        folders += [p for p in root.iterdir() if p.is_dir()]
    now = time.time()
    for folder in folders:
        try:
            entries = list(folder.iterdir())
        except OSError as exc:
            log.warning("cannot list %s: %s", folder, exc)
            continue
        for entry in entries:
            if not is_temp_name(entry.name) or not entry.is_file():
                continue
            pid_text = entry.name[len(TEMP_PREFIX):].split("-", 1)[0]
            alive = _pid_alive(int(pid_text)) if pid_text.isdigit() else None
            if alive is None:
                try:
                    alive = now - entry.stat().st_mtime < STALE_AFTER_S
                except FileNotFoundError:
                    continue
            if alive:
                continue
            _unlink_quietly(entry)
            if not entry.exists():
                removed.append(entry)
    if removed:
        log.info("removed %d interrupted temp file(s) under %s", len(removed), root)
    return removed
