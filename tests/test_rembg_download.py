"""rembg models: the catalogue is their one home; our download (catalogue URL and checksum) from a
local HTTP server (no network); sessions opened on explicit paths, with nothing process-wide changed."""

from __future__ import annotations

import hashlib
import http.server
import inspect
import json
import os
import shutil
import sys
import threading
import time
from functools import partial
from pathlib import Path

import pytest

from studio.config import REPO_ROOT
from studio.errors import WeightsError
from studio.runtime import rembg_models
from studio.vision.matting import Matter, find_weights, licences


@pytest.fixture
def mirror(tmp_path: Path):
    """A 127.0.0.1 server serving tmp/served/ (a stand-in for rembg's release page)."""
    served = tmp_path / "served"
    served.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _catalogue_copy(tmp_path: Path, edit) -> Path:
    """A copy of presets/ whose models.json rows went through `edit(row)`."""
    folder = tmp_path / "presets"
    shutil.copytree(REPO_ROOT / "presets", folder)
    path = folder / "models.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    for row in data["items"]:
        edit(row)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    return folder


def _served_tiny(served: Path, asset: str) -> str:
    from tests.test_vision_matting import _tiny_matting_onnx

    _tiny_matting_onnx(served / asset)
    return "md5:" + hashlib.md5((served / asset).read_bytes()).hexdigest()


def _globals_now() -> dict:
    """What a patching download or session build would change: the environment, pooch's and rembg's
    module attributes, rembg's session registry and its session classes' attributes."""
    import pooch
    import rembg
    import rembg.sessions as rs

    mods = [m for name, m in sys.modules.items() if m is not None and (name == "pooch" or name.startswith("pooch.")
                                                                        or name.startswith("rembg"))]
    return {"env": dict(os.environ), "retrieve": pooch.retrieve, "new_session": rembg.new_session,
            "modules": {m.__name__: dict(vars(m)) for m in mods},
            "sessions": dict(rs.sessions), "classes": {n: dict(vars(c)) for n, c in rs.sessions.items()}}


def test_download_lands_where_matter_finds_it_checked_against_the_catalogue(settings, mirror, tmp_path) -> None:
    from tests.test_vision_matting import _square_image

    served, url = mirror
    md5 = _served_tiny(served, "u2net_human_seg.onnx")     # the release asset's name
    presets_dir = _catalogue_copy(tmp_path, lambda r: r.update(checksum=md5) if r["id"] == "rembg_u2net_human" else None)
    seen: list[tuple[int, int, str]] = []
    path = rembg_models.download(settings.models_dir, "u2net_human_seg", progress=lambda s, t, d: seen.append((s, t, d)),
                                 mirror=url, presets_dir=presets_dir)
    assert path == settings.models_dir / "rembg" / "models" / "u2net_human_seg" / "u2net_human_seg.onnx"
    assert path.read_bytes() == (served / "u2net_human_seg.onnx").read_bytes()
    assert seen and seen[-1][0] == seen[-1][1] == path.stat().st_size and seen[-1][2] == "u2net_human_seg"
    # rembg's own session class cuts out with the downloaded file
    matter = Matter.from_folder(settings.models_dir)
    assert matter.choose("auto", "person") == "u2net_human_seg"
    res = matter(_square_image(), prefer="human")
    assert res.backend == "u2net_human_seg" and res.mask[100, 150] > 200 and res.mask[10, 10] < 50
    from rembg.sessions.u2net_human_seg import U2netHumanSegSession

    assert isinstance(matter.session("u2net_human_seg"), U2netHumanSegSession)
    # a second call finds it and fetches nothing
    assert rembg_models.download(settings.models_dir, "u2net_human_seg", mirror="http://127.0.0.1:9") == path


def test_a_file_that_fails_the_catalogues_checksum_is_not_kept(settings, mirror) -> None:
    served, url = mirror
    _served_tiny(served, "u2net_human_seg.onnx")           # not the real file: the real md5 refuses it
    with pytest.raises(WeightsError) as err:
        rembg_models.download(settings.models_dir, "u2net_human_seg", mirror=url)
    assert err.value.key == "rembg.download.failed"
    assert rembg_models.present(settings.models_dir, "u2net_human_seg") is None
    assert find_weights(settings.models_dir) == {}


def test_failed_download_is_a_clear_weights_error(settings, mirror) -> None:
    _, url = mirror                                       # serves nothing: 404
    with pytest.raises(WeightsError) as err:
        rembg_models.download(settings.models_dir, "birefnet-general-lite", mirror=url)
    assert err.value.key == "rembg.download.failed" and "birefnet-general-lite" in err.value.message("en")
    assert rembg_models.present(settings.models_dir, "birefnet-general-lite") is None


