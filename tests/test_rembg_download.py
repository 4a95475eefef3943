"""rembg model downloads through rembg's own session code, from a local HTTP server (no network)."""

from __future__ import annotations

import http.server
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from studio.errors import WeightsError
from studio.runtime import rembg_models
from studio.vision.matting import Matter


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


def test_download_lands_where_rembg_and_matter_find_it(settings, mirror) -> None:
    from tests.test_vision_matting import _square_image, _tiny_matting_onnx

    served, url = mirror
    _tiny_matting_onnx(served / "u2net_human_seg.onnx")   # the release asset's name
    seen: list[tuple[int, int, str]] = []
    path = rembg_models.download(settings.models_dir, "u2net_human_seg", progress=lambda s, t, d: seen.append((s, t, d)),
                                 mirror=url)
    assert path == rembg_models.saved_path(settings.models_dir, "u2net_human_seg")
    assert path.read_bytes() == (served / "u2net_human_seg.onnx").read_bytes()
    assert seen and seen[-1][0] == seen[-1][1] == path.stat().st_size and seen[-1][2] == "u2net_human_seg"
    # the real rembg session loads the downloaded file and cuts out with it
    matter = Matter.from_folder(settings.models_dir)
    assert matter.choose("auto", "person") == "u2net_human_seg"
    res = matter(_square_image(), prefer="human")
    assert res.backend == "u2net_human_seg" and res.mask[100, 150] > 200 and res.mask[10, 10] < 50
    # a second call finds it and fetches nothing
    assert rembg_models.download(settings.models_dir, "u2net_human_seg", mirror="http://127.0.0.1:9") == path


def test_failed_download_is_a_clear_weights_error(settings, mirror) -> None:
    _, url = mirror                                       # serves nothing: 404
    with pytest.raises(WeightsError) as err:
        rembg_models.download(settings.models_dir, "birefnet-general-lite", mirror=url)
    assert err.value.key == "rembg.download.failed" and "birefnet-general-lite" in err.value.message("en")
    assert rembg_models.present(settings.models_dir, "birefnet-general-lite") is None


def test_catalogue_matches_rembg_sessions() -> None:
    from rembg.sessions import sessions

    for name, m in rembg_models.MODELS.items():
        assert name in sessions, name
        assert m.licence and m.size_mb > 100
    assert not rembg_models.MODELS["bria-rmbg"].commercial_use
    assert rembg_models.MODELS[rembg_models.DEFAULT].licence == "MIT"


def test_models_catalogue_rembg_rows_match_what_sessions_save(presets) -> None:
    from rembg.sessions import sessions

    rows = [m for m in presets.models if m.source == "rembg"]
    names = {Path(m.files[0]).stem for m in rows}
    assert {"birefnet-general", "birefnet-general-lite", "u2net_human_seg", "isnet-general-use", "bria-rmbg"} <= names
    for m in rows:
        name = Path(m.files[0]).stem
        assert name in sessions and m.local_dir == f"rembg/models/{name}"
        if name in rembg_models.MODELS:
            assert m.commercial_use == rembg_models.MODELS[name].commercial_use
    bria = next(m for m in rows if m.files == ["bria-rmbg.onnx"])
    assert "RMBG-2.0" in bria.licence and not bria.commercial_use
