"""History store under faults: interrupted writes, killed processes, disk full, reconcile, threads.

Invariant checked throughout: no half-written PNG in a dated folder and no row pointing to a
missing file. Crashes are real where it matters (a child process killed with SIGKILL or ending
with os._exit at a chosen point).
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.config import REPO_ROOT
from studio.errors import StudioError
from studio.store import files as files_mod
from studio.store import history as history_mod
from studio.store.files import TEMP_PREFIX, clean_stale_temps
from studio.store.history import HistoryStore, NewRecord


def small(seed: int = 0, size: int = 64) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8))


def rec(seed: int | None = 1, workflow: str = "person") -> NewRecord:
    return NewRecord(workflow=workflow, engine="lite", seed=seed, prompt_ko="카페", prompt_en="cafe")


def paths(tmp_path: Path) -> tuple[Path, Path]:
    out = tmp_path / "outputs"
    return out, out / "history.sqlite"


def media_files(out: Path) -> list[Path]:
    return sorted(p for p in out.glob("*/*") if p.is_file())


def assert_consistent(store: HistoryStore) -> None:
    """Every row's file exists and decodes fully; no temp file and no undecodable PNG anywhere."""
    for r in store.list(limit=10_000):
        assert r.path.is_file(), f"row #{r.id} points to a missing file"
    for p in media_files(store.outputs_dir):
        assert not p.name.startswith(TEMP_PREFIX), f"temp file left: {p}"
        if p.suffix == ".png":
            with Image.open(p) as im:
                im.load()  # raises on a truncated PNG


# --- interrupted writes in this process ---------------------------------------------------------

