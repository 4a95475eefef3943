"""History store: API, file naming, PNG metadata + AI disclosure, privacy, migrations."""

from __future__ import annotations

import io
import sqlite3
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from studio.errors import StudioError
from studio.store import db as dbmod
from studio.store import history as history_mod
from studio.store.history import HistoryStore, NewRecord, Record
from studio.store.metadata import DST_COMPOSITE, DST_GENERATED, png_info, read_metadata

KST = timezone(timedelta(hours=9))


@pytest.fixture
def store(tmp_path: Path):
    s = HistoryStore.open(tmp_path / "outputs", tmp_path / "outputs" / "history.sqlite")
    yield s
    s.close()


def small(seed: int = 0, size: int = 64) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8))


def rec(**kw) -> NewRecord:
    base = dict(workflow="person", engine="lite", model_ids=["lite-v1"], seed=42, prompt_ko="따뜻한 카페 사장님",
                prompt_en="a cafe owner, warm light", settings={"steps": 28, "guidance_scale": 30.0},
                copy={"headline": "오늘의 커피"}, hashtags=["#카페", "#커피"])
    base.update(kw)
    return NewRecord(**base)


# --- basic API ---------------------------------------------------------------------------------

def test_save_image_names_file_by_id_and_round_trips_row(store: HistoryStore) -> None:
    r = store.save_image(small(), rec())
    assert isinstance(r, Record) and r.id == 1
    assert r.path.is_absolute() and r.path.is_file()
    assert r.path.name == "000001_person_42.png"
    created = datetime.fromisoformat(r.created_at)
    assert created.utcoffset() is not None
    assert r.path.parent == store.outputs_dir / r.created_at[:10]
    got = store.get(r.id)
    assert got == r
    assert (got.workflow, got.engine, got.model_ids, got.seed) == ("person", "lite", ["lite-v1"], 42)
    assert (got.prompt_ko, got.prompt_en, got.copy, got.hashtags) == (
        "따뜻한 카페 사장님", "a cafe owner, warm light", {"headline": "오늘의 커피"}, ["#카페", "#커피"])
    assert got.settings == {"steps": 28, "guidance_scale": 30.0}
    assert got.kept_owner_pixels is True and got.parent_id is None and got.missing is False
    with Image.open(r.path) as im:
        assert im.size == (64, 64)
        assert np.array_equal(np.asarray(im.convert("RGB")), np.asarray(small()))


def test_dated_folder_follows_clock_and_custom_stem(tmp_path: Path) -> None:
    clock = lambda: datetime(2024, 2, 29, 23, 59, 30, tzinfo=KST)  # noqa: E731
    with HistoryStore.open(tmp_path / "o", tmp_path / "o" / "h.sqlite", clock=clock) as s:
        r = s.save_image(small(), rec(seed=None), stem="스토리 ../../etc/passwd")
        assert r.created_at == "2024-02-29T23:59:30+09:00"
        assert r.path.parent.name == "2024-02-29"
        assert r.path.parent.parent == s.outputs_dir
        assert r.path.name.startswith("000001_") and "/" not in r.path.name[7:] and ".." not in r.path.name
        r2 = s.save_image(small(), rec(seed=None))
        assert r2.path.name == "000002_person.png"


def test_list_count_newest_first_paging_and_filter(store: HistoryStore) -> None:
    ids = [store.save_image(small(i), rec(workflow="person" if i % 2 else "product", seed=i)).id for i in range(5)]
    assert [r.id for r in store.list()] == ids[::-1]
    assert [r.id for r in store.list(limit=2, offset=1)] == ids[::-1][1:3]
    assert [r.id for r in store.list(workflow="person")] == [ids[3], ids[1]]
    assert store.count() == 5 and store.count("product") == 3 and store.count("video") == 0


def test_get_unknown_id_raises_korean_not_found(store: HistoryStore) -> None:
    with pytest.raises(StudioError) as ei:
        store.get(999)
    assert ei.value.key == "store.not_found"
    assert "#999" in ei.value.message("ko") and "찾을 수 없습니다" in ei.value.message("ko")


