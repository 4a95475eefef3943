"""Which engine runs, and why; engines are built lazily on first use and cached.

`auto` picks FLUX when its weights are in models/ and CUDA is present, Lite otherwise. The check
for weights comes first and needs no torch import, so a PC without weights starts fast.
"""

from __future__ import annotations

import importlib
import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from studio.config import Settings
from studio.i18n import t

if TYPE_CHECKING:
    from studio.engines.base import Engine

log = logging.getLogger(__name__)

# engine name -> "module:callable"; the callable takes Settings and returns an Engine.
ENGINE_FACTORIES: dict[str, str] = {
    "lite": "studio.engines.lite:create_engine",
    "tiny": "studio.engines.tiny:create_engine",
    "flux": "studio.engines.flux_fill:create_engine",
}

FLUX_FILL_DIR = "flux-fill"


def flux_weights_present(settings: Settings) -> bool:
    """A diffusers folder with model_index.json, or a single-file FLUX Fill checkpoint."""
    folder = settings.models_dir / FLUX_FILL_DIR
    if (folder / "model_index.json").is_file():
        return True
    return any(settings.models_dir.glob("flux1-fill-dev*.safetensors"))


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


@dataclass(frozen=True)
class EngineChoice:
    name: str
    reason_key: str
    reason_fields: dict = field(default_factory=dict)

    def reason(self, lang: str) -> str:
        return t(self.reason_key, lang, **self.reason_fields)


def choose_engine(settings: Settings) -> EngineChoice:
    if settings.engine != "auto":
        return EngineChoice(settings.engine, "engine.reason.forced", {"engine": settings.engine})
    if not flux_weights_present(settings):
        return EngineChoice("lite", "engine.reason.no_weights")
    if not cuda_available():
        return EngineChoice("lite", "engine.reason.no_cuda")
    return EngineChoice("flux", "engine.reason.flux_ready")


class EngineProvider:
    """Builds engines on first use; switching frees the old one first (IOPaint habit)."""

    def __init__(self, settings: Settings, choice: EngineChoice | None = None) -> None:
        self.settings = settings
        self.choice = choice or choose_engine(settings)
        self._engines: dict[str, Engine] = {}
        self._lock = threading.Lock()

    @property
    def active_name(self) -> str:
        return self.choice.name

    def get(self, name: str | None = None) -> "Engine":
        name = name or self.choice.name
        with self._lock:
            if name not in self._engines:
                target = ENGINE_FACTORIES[name]
                module_name, _, attr = target.partition(":")
                factory = getattr(importlib.import_module(module_name), attr)
                log.info("building engine %s", name)
                self._engines[name] = factory(self.settings)
            return self._engines[name]

    def peek(self, name: str) -> "Engine | None":
        """The engine if it is already built (never builds)."""
        return self._engines.get(name)

    def release(self, name: str) -> None:
        with self._lock:
            engine = self._engines.pop(name, None)
        close = getattr(engine, "close", None)
        if callable(close):
            close()