def _failing_write(exc: OSError):
    """An os.write that really writes the first half of the first chunk, then fails."""
    state = {"calls": 0}
    real = os.write

    def fake(fd: int, data) -> int:
        state["calls"] += 1
        if state["calls"] == 1:
            return real(fd, data[: max(1, len(data) // 2)])
        raise exc

    return fake, state


@pytest.mark.parametrize("err,key", [(errno.EIO, "store.write_failed"), (errno.ENOSPC, "store.disk_full")])
def test_write_failing_midway_leaves_history_unchanged(tmp_path: Path, monkeypatch, err: int, key: str) -> None:
    out, dbp = paths(tmp_path)
    with HistoryStore.open(out, dbp) as s:
        first = s.save_image(small(1), rec())
        before = (s.list(), media_files(out), first.path.read_bytes())
        fake, state = _failing_write(OSError(err, os.strerror(err)))
        monkeypatch.setattr(files_mod, "_os_write", fake)
        with pytest.raises(StudioError) as ei:
            s.save_image(small(2, 256), rec(seed=2))
        assert state["calls"] == 2  # it really failed in the middle of the temp file
        assert ei.value.key == key
        if key == "store.disk_full":
            assert ei.value.message("ko").startswith("디스크 공간이 부족해 저장하지 못했습니다")
            assert "기록은 바뀌지 않았습니다" in ei.value.message("ko")
        else:
            assert os.strerror(errno.EIO) in ei.value.message("ko")
        assert (s.list(), media_files(out), first.path.read_bytes()) == before
        assert_consistent(s)
        monkeypatch.undo()
        nxt = s.save_image(small(3), rec(seed=3))
        assert nxt.id == 2 and s.reconcile().orphan_files == []


def test_disk_full_at_fsync_is_reported_and_history_unchanged(tmp_path: Path, monkeypatch) -> None:
    out, dbp = paths(tmp_path)
    with HistoryStore.open(out, dbp) as s:
        s.save_image(small(1), rec())

        def no_space(fd: int) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(files_mod, "_os_fsync", no_space)
        with pytest.raises(StudioError) as ei:
            s.save_file(b"video-bytes" * 100, ".mp4", rec(workflow="video"))
        assert ei.value.key == "store.disk_full"
        assert s.count() == 1 and len(media_files(out)) == 1
        assert_consistent(s)


def test_database_full_removes_the_written_file(tmp_path: Path) -> None:
    out, dbp = paths(tmp_path)
    with HistoryStore.open(out, dbp) as s:
        s.save_image(small(1), rec())
        pages = s.conn.execute("PRAGMA page_count").fetchone()[0]
        s.conn.execute(f"PRAGMA max_page_count = {pages}")
        big = NewRecord(workflow="person", engine="lite", prompt_en="x" * 200_000)  # needs new pages
        with pytest.raises(StudioError) as ei:
            s.save_image(small(2), big)
        assert ei.value.key == "store.disk_full"
        assert s.count() == 1 and len(media_files(out)) == 1
        assert_consistent(s)


def test_row_insert_failure_removes_the_file(tmp_path: Path) -> None:
    out, dbp = paths(tmp_path)
    with HistoryStore.open(out, dbp) as s:
        s.conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON generations BEGIN SELECT RAISE(ABORT, 'refused'); END")
        with pytest.raises(StudioError) as ei:
            s.save_image(small(), rec())
        assert ei.value.key == "store.write_failed" and "refused" in str(ei.value.fields["err"])
        assert media_files(out) == [] and s.count() == 0


def test_crash_between_row_delete_and_file_delete_leaves_orphan_not_dangling_row(tmp_path: Path,
                                                                                  monkeypatch) -> None:
    out, dbp = paths(tmp_path)
    with HistoryStore.open(out, dbp) as s:
        r = s.save_image(small(), rec())

        def boom(_paths):
            raise KeyboardInterrupt  # stands in for a crash right after the row delete committed

        monkeypatch.setattr(history_mod, "remove_files", boom)
        with pytest.raises(KeyboardInterrupt):
            s.delete(r.id)
    with HistoryStore.open(out, dbp) as s:
        assert s.count() == 0 and r.path.exists()
        assert s.reconcile().orphan_files == [r.path]


# --- real crashes in a child process ------------------------------------------------------------

CHILD_PRELUDE = textwrap.dedent("""
    import os, sys
    import numpy as np
    from pathlib import Path
    from PIL import Image
    from studio.store import files, history
    from studio.store.history import HistoryStore, NewRecord
    out = Path(sys.argv[1]); s = HistoryStore.open(out, out / "history.sqlite")
    rng = np.random.default_rng(0)
    def img(n=64):
        return Image.fromarray(rng.integers(0, 255, (n, n, 3), dtype=np.uint8))
""")


def run_child(body: str, out: Path, *, check_exit: int | None = 0) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run([sys.executable, "-c", CHILD_PRELUDE + textwrap.dedent(body), str(out)],
                          capture_output=True, text=True, timeout=60, env=env, cwd=REPO_ROOT)
    if check_exit is not None:
        assert proc.returncode == check_exit, proc.stderr
    return proc


def test_process_dying_mid_temp_write_leaves_temp_that_open_cleans(tmp_path: Path) -> None:
    out, dbp = paths(tmp_path)
    run_child("""
        s.save_image(img(), NewRecord("person", "lite", seed=1))
        real = os.write
        def die_midway(fd, data):
            real(fd, data[: len(data) // 2])
            os._exit(3)
        files._os_write = die_midway
        s.save_image(img(256), NewRecord("person", "lite", seed=2))
    """, out, check_exit=3)
    temps = list(out.glob(f"*/{TEMP_PREFIX}*"))
    assert len(temps) == 1 and temps[0].stat().st_size > 0  # the half-written file the crash left
    assert not any(p.suffix == ".png" and "seed2" in p.name for p in media_files(out))
    with HistoryStore.open(out, dbp) as s:
        assert s.cleaned_temp_files == temps and not temps[0].exists()
        assert s.count() == 1
        assert_consistent(s)
        report = s.reconcile()
        assert report.missing_files == [] and report.orphan_files == []


def test_process_dying_after_rename_before_commit_leaves_reported_orphan(tmp_path: Path) -> None:
    out, dbp = paths(tmp_path)
    run_child("""
        real = history.atomic_write
        def write_then_die(path, data, **kw):
            real(path, data, **kw)
            os._exit(4)
        history.atomic_write = write_then_die
        s.save_image(img(), NewRecord("person", "lite", seed=1))
    """, out, check_exit=4)
    [orphan] = media_files(out)
    with HistoryStore.open(out, dbp) as s:
        assert s.count() == 0  # the uncommitted row is gone
        report = s.reconcile()
        assert report.orphan_files == [orphan] and report.missing_files == []
        assert orphan.exists()  # reported, not deleted
        new = s.save_image(small(), rec(seed=1))  # same id reserved again: must not clobber the orphan
        assert new.path != orphan and orphan.exists() and new.path.exists()
        assert_consistent(s)


def test_save_loop_killed_with_sigkill_stays_consistent(tmp_path: Path) -> None:
    """A child saves in a loop (small chunks, so writes take a while); SIGKILL it once while it is
    provably in the middle of a temp file, then twice at arbitrary moments."""
    out, dbp = paths(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    body = CHILD_PRELUDE + textwrap.dedent("""
        import time
        files.CHUNK = 1 << 14
        real, stop_mid = os.write, sys.argv[2] == "mid"
        chunks = {"n": 0}
        def slow_write(fd, data):
            chunks["n"] += 1
            n = real(fd, data)
            if stop_mid and chunks["n"] == 40:  # well inside a file, after some rows exist
                print("mid", flush=True)
                time.sleep(30)
            time.sleep(0.001)
            return n
        files._os_write = slow_write
        i = 0
        while True:
            i += 1
            r = s.save_image(img(320), NewRecord("person", "lite", seed=i))
            if i % 2:
                s.add_files(r.id, {"story": img(160)})
            print(r.id, flush=True)
    """)
    rows_before = 0
    for mode, delay in (("mid", 0.0), ("any", 0.0), ("any", 0.017)):
        proc = subprocess.Popen([sys.executable, "-c", body, str(out), mode], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT)
        try:
            if mode == "mid":
                while (line := proc.stdout.readline()) and line.strip() != "mid":
                    pass
                assert line.strip() == "mid", proc.stderr.read()
            else:
                for _ in range(3):  # let it save a few, then kill it at an arbitrary moment
                    assert proc.stdout.readline(), proc.stderr.read()
                time.sleep(delay)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)
            proc.stdout.close()
            proc.stderr.close()
        assert proc.returncode == -signal.SIGKILL
        temps = list(out.glob(f"*/{TEMP_PREFIX}*"))
        if mode == "mid":
            assert len(temps) == 1 and temps[0].stat().st_size > 0  # killed while writing it
        with HistoryStore.open(out, dbp) as s:
            assert sorted(s.cleaned_temp_files) == sorted(temps)
            assert_consistent(s)
            report = s.reconcile()
            assert report.missing_files == []
            assert s.count() >= rows_before + (1 if mode == "mid" else 3)
            rows_before = s.count()


# --- reconcile ----------------------------------------------------------------------------------

def test_reconcile_reports_missing_and_orphans_and_deletes_nothing(tmp_path: Path) -> None:
    out, dbp = paths(tmp_path)
    with HistoryStore.open(out, dbp) as s:
        a = s.save_image(small(1), rec(seed=1))
        b = s.save_image(small(2), rec(seed=2))
        a.path.unlink()
        orphan = b.path.parent / "dropped_by_hand.png"
        small(3).save(orphan)
        (b.path.parent / "notes.txt").write_text("not media")
        (out / "not-a-date").mkdir()
        small(4).save(out / "not-a-date" / "x.png")
        report = s.reconcile()
        assert [r.id for r in report.missing_files] == [a.id] and report.missing_files[0].missing is True
        assert report.orphan_files == [orphan]
        assert orphan.exists() and s.count() == 2 and not a.path.exists()
        assert s.get(a.id).missing is True and s.get(b.id).missing is False
        # the file comes back (e.g. restored from a backup): the flag clears
        small(1).save(a.path)
        assert s.reconcile().missing_files == [] and s.get(a.id).missing is False


def test_open_cleans_only_temps_of_dead_writers(tmp_path: Path) -> None:
    day = tmp_path / "2024-01-01"
    day.mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead_pid = int(dead.stdout)
    stale = day / f"{TEMP_PREFIX}{dead_pid}-abcd-000001_x.png.part"
    live = day / f"{TEMP_PREFIX}{os.getpid()}-abcd-000002_x.png.part"
    unknown_old = day / f"{TEMP_PREFIX}nopid.part"
    for p in (stale, live, unknown_old):
        p.write_bytes(b"half")
    old = time.time() - 2 * files_mod.STALE_AFTER_S
    os.utime(unknown_old, (old, old))
    removed = clean_stale_temps(tmp_path)
    assert sorted(removed) == sorted([stale, unknown_old])
    assert live.exists() and not stale.exists() and not unknown_old.exists()


# --- concurrency --------------------------------------------------------------------------------

def test_threads_saving_at_once_get_unique_files_and_rows(tmp_path: Path) -> None:
    out, dbp = paths(tmp_path)
    n_threads, per_thread = 6, 4
    with HistoryStore.open(out, dbp) as s:
        results: list = []
        errors: list[BaseException] = []
        start = threading.Barrier(n_threads)

        def worker(k: int) -> None:
            try:
                start.wait()
                for j in range(per_thread):
                    r = s.save_image(small(k * 10 + j), rec(seed=7), stem="same_stem")
                    s.list(limit=5)
                    results.append((k, j, r))
            except BaseException as exc:  # noqa: BLE001 - surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(n_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors, errors
        total = n_threads * per_thread
        assert len({r.id for _, _, r in results}) == total
        assert len({r.path for _, _, r in results}) == total
        assert s.count() == total and len(media_files(out)) == total
        for k, j, r in results:  # each row points at the pixels that thread saved
            with Image.open(r.path) as im:
                assert np.array_equal(np.asarray(im), np.asarray(small(k * 10 + j)))
        assert_consistent(s)


def test_two_store_instances_on_one_database_do_not_collide(tmp_path: Path) -> None:
    out, dbp = paths(tmp_path)
    a, b = HistoryStore.open(out, dbp), HistoryStore.open(out, dbp)
    try:
        got: list = []

        def worker(store: HistoryStore) -> None:
            for i in range(6):
                got.append(store.save_image(small(i), rec(seed=1)))

        threads = [threading.Thread(target=worker, args=(st,)) for st in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert len(got) == 12 and len({r.path for r in got}) == 12 and len({r.id for r in got}) == 12
        assert a.count() == b.count() == 12
        assert_consistent(a)
    finally:
        a.close()
        b.close()


def test_closed_store_refuses_use(tmp_path: Path) -> None:
    out, dbp = paths(tmp_path)
    s = HistoryStore.open(out, dbp)
    s.close()
    s.close()  # idempotent
    with pytest.raises(RuntimeError):
        s.count()