def test_update_copy_persists_across_reopen(tmp_path: Path) -> None:
    out, dbp = tmp_path / "o", tmp_path / "o" / "h.sqlite"
    with HistoryStore.open(out, dbp) as s:
        r = s.save_image(small(), rec())
        new = s.update_copy(r.id, {"headline": "신메뉴 출시"}, ["#신메뉴"])
        assert new.copy == {"headline": "신메뉴 출시"} and new.hashtags == ["#신메뉴"]
        with pytest.raises(StudioError, match="not found"):
            s.update_copy(77, {}, [])
    with HistoryStore.open(out, dbp) as s:
        assert s.get(r.id).copy == {"headline": "신메뉴 출시"}


def test_delete_removes_row_and_files_keep_files_option(store: HistoryStore) -> None:
    a = store.add_files(store.save_image(small(1), rec()).id, {"story": small(2)})
    b = store.save_image(small(3), rec())
    store.delete(a.id)
    assert not a.path.exists() and not a.extra_paths[0].exists()
    with pytest.raises(StudioError):
        store.get(a.id)
    store.delete(b.id, delete_files=False)
    assert b.path.exists() and store.count() == 0
    assert store.reconcile().orphan_files == [b.path]
    with pytest.raises(StudioError):
        store.delete(b.id)


def test_ids_are_never_reused_after_delete(store: HistoryStore) -> None:
    a = store.save_image(small(), rec())
    store.delete(a.id)
    b = store.save_image(small(), rec())
    assert b.id == a.id + 1 and b.path != a.path


def test_save_file_video_and_suffix_validation(store: HistoryStore) -> None:
    payload = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 10
    r = store.save_file(payload, "mp4", rec(workflow="video", seed=7))
    assert r.path.name == "000001_video_7.mp4" and r.path.read_bytes() == payload
    assert store.get(r.id).workflow == "video"
    for bad in (".mp4/../x", "", ".a b"):
        with pytest.raises(ValueError):
            store.save_file(b"x", bad, rec())
    assert store.count() == 1


def test_add_files_writes_next_to_main_and_lists_them(store: HistoryStore) -> None:
    r = store.save_image(small(), rec())
    r2 = store.add_files(r.id, {"story": small(5, 32), "caption.txt": "오늘의 커피".encode(), "raw": b"\x01\x02"})
    names = [p.name for p in r2.extra_paths]
    assert names == ["000001_person_42_story.png", "000001_person_42_caption.txt",
                     "000001_person_42_raw.bin"]
    assert all(p.parent == r.path.parent and p.is_file() for p in r2.extra_paths)
    assert r2.extra_paths[1].read_text(encoding="utf-8") == "오늘의 커피"
    assert read_metadata(r2.extra_paths[0])["digital_source_type"] == DST_COMPOSITE
    # same name again replaces the file without listing it twice
    r3 = store.add_files(r.id, {"story": small(6, 16)})
    assert len(r3.extra_paths) == 3
    with Image.open(r3.extra_paths[0]) as im:
        assert im.size == (16, 16)
    assert store.reconcile().orphan_files == []
    with pytest.raises(StudioError) as ei:
        store.add_files(999, {"x": b"1"})
    assert ei.value.key == "store.not_found"


def test_parent_link_and_missing_parent(store: HistoryStore) -> None:
    parent = store.save_image(small(), rec())
    child = store.save_image(small(1), parent.to_new(parent_id=parent.id, seed=43))
    assert child.parent_id == parent.id and child.seed == 43 and child.prompt_ko == parent.prompt_ko
    store.delete(parent.id)
    assert store.get(child.id).parent_id is None  # ON DELETE SET NULL
    orphan_child = store.save_image(small(2), rec(parent_id=12345))
    assert orphan_child.parent_id is None


