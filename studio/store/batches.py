"""Stock batch state: the plan (prompts + seeds) of every batch and each item's state.

Resume without duplicates or gaps rests on two facts:

1. the whole plan is committed (`create`) before the first image is generated, so a resumed batch
   renders exactly the same items (same prompt, same seed);
2. an item counts as done when its **history row** exists: the stock workflow stores the batch id
   and item index in the row's settings (``settings["batch_id"]``, ``settings["batch_item"]``),
   in the same SQLite transaction that makes the image visible. `sync_done` marks such items done
   before a resume, so an item whose row was committed just before a crash (and whose item row
   was not yet updated) is never generated twice, and an item without a row is generated again.

This module uses its own connection to the history database (WAL allows it); migration 3 of
`studio.store.db` creates the tables.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from studio.errors import StudioError
from studio.store import db as dbmod

log = logging.getLogger(__name__)

PENDING, DONE, REJECTED, FAILED = "pending", "done", "rejected", "failed"
FINAL_STATES = frozenset({DONE, REJECTED, FAILED})


@dataclass
class BatchItem:
    batch_id: str
    idx: int
    prompt: dict
    seed: int
    state: str = PENDING
    record_id: int | None = None
    engine: str = ""
    reason: str = ""


@dataclass
class Batch:
    id: str
    created_at: str
    status: str
    request: dict
    notices: list = field(default_factory=list)

    @property
    def short(self) -> str:
        return self.id[:8]


class BatchStore(dbmod.Store):
    def __init__(self, db_path: Path) -> None:
        self.db_path = Path(db_path)
        conn = dbmod.connect(self.db_path)
        dbmod.migrate(conn, path=self.db_path)
        super().__init__(conn)

    def _tx(self, fn: Any) -> Any:
        with self._lock, dbmod.immediate(self.conn, lambda exc: StudioError("store.write_failed", err=str(exc))) as conn:
            return fn(conn)

    # --- writing -----------------------------------------------------------------------------
    def create(self, request: dict, plan: list[tuple[dict, int]], notices: list | None = None) -> Batch:
        """Store a new batch with its whole plan: (prompt dict, seed) per item."""
        batch_id = uuid.uuid4().hex
        created = datetime.now().astimezone().isoformat(timespec="seconds")

        def run(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO stock_batches (id, created_at, status, request, notices) VALUES (?,?,?,?,?)",
                         (batch_id, created, "planned", json.dumps(request, ensure_ascii=False),
                          json.dumps(notices or [], ensure_ascii=False)))
            conn.executemany("INSERT INTO stock_items (batch_id, idx, prompt, seed) VALUES (?,?,?,?)",
                             [(batch_id, i, json.dumps(p, ensure_ascii=False), int(s)) for i, (p, s) in enumerate(plan)])

        self._tx(run)
        return self.get(batch_id)

    def add_item(self, batch_id: str, prompt: dict, seed: int) -> BatchItem:
        """Append one pending item (a new prompt replacing a rejected one) and return it."""
        def run(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT COALESCE(MAX(idx), -1) FROM stock_items WHERE batch_id = ?",
                               (batch_id,)).fetchone()
            idx = int(row[0]) + 1
            conn.execute("INSERT INTO stock_items (batch_id, idx, prompt, seed) VALUES (?,?,?,?)",
                         (batch_id, idx, json.dumps(prompt, ensure_ascii=False), int(seed)))
            return idx

        idx = int(self._tx(run))
        return BatchItem(batch_id, idx, prompt, int(seed))

    def set_status(self, batch_id: str, status: str) -> None:
        self._tx(lambda c: c.execute("UPDATE stock_batches SET status = ? WHERE id = ?", (status, batch_id)))

    def add_notices(self, batch_id: str, notices: list) -> None:
        batch = self.get(batch_id)
        merged = list(batch.notices) + [n for n in notices if n not in batch.notices]
        self._tx(lambda c: c.execute("UPDATE stock_batches SET notices = ? WHERE id = ?",
                                     (json.dumps(merged, ensure_ascii=False), batch_id)))

    def mark(self, batch_id: str, idx: int, state: str, *, record_id: int | None = None, engine: str = "",
             reason: str = "") -> None:
        self._tx(lambda c: c.execute(
            "UPDATE stock_items SET state = ?, record_id = ?, engine = ?, reason = ? WHERE batch_id = ? AND idx = ?",
            (state, record_id, engine, reason, batch_id, int(idx))))

    def sync_done(self, batch_id: str) -> int:
        """Mark done every item whose history row exists (see the module docstring); returns how many
        items changed. Items marked done whose row is gone (deleted by the owner) stay done."""
        def run(conn: sqlite3.Connection) -> int:
            rows = conn.execute(
                "SELECT id, engine, json_extract(settings, '$.batch_item') FROM generations "
                "WHERE workflow = 'stock' AND json_extract(settings, '$.batch_id') = ? ORDER BY id",
                (batch_id,)).fetchall()
            changed = 0
            for rid, engine, idx in rows:
                if idx is None:
                    continue
                cur = conn.execute(
                    "UPDATE stock_items SET state = 'done', record_id = ?, engine = ? "
                    "WHERE batch_id = ? AND idx = ? AND (state != 'done' OR record_id IS NULL)",
                    (rid, engine, batch_id, int(idx)))
                changed += cur.rowcount
            return changed

        return int(self._tx(run))

    # --- reading -----------------------------------------------------------------------------
    def get(self, batch_id: str) -> Batch:
        with self._lock:
            row = self.conn.execute("SELECT id, created_at, status, request, notices FROM stock_batches "
                                    "WHERE id = ? OR id LIKE ?", (batch_id, f"{batch_id}%")).fetchone()
        if row is None:
            raise StudioError("stock.batch_missing", batch=batch_id)
        return Batch(row[0], row[1], row[2], json.loads(row[3] or "{}"), json.loads(row[4] or "[]"))

    def latest(self, *, unfinished: bool = False) -> Batch | None:
        sql = "SELECT id FROM stock_batches"
        if unfinished:
            sql += " WHERE status NOT IN ('done')"
        sql += " ORDER BY created_at DESC, rowid DESC LIMIT 1"
        with self._lock:
            row = self.conn.execute(sql).fetchone()
        return self.get(row[0]) if row else None

    def items(self, batch_id: str, state: str | None = None) -> list[BatchItem]:
        sql = "SELECT batch_id, idx, prompt, seed, state, record_id, engine, reason FROM stock_items WHERE batch_id = ?"
        args: list[Any] = [batch_id]
        if state is not None:
            sql += " AND state = ?"
            args.append(state)
        sql += " ORDER BY idx"
        with self._lock:
            rows = self.conn.execute(sql, args).fetchall()
        return [BatchItem(r[0], r[1], json.loads(r[2]), r[3], r[4], r[5], r[6], r[7]) for r in rows]

    def counts(self, batch_id: str) -> dict[str, int]:
        with self._lock:
            rows = self.conn.execute("SELECT state, COUNT(*) FROM stock_items WHERE batch_id = ? GROUP BY state",
                                     (batch_id,)).fetchall()
        return {state: int(n) for state, n in rows}
