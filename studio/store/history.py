"""The generation history: one SQLite row per result, files under `outputs/YYYY-MM-DD/`.

Write order (so that no row ever points to a file that does not exist):

1. the PNG is encoded in memory (pixels only, plus our metadata chunks: see `metadata`);
2. under the store lock, an IMMEDIATE transaction reserves the next id (the file name carries it:
   `000123_person_seed42.png`);
3. the file is written atomically (temp file in the same folder, fsync, rename, fsync folder);
4. the row is inserted and committed. If the insert fails the file is removed again.

A crash between 3 and 4 leaves an orphan file (reported by `reconcile`), never a dangling row.
`delete` goes the other way: the row is deleted and committed first, then the files.

One connection (`check_same_thread=False`) guarded by a lock serves all threads; the SQLite write
transaction also keeps a second process (e.g. a second app instance) from taking the same id.
"""

from __future__ import annotations

import errno
import io
import json
import logging
import operator
import os
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from PIL import Image

from studio.errors import StudioError
from studio.store import db as dbmod
from studio.store.files import atomic_write, clean_stale_temps, is_temp_name, remove_files
from studio.store.metadata import clean_pixels, png_info
from studio.store.records import NewRecord, Record  # noqa: F401  (the row types, imported from here by callers)

log = logging.getLogger(__name__)

MEDIA_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".gif", ".mp4", ".webm", ".mov", ".mkv"})
_DATE_DIR = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SAFE = re.compile(r"[^A-Za-z0-9_-]+")
_SUFFIX = re.compile(r"^\.[A-Za-z0-9]{1,8}$")
_DISK_FULL_ERRNOS = {errno.ENOSPC} | ({errno.EDQUOT} if hasattr(errno, "EDQUOT") else set())


@dataclass(frozen=True)
class ReconcileReport:
    missing_files: list[Record] = field(default_factory=list)
    orphan_files: list[Path] = field(default_factory=list)


class SavedRecords(list):
    """The records a multi-image save stored, in order (a plain list of `Record`), plus `failed`:
    (position in the request, StudioError) for each image that could not be stored. The disk and
    the history always agree with it: a failed image left neither a file nor a row."""

    def __init__(self, records: list["Record"] | None = None,
                 failed: list[tuple[int, StudioError]] | None = None) -> None:
        super().__init__(records or [])
        self.failed: list[tuple[int, StudioError]] = list(failed or [])


def default_stem(rec: NewRecord) -> str:
    return rec.workflow if rec.seed is None else f"{rec.workflow}_{rec.seed}"  # file names an owner reads: no "seed"


def safe_stem(text: str, *, limit: int = 60) -> str:
    """ASCII letters, digits, '-' and '_' only (portable file names)."""
    return _SAFE.sub("-", text).strip("-_")[:limit] or "image"


def _jdump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _jload(text: str | None, fallback: Any, rid: int) -> Any:
    if not text:
        return fallback
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        log.warning("history row %d holds invalid JSON; using an empty value", rid)
        return fallback


def _oserror_to_studio(exc: OSError) -> StudioError:
    if exc.errno in _DISK_FULL_ERRNOS:
        return StudioError("store.disk_full")
    return StudioError("store.write_failed", err=exc.strerror or str(exc))


def _sqlerror_to_studio(exc: sqlite3.Error) -> StudioError:
    if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
        return StudioError("store.disk_full")
    return StudioError("store.write_failed", err=str(exc))


_COLUMNS = ("id, created_at, workflow, engine, model_ids, seed, prompt_ko, prompt_en, settings, copy, "
            "hashtags, path, extra_paths, kept_owner_pixels, parent_id, missing")


