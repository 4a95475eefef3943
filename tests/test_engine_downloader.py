"""The weights downloader fails clearly (in Korean) with no network; progress is forwarded."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.errors import StudioError
from studio.runtime.downloader import download_model, make_tqdm_class


def _hangul(text: str) -> bool:
    return any("\uac00" <= ch <= "\ud7a3" for ch in text)


def test_offline_mode_fails_clearly(tmp_path: Path, presets, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(StudioError) as info:
        download_model("flux_schnell", tmp_path, presets=presets)
    assert info.value.key == "download.offline"
    ko = info.value.message("ko")
    assert _hangul(ko) and "HF_HUB_OFFLINE" in ko and "flux-schnell" in ko


def test_unreachable_endpoint_fails_clearly(tmp_path: Path, presets, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(StudioError) as info:
        download_model("yunet", tmp_path, presets=presets, token="hf_dummy")
    assert info.value.key == "download.unreachable"
    assert "127.0.0.1:9" in info.value.message("ko") and _hangul(info.value.message("ko"))
    assert not any((tmp_path / "yunet").glob("*.onnx"))  # nothing pretends to be downloaded


def test_not_a_hub_repo(tmp_path: Path, presets) -> None:
    with pytest.raises(StudioError) as info:
        download_model("insightface_buffalo_l", tmp_path, presets=presets)
    assert info.value.key == "download.not_hf"


def test_unknown_entry(tmp_path: Path, presets) -> None:
    with pytest.raises(StudioError) as info:
        download_model("no_such_model", tmp_path, presets=presets)
    assert info.value.key == "download.not_found"


def test_tqdm_class_forwards_progress() -> None:
    seen: list[tuple[int, int, str]] = []
    bar_cls = make_tqdm_class(lambda done, total, desc: seen.append((done, total, desc)))
    bar = bar_cls(total=300, desc="Fetching 3 files", name="huggingface_hub.snapshot_download")
    for _ in range(3):
        bar.update(100)
    bar.close()
    assert seen[0] == (0, 300, "Fetching 3 files")
    assert seen[-1] == (300, 300, "Fetching 3 files")
    assert len(seen) == 4