def test_json_settings_with_non_json_values_are_stored_as_text(store: HistoryStore) -> None:
    r = store.save_image(small(), rec(settings={"size": (1080, 1350), "path": Path("/x/y")}))
    assert store.get(r.id).settings == {"size": [1080, 1350], "path": "/x/y"}


# --- metadata and disclosure --------------------------------------------------------------------

def test_png_has_a1111_parameters_json_and_composite_disclosure(store: HistoryStore) -> None:
    r = store.save_image(small(size=80), rec(settings={"steps": 28, "guidance_scale": 30.0, "sampler": "euler",
                                                        "negative_prompt": "blurry, text", "strength": 0.85,
                                                        "seed": 42}))
    meta = read_metadata(r.path)
    lines = meta["parameters"].split("\n")
    assert lines[0] == "a cafe owner, warm light"
    assert lines[1] == "Negative prompt: blurry, text"
    params = lines[2]
    for part in ("Steps: 28", "Sampler: euler", "Guidance: 30.0", "Seed: 42", "Size: 80x80", "Model: lite-v1",
                 "Engine: lite", "Strength: 0.85"):
        assert part in params, part
    assert params.count("Seed:") == 1
    assert meta["fitad"]["prompt_ko"] == "따뜻한 카페 사장님"
    assert meta["fitad"]["copy"] == {"headline": "오늘의 커피"}
    assert meta["fitad"]["created_at"] == r.created_at
    assert meta["digital_source_type"] == DST_COMPOSITE
    assert meta["software"].startswith("Fit-AD Studio")
    # the XMP packet is well-formed XML carrying the IPTC property
    body = meta["xmp"][meta["xmp"].index("<x:xmpmeta"):meta["xmp"].index("</x:xmpmeta>") + len("</x:xmpmeta>")]
    root = ET.fromstring(body)
    desc = root.find(".//{http://www.w3.org/1999/02/22-rdf-syntax-ns#}Description")
    assert desc is not None
    assert desc.get("{http://iptc.org/std/Iptc4xmpExt/2008-02-29/}DigitalSourceType") == DST_COMPOSITE


def test_fully_generated_image_is_labelled_trained_algorithmic_media(store: HistoryStore) -> None:
    r = store.save_image(small(), rec(workflow="stock", kept_owner_pixels=False))
    assert read_metadata(r.path)["digital_source_type"] == DST_GENERATED
    assert "compositeWith" not in read_metadata(r.path)["xmp"]


def test_png_info_cfg_scale_and_missing_prompt_en() -> None:
    info = png_info(rec(prompt_en="", settings={"cfg_scale": 7, "width": 512, "height": 768}), created_at="2024-01-01")
    im = small()
    buf = io.BytesIO()
    im.save(buf, "PNG", pnginfo=info)
    with Image.open(buf) as back:
        params = back.info["parameters"]
    assert params.split("\n")[0] == "따뜻한 카페 사장님"
    assert "CFG scale: 7" in params and "Size: 512x768" in params and "Negative prompt" not in params


def _jpeg_with_gps() -> bytes:
    im = Image.fromarray(skdata.astronaut()).resize((128, 128))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {1: "N", 2: (37.0, 33.0, 58.0), 3: "E", 4: (126.0, 58.0, 40.0)}  # GPS IFD: Seoul
    buf = io.BytesIO()
    im.save(buf, "JPEG", exif=exif, icc_profile=b"\x00" * 128 + b"secret-icc", comment=b"owner's phone")
    return buf.getvalue()


def test_upload_exif_gps_never_reaches_the_output(store: HistoryStore) -> None:
    src = Image.open(io.BytesIO(_jpeg_with_gps()))
    # the input really carries GPS, so the assertions below can fail
    assert src.getexif().get_ifd(0x8825).get(2) == (37.0, 33.0, 58.0)
    assert "exif" in src.info and "icc_profile" in src.info
    r = store.save_image(src, rec())
    store.add_files(r.id, {"crop": src})
    for path in (r.path, store.get(r.id).extra_paths[0]):
        meta = read_metadata(path)
        assert meta["has_exif"] is False
        assert set(meta["chunks"]) <= {"IHDR", "tEXt", "iTXt", "IDAT", "IEND"}, meta["chunks"]
        raw = path.read_bytes()
        for needle in (b"Exif", b"PhoneMaker", b"secret-icc", b"owner's phone", b"iCCP"):
            assert needle not in raw
        with Image.open(path) as im:
            assert not im.getexif() and "icc_profile" not in im.info


