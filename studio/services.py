"""The collaborators a workflow needs, built once and passed down.

Tests build a `Services` with the tiny engine, a fake LLM server or a temporary store instead of
monkey-patching. Heavy collaborators (LLM client, vision toolkit) are created on first use.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from studio.config import Settings
from studio.presets import Presets
from studio.engines.registry import EngineChoice, EngineProvider
from studio.runtime.jobs import JobRunner

if TYPE_CHECKING:
    from studio.store.history import HistoryStore

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    presets: Presets
    store: "HistoryStore"
    engines: EngineProvider
    jobs: JobRunner = field(default_factory=JobRunner)
    _llm: Any = None
    _vision: Any = None
    startup_report: Any = None  # the store's reconcile report from startup (shown in the gallery)

    @property
    def lang(self) -> str:
        return self.settings.lang

    @property
    def llm(self) -> Any:
        """The local LLM client (`studio.text.llm.LLMClient`), created on first use."""
        if self._llm is None:
            from studio.text.llm import LLMClient

            self._llm = LLMClient.from_settings(self.settings)
        return self._llm

    def reload_vision(self) -> None:
        """Forget the vision kit, so the next cut-out picks up newly downloaded models."""
        self._vision = None

    @property
    def vision(self) -> Any:
        """The vision toolkit (`studio.vision.toolkit.VisionKit`), created on first use."""
        if self._vision is None:
            from studio.vision.toolkit import VisionKit

            self._vision = VisionKit.from_settings(self.settings)
        return self._vision


def build_services(settings: Settings, *, engine_choice: EngineChoice | None = None,
                   llm: Any = None, vision: Any = None) -> Services:
    from studio.store.history import HistoryStore

    presets = Presets(settings.presets_dir)
    presets.validate_all()
    from studio.store.db import relocate

    # the database and its sidecars live outside the served outputs folder (older versions kept
    # them inside it, where the file route could hand them out)
    relocate(settings.legacy_db_path, settings.db_path)
    store = HistoryStore.open(settings.outputs_dir, settings.db_path)
    report = store.reconcile()
    if report.missing_files or report.orphan_files:
        log.warning("history reconcile: %d rows without file, %d files without row",
                    len(report.missing_files), len(report.orphan_files))
    return Services(settings=settings, presets=presets, store=store,
                    engines=EngineProvider(settings, engine_choice), _llm=llm, _vision=vision,
                    startup_report=report)
