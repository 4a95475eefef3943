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


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningApp:
    """The real app (build_services + build_app), launched in this process on a free port."""

    def __init__(self, settings: Settings, **service_overrides) -> None:
        from studio.services import build_services
        from studio.ui.app import CSS, build_app
        from studio.ui.server import launch_kwargs

        self.port = free_port()
        settings = settings.with_(port=self.port, open_browser=False)
        self.services = build_services(settings, **service_overrides)
        self.demo = build_app(self.services)
        self.demo.queue()
        # the same launch configuration as `launch.py serve` (file guard, login limiter, errors)
        self.demo.launch(prevent_thread_lock=True, css=CSS, quiet=True, **launch_kwargs(settings))
        self.url = f"http://127.0.0.1:{self.port}/"

    def client(self):
        from gradio_client import Client

        return Client(self.url, verbose=False, download_files=False)

    def close(self) -> None:
        self.demo.close()
        self.services.store.close()


@pytest.fixture
def running_app(settings: Settings):
    app = RunningApp(settings)
    yield app
    app.close()
