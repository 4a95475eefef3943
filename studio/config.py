"""Settings: everything the studio reads from the command line or the environment.

A plain, frozen dataclass: built once by `launch.py`, passed down through `Services`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from studio.errors import InputError

EngineChoice = Literal["auto", "flux", "lite", "tiny"]
ENGINE_CHOICES: tuple[str, ...] = ("auto", "flux", "lite", "tiny")
MEMORY_PLANS: tuple[str, ...] = ("auto", "gpu", "model_offload", "group_offload", "sequential_offload")

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 7860
    engine: EngineChoice = "auto"
    share: bool = False
    auth: tuple[tuple[str, str], ...] = ()
    lang: Literal["ko", "en"] = "ko"
    models_dir: Path = field(default_factory=lambda: REPO_ROOT / "models")
    outputs_dir: Path = field(default_factory=lambda: REPO_ROOT / "outputs")
    presets_dir: Path = field(default_factory=lambda: REPO_ROOT / "presets")
    ollama_host: str = field(default_factory=lambda: os.environ.get("OLLAMA_HOST", "http://127.0.0.1:11434"))
    ollama_model: str = field(default_factory=lambda: os.environ.get("FITAD_OLLAMA_MODEL", "qwen2.5:7b-instruct"))
    memory_plan: str = "auto"
    quantize: Literal["none", "8bit", "4bit"] = "none"
    # the owner's engine per task beyond inpainting, e.g. (("text2image", "flux-dev"),); unlisted = auto
    task_engines: tuple[tuple[str, str], ...] = ()
    # where the history database and other private files live; never inside a served folder.
    # None: a sibling of the outputs folder, `<outputs>-data` (e.g. ./outputs-data)
    data_dir: Path | None = None
    open_browser: bool = False
    llm_timeout_s: float = field(default_factory=lambda: _env_float("FITAD_LLM_TIMEOUT", 30.0))
    # "상업용으로 쓸 수 있는 모델만": every task uses only models whose licence allows business use
    # (presets/models.json `commercial_use`). On by default; the Models tab switches it.
    commercial_only: bool = True

    @property
    def private_dir(self) -> Path:
        """The folder for the database, logs and caches: outside `outputs_dir`, which is served."""
        if self.data_dir is not None:
            return self.data_dir
        out = self.outputs_dir
        return out.parent / f"{out.name}-data"

    @property
    def db_path(self) -> Path:
        return self.private_dir / "history.sqlite"

    @property
    def legacy_db_path(self) -> Path:
        """Where older versions kept the database (inside the served outputs folder)."""
        return self.outputs_dir / "history.sqlite"

    def engine_for(self, task: str) -> str:
        """The engine forced for a task ("auto" when none): `engine` is the inpaint task's."""
        if task == "inpaint":
            return self.engine
        return dict(self.task_engines).get(task, "auto")

    def with_(self, **changes: object) -> "Settings":
        return replace(self, **changes)  # type: ignore[arg-type]


def _env_float(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        return default
    return value if 0 < value < 3600 else default


def parse_auth(value: str | None) -> tuple[tuple[str, str], ...]:
    """`user:pass`, or a path to a file with one `user:pass` per line (# comments allowed)."""
    if not value:
        return ()
    path = Path(value)
    lines: list[str]
    if path.is_file():
        lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
        lines = [ln for ln in lines if ln and not ln.startswith("#")]
    else:
        lines = [value]
    pairs: list[tuple[str, str]] = []
    for line in lines:
        user, sep, password = line.partition(":")
        if not sep or not user.strip() or not password:
            raise InputError("launch.bad_auth")
        pairs.append((user.strip(), password))
    if not pairs:
        raise InputError("launch.bad_auth")
    return tuple(pairs)
