"""Shared fixtures. No test reaches the network: HF_HUB_OFFLINE is set before anything imports."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from studio.config import REPO_ROOT, Settings  # noqa: E402


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    models = tmp_path / "models"
    models.mkdir()
    return Settings(models_dir=models, outputs_dir=tmp_path / "outputs", presets_dir=REPO_ROOT / "presets",
                    engine="lite", ollama_host="http://127.0.0.1:9")


@pytest.fixture
def presets(settings: Settings):
    from studio.presets import Presets

    return Presets(settings.presets_dir)
