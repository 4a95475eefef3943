"""A full disk in the middle of a multi-image request: the owner is told exactly what was saved and
what was not, and the disk and the history agree with that message."""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
from PIL import Image

from studio.store import history as history_mod
from studio.store.history import HistoryStore, NewRecord


def _disk_full_after(n_ok: int):
    real = history_mod.atomic_write
    calls = {"n": 0}

    def write(path, data, **kw):
        calls["n"] += 1
        if calls["n"] > n_ok:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, data, **kw)

    return write


def test_save_images_reports_saved_and_failed(tmp_path: Path, monkeypatch) -> None:
    with HistoryStore.open(tmp_path / "o", tmp_path / "d" / "h.sqlite") as store:
        monkeypatch.setattr(history_mod, "atomic_write", _disk_full_after(1))
        imgs = [Image.fromarray(np.full((64, 64, 3), v, np.uint8)) for v in (10, 20, 30)]
        out = store.save_images([(im, NewRecord(workflow="product", engine="lite", seed=i)) for i, im in enumerate(imgs)])
        assert [r.seed for r in out] == [0]
        assert [(pos, exc.key) for pos, exc in out.failed] == [(1, "store.disk_full"), (2, "store.disk_full")]
        assert store.count() == 1
        files = sorted(p for p in (tmp_path / "o").rglob("*") if p.is_file())
        assert files == [out[0].path]


def test_two_image_request_on_a_full_disk_reports_exactly_what_was_saved(running_app, tmp_path: Path,
                                                                        monkeypatch) -> None:
    from gradio_client import handle_file
    from skimage import data

    cup = tmp_path / "cup.jpg"
    Image.fromarray(data.coffee()).save(cup, quality=92)
    monkeypatch.setattr(history_mod, "atomic_write", _disk_full_after(1))
    client = running_app.client()
    gallery, notes, _prompt, files = client.predict(
        handle_file(str(cup)), "cafe", "warm", "라떼", "", "ig_square", 2, 0, "90,20,520,380", 2, 30, 0.7, 0, 0.8,
        12, 8, 11, True, True, False, api_name="/product_generate")
    store = running_app.services.store
    recs = store.list()
    assert len(recs) == 1 and len(gallery) == 1 and len(files) == 1
    assert f"#{recs[0].id}" in notes
    assert "1장은 저장했고 1장은 저장하지 못했습니다" in notes and "디스크 공간 부족" in notes
    assert "기록은 바뀌지 않았습니다" not in notes
    on_disk = sorted(p for p in Path(running_app.services.settings.outputs_dir).rglob("*.png"))
    assert on_disk == [recs[0].path]


def test_nothing_saved_says_so_and_history_is_unchanged(running_app, tmp_path: Path, monkeypatch) -> None:
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError
    from skimage import data
    import pytest

    cup = tmp_path / "cup.jpg"
    Image.fromarray(data.coffee()).save(cup, quality=92)
    monkeypatch.setattr(history_mod, "atomic_write", _disk_full_after(0))
    with pytest.raises(AppError) as exc:
        running_app.client().predict(
            handle_file(str(cup)), "cafe", "warm", "", "", "ig_square", 2, 0, "", 2, 30, 0.7, 0, 0.8,
            12, 8, 11, True, True, False, api_name="/product_generate")
    assert "디스크 공간이 부족" in str(exc.value)
    assert running_app.services.store.count() == 0