def test_modes_are_normalised(store: HistoryStore) -> None:
    rgba = Image.new("RGBA", (40, 30), (10, 20, 30, 128))
    pal = Image.new("RGB", (40, 30), (200, 0, 0)).convert("P")
    cmyk = Image.new("CMYK", (40, 30), (0, 255, 255, 0))
    modes = []
    for im in (rgba, pal, cmyk):
        with Image.open(store.save_image(im, rec()).path) as back:
            modes.append(back.mode)
            px = back.convert("RGB").getpixel((0, 0))
    assert modes == ["RGBA", "RGB", "RGB"]
    assert px[0] > 200 and px[1] < 60


# --- SQLite and migrations ----------------------------------------------------------------------

def _columns(conn: sqlite3.Connection) -> dict[str, str]:
    return {row[1]: row[2] for row in conn.execute("PRAGMA table_info(generations)")}


def test_connection_pragmas(tmp_path: Path) -> None:
    conn = dbmod.connect(tmp_path / "h.sqlite")
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    finally:
        conn.close()


def test_migration_1_creates_generations_table(tmp_path: Path) -> None:
    conn = dbmod.connect(tmp_path / "h.sqlite")
    assert dbmod.schema_version(conn) == 0
    assert dbmod.migrate(conn, target=1) == 1
    cols = _columns(conn)
    assert {"id", "created_at", "workflow", "engine", "model_ids", "seed", "prompt_ko", "prompt_en", "settings",
            "copy", "hashtags", "path", "extra_paths", "kept_owner_pixels"} == set(cols)
    conn.execute("INSERT INTO generations (created_at, workflow, engine, path) VALUES ('t', 'person', 'lite', 'a.png')")
    with pytest.raises(sqlite3.IntegrityError):  # path is unique
        conn.execute("INSERT INTO generations (created_at, workflow, engine, path) VALUES ('t', 'p', 'l', 'a.png')")
    conn.close()


def test_migration_2_adds_missing_parent_and_indexes(tmp_path: Path) -> None:
    conn = dbmod.connect(tmp_path / "h.sqlite")
    dbmod.migrate(conn, target=1)
    conn.execute("INSERT INTO generations (created_at, workflow, engine, path) VALUES ('t', 'person', 'lite', 'a.png')")
    assert dbmod.migrate(conn, target=2) == 2
    cols = _columns(conn)
    assert "missing" in cols and "parent_id" in cols
    assert conn.execute("SELECT missing, parent_id FROM generations").fetchone() == (0, None)
    indexes = {r[1] for r in conn.execute("PRAGMA index_list(generations)")}
    assert {"idx_generations_workflow_id", "idx_generations_parent"} <= indexes
    conn.execute("INSERT INTO generations (created_at, workflow, engine, path, parent_id) "
                 "VALUES ('t', 'person', 'lite', 'b.png', 1)")
    with pytest.raises(sqlite3.IntegrityError):  # foreign key enforced
        conn.execute("INSERT INTO generations (created_at, workflow, engine, path, parent_id) "
                     "VALUES ('t', 'person', 'lite', 'c.png', 99)")
    conn.execute("DELETE FROM generations WHERE id = 1")
    assert conn.execute("SELECT parent_id FROM generations WHERE path = 'b.png'").fetchone() == (None,)
    conn.close()


