"""SQLite connection and numbered migrations for the history database.

`connect(path)` opens a connection in autocommit mode (transactions are explicit: `BEGIN
IMMEDIATE` ... `COMMIT`) with WAL journaling, a busy timeout, foreign keys and `synchronous=FULL`
(a committed delete must survive a power cut, or a row could come back pointing to a file that
was already removed).

The schema version is `PRAGMA user_version`. `MIGRATIONS` is an ordered list of
`(number, step)` where a step is SQL text or a function taking the connection; `migrate` applies
each missing step and bumps `user_version` in the same transaction, so a crash mid-migration
leaves the database at the previous version.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Self

from studio.errors import StudioError

log = logging.getLogger(__name__)


BUSY_TIMEOUT_MS = 10_000


class Store:
    """One SQLite connection behind a re-entrant lock, closed once (HistoryStore, BatchStore)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn: sqlite3.Connection | None = conn
        self._lock = threading.RLock()

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"{type(self).__name__} is closed")
        return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def immediate(conn: sqlite3.Connection,
              error: Callable[[sqlite3.Error], Exception] | None = None) -> Iterator[sqlite3.Connection]:
    """`BEGIN IMMEDIATE` ... `COMMIT`; `ROLLBACK` when anything fails inside. An SQLite error (at
    BEGIN, inside or at COMMIT) is raised as `error(exc)` when `error` is given, else as it is."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as exc:
        if error is None:
            raise
        raise error(exc) from exc
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if error is not None and isinstance(exc, sqlite3.Error):
            raise error(exc) from exc
        raise

Step = str | Callable[[sqlite3.Connection], None]

_M1_GENERATIONS = """
CREATE TABLE generations (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at        TEXT    NOT NULL,
    workflow          TEXT    NOT NULL,
    engine            TEXT    NOT NULL,
    model_ids         TEXT    NOT NULL DEFAULT '[]',
    seed              INTEGER,
    prompt_ko         TEXT    NOT NULL DEFAULT '',
    prompt_en         TEXT    NOT NULL DEFAULT '',
    settings          TEXT    NOT NULL DEFAULT '{}',
    copy              TEXT    NOT NULL DEFAULT '{}',
    hashtags          TEXT    NOT NULL DEFAULT '[]',
    path              TEXT    NOT NULL UNIQUE,
    extra_paths       TEXT    NOT NULL DEFAULT '[]',
    kept_owner_pixels INTEGER NOT NULL DEFAULT 1
);
"""

_M2_MISSING_PARENT_INDEX = """
ALTER TABLE generations ADD COLUMN missing INTEGER NOT NULL DEFAULT 0;
ALTER TABLE generations ADD COLUMN parent_id INTEGER REFERENCES generations(id) ON DELETE SET NULL;
CREATE INDEX idx_generations_workflow_id ON generations(workflow, id);
CREATE INDEX idx_generations_parent ON generations(parent_id);
"""

# Stock batches (studio/store/batches.py): the plan of a batch (prompts + seeds) is stored before
# any image is generated, so a batch resumes after a crash with no duplicates and no gaps.
_M3_STOCK_BATCHES = """
CREATE TABLE stock_batches (
    id          TEXT    PRIMARY KEY,
    created_at  TEXT    NOT NULL,
    status      TEXT    NOT NULL DEFAULT 'planned',
    request     TEXT    NOT NULL DEFAULT '{}',
    notices     TEXT    NOT NULL DEFAULT '[]'
);
CREATE TABLE stock_items (
    batch_id    TEXT    NOT NULL REFERENCES stock_batches(id) ON DELETE CASCADE,
    idx         INTEGER NOT NULL,
    prompt      TEXT    NOT NULL,
    seed        INTEGER NOT NULL,
    state       TEXT    NOT NULL DEFAULT 'pending',
    record_id   INTEGER,
    engine      TEXT    NOT NULL DEFAULT '',
    reason      TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (batch_id, idx)
);
CREATE INDEX idx_stock_items_state ON stock_items(batch_id, state);
"""

MIGRATIONS: list[tuple[int, Step]] = [
    (1, _M1_GENERATIONS),
    (2, _M2_MISSING_PARENT_INDEX),
    (3, _M3_STOCK_BATCHES),
]
LATEST = MIGRATIONS[-1][0]


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) the database at `path`, configured for the store."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                               check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            log.warning("SQLite refused WAL mode for %s (got %s)", path, mode)
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
    except sqlite3.DatabaseError as exc:
        raise StudioError("store.db_broken", path=str(path), err=str(exc)) from exc
    return conn


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _check_numbering(migrations: Sequence[tuple[int, Step]]) -> None:
    numbers = [n for n, _ in migrations]
    if numbers != list(range(1, len(numbers) + 1)):
        raise ValueError(f"migrations must be numbered 1..n without gaps, got {numbers}")


def _apply(conn: sqlite3.Connection, step: Step) -> None:
    if callable(step):
        step(conn)
        return
    # executescript() would COMMIT our transaction first; run statement by statement instead.
    for stmt in step.split(";"):
        if stmt.strip():
            conn.execute(stmt)


def migrate(conn: sqlite3.Connection, *, target: int | None = None,
            migrations: Sequence[tuple[int, Step]] = MIGRATIONS, path: Path | str = "") -> int:
    """Bring the schema up to `target` (default: the latest); returns the resulting version.

    Each migration runs in its own IMMEDIATE transaction together with its `user_version` bump.
    A database newer than the code raises StudioError("store.db_newer").
    """
    _check_numbering(migrations)
    latest = migrations[-1][0] if migrations else 0
    target = latest if target is None else target
    if not 0 <= target <= latest:
        raise ValueError(f"target {target} outside 0..{latest}")
    current = schema_version(conn)
    if current > latest:
        raise StudioError("store.db_newer", path=str(path), found=current, latest=latest)
    for number, step in migrations:
        if number <= current or number > target:
            continue
        with immediate(conn):
            # Re-read inside the lock: another process may have migrated meanwhile.
            if schema_version(conn) >= number:
                continue                  # (commits an empty transaction)
            _apply(conn, step)
            conn.execute(f"PRAGMA user_version = {int(number)}")
        log.info("history database migrated to v%d", number)
    return schema_version(conn)


SIDECARS: tuple[str, ...] = ("", "-wal", "-shm", "-journal")


def relocate(old: Path, new: Path) -> bool:
    """Move a database left by an older version (inside the served outputs folder) to `new`,
    together with its -wal/-shm/-journal sidecars. Returns True when something was moved.

    Nothing is moved when `new` already exists (the newer location wins; the old file is left and
    logged) or when `old` does not exist. Runs at startup, before any connection is open.
    """
    old, new = Path(old), Path(new)
    if old == new or not old.is_file():
        return False
    if new.exists():
        log.warning("an old history database is still at %s; using %s", old, new)
        return False
    new.parent.mkdir(parents=True, exist_ok=True)
    for suffix in SIDECARS:
        src = old.with_name(old.name + suffix)
        if src.is_file():
            shutil.move(str(src), str(new.with_name(new.name + suffix)))
    log.info("moved the history database from %s to %s (outside the served folder)", old, new)
    return True