def test_no_global_changes_and_one_lock_while_downloading_and_opening(settings, mirror, tmp_path, monkeypatch) -> None:
    """Observed from inside: the download's progress callback and onnxruntime's session constructor
    see the same process state as before the call, and REMBG_LOCK held."""
    import onnxruntime as ort

    from tests.test_vision_matting import _square_image

    served, url = mirror
    md5 = _served_tiny(served, "u2net.onnx")
    presets_dir = _catalogue_copy(tmp_path, lambda r: r.update(checksum=md5) if r["id"] == "rembg_u2net" else None)
    import rembg.sessions  # noqa: F401  (loaded before the snapshot, as the first cut-out would)

    before = _globals_now()
    inside: list[tuple[str, bool, bool]] = []

    def progress(done: int, total: int, desc: str) -> None:
        inside.append(("download", rembg_models.REMBG_LOCK.locked(), _globals_now() == before))

    real = ort.InferenceSession

    class Watched(real):  # type: ignore[misc, valid-type]
        def __init__(self, path, *args, **kwargs):
            inside.append(("session", rembg_models.REMBG_LOCK.locked(), _globals_now() == before))
            assert Path(path).name == "u2net.onnx" and Path(path).parent.name == "u2net"   # the explicit path
            super().__init__(path, *args, **kwargs)

    path = rembg_models.download(settings.models_dir, "u2net", progress=progress, mirror=url, presets_dir=presets_dir)
    monkeypatch.setattr(ort, "InferenceSession", Watched)
    res = Matter.from_folder(settings.models_dir, presets_dir)(_square_image(), prefer="u2net")
    monkeypatch.undo()
    assert res.backend == "u2net" and path.is_file()
    assert {k for k, _, _ in inside} == {"download", "session"}
    assert all(locked for _, locked, _ in inside), inside     # both paths under the one lock
    assert all(same for _, _, same in inside), inside         # nothing process-wide changed meanwhile
    assert _globals_now() == before and not rembg_models.REMBG_LOCK.locked()


def test_download_and_session_wait_for_the_same_lock(settings, mirror, tmp_path) -> None:
    from tests.test_vision_matting import _tiny_matting_onnx

    served, url = mirror
    md5 = _served_tiny(served, "isnet-general-use.onnx")
    presets_dir = _catalogue_copy(tmp_path, lambda r: r.update(checksum=md5) if r["id"] == "rembg_isnet" else None)
    custom = settings.models_dir / "rembg" / "custom" / "tiny.onnx"
    _tiny_matting_onnx(custom)
    done: dict[str, float] = {}

    def fetch() -> None:
        rembg_models.download(settings.models_dir, "isnet-general-use", mirror=url, presets_dir=presets_dir)
        done["download"] = time.monotonic()

    def open_() -> None:
        Matter.from_folder(settings.models_dir).session("custom", custom.resolve())
        done["session"] = time.monotonic()

    with rembg_models.REMBG_LOCK:
        threads = [threading.Thread(target=fetch), threading.Thread(target=open_)]
        for th in threads:
            th.start()
        time.sleep(0.5)
        assert done == {}                                  # both wait for the lock held here
        released = time.monotonic()
    for th in threads:
        th.join(timeout=30)
    assert set(done) == {"download", "session"} and min(done.values()) >= released


def test_a_catalogue_change_is_what_the_code_sees(settings, tmp_path) -> None:
    from tests.test_vision_matting import _square_image, _tiny_matting_onnx

    def edit(row: dict) -> None:
        if row["id"] == "rembg_u2net":
            row["files"] = ["u2net.onnx"]
            row["local_dir"] = "rembg/elsewhere"
            row["licence"] = "Test Licence 1.0 (non-commercial)"
            row["commercial_use"] = False
            row["disk_gb"] = 0.42
        if row["id"] == "rmbg_bria":
            row["source"] = "hf"                            # no longer a rembg model

    presets_dir = _catalogue_copy(tmp_path, edit)
    cat = rembg_models.catalogue(presets_dir)
    assert "bria-rmbg" not in cat and "bria-rmbg" in rembg_models.catalogue()
    assert cat["u2net"].size_mb == 420 and cat["u2net"].licence.startswith("Test Licence")
    assert licences(presets_dir)["u2net"] == ("Test Licence 1.0 (non-commercial)", False)
    _tiny_matting_onnx(settings.models_dir / "rembg" / "elsewhere" / "u2net.onnx")
    assert find_weights(settings.models_dir, presets_dir) == {"u2net": settings.models_dir / "rembg" / "elsewhere" / "u2net.onnx"}
    assert find_weights(settings.models_dir) == {}          # the studio's own catalogue keeps rembg's layout
    res = Matter.from_folder(settings.models_dir, presets_dir)(_square_image(), prefer="u2net")
    assert res.backend == "u2net" and res.licence.startswith("Test Licence") and not res.commercial_use
    # and the file itself is re-read when it changes (no stale copy)
    path = presets_dir / "models.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    next(r for r in data["items"] if r["id"] == "rembg_u2net")["licence"] = "Test Licence 2.0"
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    assert rembg_models.catalogue(presets_dir)["u2net"].licence == "Test Licence 2.0"


def test_catalogue_rows_are_rembg_sessions_facts(presets) -> None:
    """URL and checksum of each row are what the pinned rembg's session class publishes."""
    from rembg.sessions import sessions

    cat = rembg_models.catalogue()
    assert {"birefnet-general", "birefnet-general-lite", "u2net_human_seg", "isnet-general-use", "bria-rmbg"} <= set(cat)
    for name, m in cat.items():
        assert name in sessions, name
        src = inspect.getsource(sessions[name].download_models)
        assert m.url in src and m.checksum.split(":", 1)[1] in src, name
        assert m.url.startswith(rembg_models.RELEASE_PREFIX) and m.local_dir == f"rembg/models/{name}"
        assert m.licence and m.size_mb > 100
    assert not cat["bria-rmbg"].commercial_use and "RMBG-2.0" in cat["bria-rmbg"].licence
    assert cat[rembg_models.DEFAULT].licence == "MIT"


def test_no_other_home_lists_rembg_models() -> None:
    import studio.runtime.rembg_models as rm
    import studio.vision.matting as mt

    for mod in (rm, mt):
        for value in vars(mod).values():
            if isinstance(value, dict) and value:
                assert not {"birefnet-general", "u2net_human_seg", "bria-rmbg"} <= set(value), mod.__name__
