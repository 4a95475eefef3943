"""rembg's cut-out models, downloaded through rembg's own mechanism into models/rembg.

Each rembg session class knows its file: `Session.download_models()` fetches it with `pooch`
into `<U2NET_HOME>/models/<name>/<name>.onnx` (and finds older copies in `<U2NET_HOME>/<name>.onnx`).
We point `U2NET_HOME` at `models/rembg` for the call, hand pooch a progress object that reports
to the job runner's progress callback, and never change where or what rembg fetches, except
that tests (and offline mirrors) may pass `mirror=`: the release URL's prefix is swapped for the
mirror's and the checksum check is skipped (the mirror serves a stand-in file).

Licences (rembg 2.0.x sessions, read from their source):
- birefnet-general      <- BiRefNet-general-epoch_244.onnx                  MIT (default)
- birefnet-general-lite <- BiRefNet-general-bb_swin_v1_tiny-epoch_232.onnx  MIT (faster)
- u2net_human_seg       <- u2net_human_seg.onnx                             Apache-2.0 (people)
- isnet-general-use     <- isnet-general-use.onnx                           Apache-2.0
- bria-rmbg             <- bria-rmbg-2.0.onnx (BRIA RMBG-2.0)               CC BY-NC 4.0: non-commercial
"""

from __future__ import annotations

import logging
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from studio.errors import InputError, WeightsError

log = logging.getLogger(__name__)

RELEASE_PREFIX = "https://github.com/danielgatis/rembg/releases/download/v0.0.0"
REMBG_DIR = "rembg"
DEFAULT = "birefnet-general-lite"
# The one lock around rembg's process-wide state (U2NET_HOME, pooch): downloads here and session
# building in studio.vision.matting both hold it, so neither sees the other's settings.
REMBG_LOCK = threading.Lock()


@dataclass(frozen=True)
class RembgModel:
    name: str            # rembg session name (also the saved file's stem)
    source_file: str     # the release asset the session fetches
    size_mb: int         # approximate download size
    licence: str
    commercial_use: bool


MODELS: dict[str, RembgModel] = {m.name: m for m in (
    RembgModel("birefnet-general", "BiRefNet-general-epoch_244.onnx", 973, "MIT", True),
    RembgModel("birefnet-general-lite", "BiRefNet-general-bb_swin_v1_tiny-epoch_232.onnx", 224, "MIT", True),
    RembgModel("u2net_human_seg", "u2net_human_seg.onnx", 176, "Apache-2.0", True),
    RembgModel("isnet-general-use", "isnet-general-use.onnx", 179, "Apache-2.0", True),
    RembgModel("bria-rmbg", "bria-rmbg-2.0.onnx", 977, "BRIA RMBG-2.0, CC BY-NC 4.0 (non-commercial)", False),
)}

ProgressFn = Callable[[int, int, str], None]


def home(models_dir: Path | str) -> Path:
    return Path(models_dir) / REMBG_DIR


def saved_path(models_dir: Path | str, name: str) -> Path:
    """Where rembg's session saves `name` under our U2NET_HOME."""
    return home(models_dir) / "models" / name / f"{name}.onnx"


def present(models_dir: Path | str, name: str) -> Path | None:
    for cand in (saved_path(models_dir, name), home(models_dir) / f"{name}.onnx"):
        if cand.is_file():
            return cand
    return None


class _Progress:
    """The progress-bar object pooch accepts (total, update, reset, close) -> our callback."""

    def __init__(self, report: ProgressFn | None, desc: str) -> None:
        self.report = report
        self.desc = desc
        self.total = 0
        self.done = 0

    def update(self, n: int) -> None:
        self.done += int(n)
        if self.report is not None:
            total = max(self.total, 1)
            self.report(min(self.done, total), total, self.desc)

    def reset(self) -> None:
        self.done = 0

    def close(self) -> None:
        return None


@contextmanager
def _rembg_env(models_dir: Path, progress: _Progress, mirror: str | None) -> Iterator[None]:
    """U2NET_HOME -> models/rembg; pooch.retrieve gets our progress object (and the mirror)."""
    import pooch

    saved = {k: os.environ.get(k) for k in ("U2NET_HOME", "MODEL_CHECKSUM_DISABLED")}
    original = pooch.retrieve

    def retrieve(url: str, known_hash=None, *args, **kwargs):
        if mirror:
            url = url.replace(RELEASE_PREFIX, mirror.rstrip("/"))
        kwargs["progressbar"] = progress
        log.info("rembg download: %s", url)
        return original(url, known_hash, *args, **kwargs)

    os.environ["U2NET_HOME"] = str(home(models_dir).resolve())
    if mirror:
        os.environ["MODEL_CHECKSUM_DISABLED"] = "1"
    pooch.retrieve = retrieve
    try:
        yield
    finally:
        pooch.retrieve = original
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def download(models_dir: Path | str, name: str = DEFAULT, progress: ProgressFn | None = None,
             mirror: str | None = None) -> Path:
    """Fetch rembg model `name` into models/rembg with rembg's own session code; its path."""
    if name not in MODELS:
        raise InputError("rembg.unknown", model=name, choices=", ".join(MODELS))
    models_dir = Path(models_dir)
    found = present(models_dir, name)
    if found is not None:
        return found
    home(models_dir).mkdir(parents=True, exist_ok=True)
    from rembg.sessions import sessions as rembg_sessions

    cls = rembg_sessions[name]
    bar = _Progress(progress, name)
    with REMBG_LOCK, _rembg_env(models_dir, bar, mirror):
        try:
            path = Path(cls.download_models())
        except (OSError, ValueError, RuntimeError) as exc:   # requests/pooch errors derive from these
            log.warning("rembg download of %s failed: %s", name, exc)
            raise WeightsError("rembg.download.failed", model=name, err=type(exc).__name__) from exc
    if not path.is_file():
        raise WeightsError("rembg.download.failed", model=name, err="no file")
    log.info("rembg model %s saved at %s", name, path)
    return path