def test_database_at_migration_1_with_rows_upgrades_on_open(tmp_path: Path) -> None:
    out = tmp_path / "outputs"
    dbp = out / "history.sqlite"
    day = out / "2023-05-01"
    day.mkdir(parents=True)
    small(1).save(day / "000001_person_seed1.png")
    small(2).save(day / "000002_product.png")
    conn = dbmod.connect(dbp)
    dbmod.migrate(conn, target=1)
    conn.execute("INSERT INTO generations (created_at, workflow, engine, model_ids, seed, prompt_ko, path, copy) "
                 "VALUES ('2023-05-01T10:00:00+09:00', 'person', 'flux', '[\"flux-fill\"]', 1, '카페', "
                 "'2023-05-01/000001_person_seed1.png', '{\"headline\": \"안녕\"}')")
    conn.execute("INSERT INTO generations (created_at, workflow, engine, path) "
                 "VALUES ('2023-05-01T11:00:00+09:00', 'product', 'lite', '2023-05-01/000002_product.png')")
    conn.close()
    with HistoryStore.open(out, dbp) as s:
        assert dbmod.schema_version(s.conn) == dbmod.LATEST
        rows = s.list()
        assert [r.id for r in rows] == [2, 1]
        old = s.get(1)
        assert (old.engine, old.model_ids, old.prompt_ko, old.copy) == ("flux", ["flux-fill"], "카페", {"headline": "안녕"})
        assert old.path == day / "000001_person_seed1.png" and old.missing is False and old.parent_id is None
        report = s.reconcile()
        assert report.missing_files == [] and report.orphan_files == []
        new = s.save_image(small(3), rec(parent_id=1))
        assert new.id == 3 and new.parent_id == 1


def test_newer_database_is_refused_with_message(tmp_path: Path) -> None:
    conn = dbmod.connect(tmp_path / "h.sqlite")
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(StudioError) as ei:
        HistoryStore.open(tmp_path / "o", tmp_path / "h.sqlite")
    assert ei.value.key == "store.db_newer" and "업데이트" in ei.value.message("ko")


def test_failed_migration_rolls_back_to_previous_version(tmp_path: Path) -> None:
    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half_done (x INTEGER)")
        raise RuntimeError("migration bug")

    conn = dbmod.connect(tmp_path / "h.sqlite")
    migrations = [dbmod.MIGRATIONS[0], (2, broken)]
    with pytest.raises(RuntimeError):
        dbmod.migrate(conn, migrations=migrations)
    assert dbmod.schema_version(conn) == 1
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'half_done'").fetchone() is None
    with pytest.raises(ValueError):
        dbmod.migrate(conn, migrations=[(1, "SELECT 1"), (3, "SELECT 1")])
    conn.close()


def test_function_migration_runs_once(tmp_path: Path) -> None:
    calls: list[int] = []

    def add_table(conn: sqlite3.Connection) -> None:
        calls.append(1)
        conn.execute("CREATE TABLE extra (x INTEGER)")

    conn = dbmod.connect(tmp_path / "h.sqlite")
    migrations = [*dbmod.MIGRATIONS, (dbmod.LATEST + 1, add_table)]
    assert dbmod.migrate(conn, migrations=migrations) == dbmod.LATEST + 1
    assert dbmod.migrate(conn, migrations=migrations) == dbmod.LATEST + 1
    assert calls == [1]
    conn.close()


def test_broken_database_file_gives_message(tmp_path: Path) -> None:
    bad = tmp_path / "h.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StudioError) as ei:
        HistoryStore.open(tmp_path / "o", bad)
    assert ei.value.key == "store.db_broken"


def test_corrupt_json_in_a_row_does_not_break_listing(store: HistoryStore) -> None:
    r = store.save_image(small(), rec())
    store.conn.execute("UPDATE generations SET settings = '{not json' WHERE id = ?", (r.id,))
    assert store.list()[0].settings == {}


def test_module_imports_no_heavy_libraries() -> None:
    import subprocess
    import sys

    code = ("import sys, studio.store.history, studio.store.metadata; "
            "print(any(m in sys.modules for m in ('torch', 'gradio', 'diffusers', 'transformers')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(history_mod.__file__).resolve().parents[2])
    assert out.stdout.strip() == "False"