class HistoryStore(dbmod.Store):
    """SQLite history plus the result files. Thread-safe; see the module docstring."""

    def __init__(self, outputs_dir: Path, db_path: Path, conn: sqlite3.Connection, *,
                 clock: Callable[[], datetime] | None = None) -> None:
        super().__init__(conn)
        self.outputs_dir = outputs_dir
        self.db_path = db_path
        self._clock = clock or (lambda: datetime.now().astimezone())
        self.cleaned_temp_files: list[Path] = []

    # --- lifecycle ---------------------------------------------------------------------------
    @classmethod
    def open(cls, outputs_dir: Path, db_path: Path, *,
             clock: Callable[[], datetime] | None = None) -> "HistoryStore":
        """Open (creating and migrating if needed) the store; removes interrupted temp files."""
        outputs_dir = Path(outputs_dir).expanduser().resolve()
        db_path = Path(db_path).expanduser().resolve()
        try:
            outputs_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _oserror_to_studio(exc) from exc
        cleaned = clean_stale_temps(outputs_dir)
        conn = dbmod.connect(db_path)
        try:
            dbmod.migrate(conn, path=db_path)
        except BaseException:
            conn.close()
            raise
        store = cls(outputs_dir, db_path, conn, clock=clock)
        store.cleaned_temp_files = cleaned
        return store

    # --- writing -----------------------------------------------------------------------------
    def save_image(self, image: Image.Image, rec: NewRecord, *, stem: str | None = None) -> Record:
        """Store `image` as PNG (pixels + our metadata only) and add its row."""
        created = self._clock()
        created_at = created.isoformat(timespec="seconds")
        pixels = clean_pixels(image)
        buf = io.BytesIO()
        pixels.save(buf, "PNG", pnginfo=png_info(rec, created_at=created_at, size=pixels.size),
                    compress_level=4)
        return self._store_main(buf.getvalue(), ".png", rec, created, stem)

    def save_images(self, items: list[tuple[Image.Image, NewRecord]]) -> SavedRecords:
        """Store several results, each on its own (file + row, atomic as in `save_image`). One that
        fails (a full disk...) does not undo or hide the others: the answer lists what was saved
        and what was not, so the owner can be told exactly that."""
        out = SavedRecords()
        for position, (image, rec) in enumerate(items):
            try:
                out.append(self.save_image(image, rec))
            except StudioError as exc:
                log.warning("result %d of %d not saved: %s", position + 1, len(items), exc.key)
                out.failed.append((position, exc))
        return out

    def save_file(self, data: bytes, suffix: str, rec: NewRecord, *, stem: str | None = None) -> Record:
        """Store a non-PNG result (e.g. an mp4 video) and add its row."""
        suffix = suffix if suffix.startswith(".") else f".{suffix}"
        if not _SUFFIX.match(suffix):
            raise ValueError(f"bad file suffix {suffix!r}")
        return self._store_main(bytes(data), suffix.lower(), rec, self._clock(), stem)

    def _store_main(self, data: bytes, suffix: str, rec: NewRecord, created: datetime,
                    stem: str | None) -> Record:
        created_at = created.isoformat(timespec="seconds")
        values = (created_at, rec.workflow, rec.engine, _jdump(list(rec.model_ids)), rec.seed,
                  rec.prompt_ko, rec.prompt_en, _jdump(rec.settings), _jdump(rec.copy),
                  _jdump(list(rec.hashtags)), int(bool(rec.kept_owner_pixels)))
        folder = self.outputs_dir / created.strftime("%Y-%m-%d")
        name_stem = safe_stem(stem or default_stem(rec))
        with self._lock:
            path: Path | None = None
            try:
                with dbmod.immediate(self.conn, _sqlerror_to_studio) as conn:
                    new_id = self._next_id(conn)
                    path = folder / f"{new_id:06d}_{name_stem}{suffix}"
                    while path.exists():  # a leftover from a crash before its row was committed
                        new_id += 1
                        path = folder / f"{new_id:06d}_{name_stem}{suffix}"
                    parent_id = rec.parent_id
                    if parent_id is not None and conn.execute(
                            "SELECT 1 FROM generations WHERE id = ?", (parent_id,)).fetchone() is None:
                        log.warning("parent #%s no longer exists; storing #%d without a parent", parent_id, new_id)
                        parent_id = None
                    try:
                        atomic_write(path, data)
                    except OSError as exc:
                        path = None
                        raise _oserror_to_studio(exc) from exc
                    conn.execute(
                        f"INSERT INTO generations ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,0)",
                        (new_id, *values[:10], self._rel(path), "[]", values[10], parent_id))
            except BaseException:
                if path is not None:
                    remove_files([path])
                raise
        log.info("saved #%d %s", new_id, path)
        return self.get(new_id)

    @staticmethod
    def _next_id(conn: sqlite3.Connection) -> int:
        row = conn.execute(
            "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'generations'), 0),"
            "           COALESCE((SELECT MAX(id) FROM generations), 0))").fetchone()
        return int(row[0]) + 1

    def add_files(self, record_id: int, files: dict[str, bytes | Image.Image]) -> Record:
        """Write extra files next to the main one as `<stem>_<name>` and list them on the row.

        A name without a suffix gets `.png` for images and `.bin` for bytes. Writing the same
        name again replaces that file (atomically).
        """
        rec = self.get(record_id)
        prepared: list[tuple[Path, bytes]] = []
        for name, content in files.items():
            base, dot, ext = str(name).rpartition(".")
            if not dot or not _SUFFIX.match(f".{ext}"):
                base, ext = str(name), ("png" if isinstance(content, Image.Image) else "bin")
            target = rec.path.with_name(f"{rec.path.stem}_{safe_stem(base, limit=40)}.{ext.lower()}")
            if isinstance(content, Image.Image):
                pixels = clean_pixels(content)
                buf = io.BytesIO()
                pixels.save(buf, "PNG", compress_level=4,
                            pnginfo=png_info(rec.to_new(), created_at=rec.created_at, size=pixels.size))
                payload = buf.getvalue()
            else:
                payload = bytes(content)
            prepared.append((target, payload))
        with self._lock:
            created: list[Path] = []
            try:
                with dbmod.immediate(self.conn, _sqlerror_to_studio) as conn:
                    row = conn.execute("SELECT extra_paths FROM generations WHERE id = ?", (record_id,)).fetchone()
                    if row is None:
                        raise StudioError("store.not_found", id=record_id)
                    extras: list[str] = list(_jload(row[0], [], record_id))
                    for target, payload in prepared:
                        existed = target.exists()
                        try:
                            atomic_write(target, payload, overwrite=True)
                        except OSError as exc:
                            raise _oserror_to_studio(exc) from exc
                        if not existed:
                            created.append(target)
                        rel = self._rel(target)
                        if rel not in extras:
                            extras.append(rel)
                    conn.execute("UPDATE generations SET extra_paths = ? WHERE id = ?", (_jdump(extras), record_id))
            except BaseException:
                remove_files(created)
                raise
        return self.get(record_id)

    def update_copy(self, id: int, copy: dict, hashtags: list[str]) -> Record:  # noqa: A002
        with self._lock:
            try:
                cur = self.conn.execute("UPDATE generations SET copy = ?, hashtags = ? WHERE id = ?",
                                        (_jdump(copy), _jdump(list(hashtags)), id))
            except sqlite3.Error as exc:
                raise _sqlerror_to_studio(exc) from exc
            if cur.rowcount == 0:
                raise StudioError("store.not_found", id=id)
        return self.get(id)

    def delete(self, id: int, *, delete_files: bool = True) -> None:  # noqa: A002
        """Delete the row (committed first), then its files: a crash in between leaves orphan
        files, which `reconcile` reports, never a row without its file."""
        with self._lock:
            rec = self.get(id)
            try:
                self.conn.execute("DELETE FROM generations WHERE id = ?", (id,))
            except sqlite3.Error as exc:
                raise _sqlerror_to_studio(exc) from exc
            if delete_files:
                failed = remove_files([rec.path, *rec.extra_paths])
                if failed:
                    log.warning("history #%d deleted but %d file(s) stayed: %s", id, len(failed), failed)

    # --- reading -----------------------------------------------------------------------------
    def get(self, id: int) -> Record:  # noqa: A002
        try:
            id = operator.index(id)  # noqa: A001 - ints, numpy ints; not floats or text
        except TypeError:
            raise StudioError("store.not_found", id=id) from None
        if not 0 < id <= 2**63 - 1:  # SQLite's INTEGER range: no OverflowError for 10**20
            raise StudioError("store.not_found", id=id)
        with self._lock:
            row = self.conn.execute(f"SELECT {_COLUMNS} FROM generations WHERE id = ?", (int(id),)).fetchone()
        if row is None:
            raise StudioError("store.not_found", id=id)
        return self._record(row)

    def list(self, limit: int = 200, offset: int = 0, workflow: str | None = None) -> list[Record]:  # noqa: A003
        """Newest first."""
        sql = f"SELECT {_COLUMNS} FROM generations"
        args: list[Any] = []
        if workflow is not None:
            sql += " WHERE workflow = ?"
            args.append(workflow)
        sql += " ORDER BY id DESC LIMIT ? OFFSET ?"
        args += [max(0, int(limit)), max(0, int(offset))]
        with self._lock:
            rows = self.conn.execute(sql, args).fetchall()
        return [self._record(r) for r in rows]

    def count(self, workflow: str | None = None) -> int:
        with self._lock:
            if workflow is None:
                row = self.conn.execute("SELECT COUNT(*) FROM generations").fetchone()
            else:
                row = self.conn.execute("SELECT COUNT(*) FROM generations WHERE workflow = ?", (workflow,)).fetchone()
        return int(row[0])

    # --- reconcile ---------------------------------------------------------------------------
    def reconcile(self) -> ReconcileReport:
        """Report rows whose main file is missing and media files in dated folders without a row.

        Deletes nothing: rows are only flagged `missing` (and unflagged when the file is back).
        """
        with self._lock:
            rows = self.conn.execute("SELECT id, path, extra_paths, missing FROM generations").fetchall()
            referenced: set[str] = set()
            now_missing: list[int] = []
            back: list[int] = []
            for rid, rel, extras, flag in rows:
                main = self._abs(rel)
                referenced.add(os.path.normcase(str(main)))
                referenced.update(os.path.normcase(str(self._abs(e))) for e in _jload(extras, [], rid))
                exists = main.is_file()
                if not exists and not flag:
                    now_missing.append(rid)
                elif exists and flag:
                    back.append(rid)
            if now_missing or back:
                try:
                    with dbmod.immediate(self.conn) as conn:
                        conn.executemany("UPDATE generations SET missing = 1 WHERE id = ?", [(i,) for i in now_missing])
                        conn.executemany("UPDATE generations SET missing = 0 WHERE id = ?", [(i,) for i in back])
                except sqlite3.Error as exc:
                    log.warning("could not update missing flags: %s", exc)
            missing = [self._record(r) for r in self.conn.execute(
                f"SELECT {_COLUMNS} FROM generations WHERE missing = 1 ORDER BY id DESC").fetchall()]
            orphans = self._orphans(referenced)
        if missing or orphans:
            log.warning("reconcile: %d row(s) without file, %d file(s) without row", len(missing), len(orphans))
        return ReconcileReport(missing_files=missing, orphan_files=orphans)

    def _orphans(self, referenced: set[str]) -> list[Path]:
        found: list[Path] = []
        try:
            folders = [p for p in self.outputs_dir.iterdir() if p.is_dir() and _DATE_DIR.match(p.name)]
        except OSError as exc:
            log.warning("cannot list %s: %s", self.outputs_dir, exc)
            return found
        for folder in folders:
            for entry in folder.iterdir():
                if (entry.suffix.lower() in MEDIA_SUFFIXES and not is_temp_name(entry.name) and entry.is_file()
                        and os.path.normcase(str(entry)) not in referenced):
                    found.append(entry)
        return sorted(found)

    # --- helpers -----------------------------------------------------------------------------
    def _rel(self, path: Path) -> str:
        try:
            return PurePosixPath(path.relative_to(self.outputs_dir)).as_posix()
        except ValueError:
            return str(path)

    def _abs(self, stored: str) -> Path:
        p = Path(stored)
        return p if p.is_absolute() else self.outputs_dir / PurePosixPath(stored)

    def _record(self, row: tuple) -> Record:
        (rid, created_at, workflow, engine, model_ids, seed, prompt_ko, prompt_en, settings, copy,
         hashtags, path, extras, kept, parent_id, missing) = row
        return Record(
            id=int(rid), created_at=created_at, path=self._abs(path), workflow=workflow, engine=engine,
            extra_paths=[self._abs(e) for e in _jload(extras, [], rid)],
            model_ids=list(_jload(model_ids, [], rid)), seed=seed, prompt_ko=prompt_ko or "",
            prompt_en=prompt_en or "", settings=dict(_jload(settings, {}, rid)), copy=dict(_jload(copy, {}, rid)),
            hashtags=list(_jload(hashtags, [], rid)), kept_owner_pixels=bool(kept), parent_id=parent_id,
            missing=bool(missing))
