"""rembg's cut-out models: the catalogue's facts, our own download, and sessions opened on explicit paths.

One home for the facts: the rows of `presets/models.json` with `"source": "rembg"` (file name, folder,
release URL, checksum, size, licence). `catalogue()` reads them (again whenever the file changes);
nothing else in the studio lists rembg models.

Nothing here changes a third-party library or the process (no environment variable, no module
attribute, no patched function):
- `download()` calls `pooch.retrieve(url, checksum, fname, path, progressbar)` with the catalogue's
  URL and checksum, into `models/<local_dir>/<file>` (rembg's own layout,
  `models/rembg/models/<name>/<name>.onnx`). `mirror=` swaps the URL's prefix for an offline
  mirror's; the checksum is still checked.
- `open_session()` builds rembg's session class for the model (its own pre- and post-processing)
  on a file given by path: a subclass whose `download_models` returns that path, so rembg neither
  reads `U2NET_HOME` nor downloads anything.

Both hold `REMBG_LOCK`, the one lock around rembg's files: a session is never opened on a file
that a download is still writing, and two downloads never write the same file.

The files, URLs and checksums are those of rembg 2.0.86's session classes (pinned in
requirements.txt; `rembg/sessions/<session>.py`, `download_models`).
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable

from studio.errors import InputError, WeightsError

log = logging.getLogger(__name__)

RELEASE_PREFIX = "https://github.com/danielgatis/rembg/releases/download/v0.0.0"
REMBG_DIR = "rembg"
DEFAULT = "birefnet-general-lite"
CUSTOM = "u2net_custom"       # rembg's session for an owner's own U2-Net-style onnx
# The one lock around rembg's files: downloads and session building (studio.vision.matting) both hold it.
REMBG_LOCK = threading.Lock()

ProgressFn = Callable[[int, int, str], None]


@dataclass(frozen=True)
class RembgModel:
    name: str            # rembg session name (and the saved file's stem)
    entry_id: str        # the catalogue row
    file: str            # the saved file's name, <name>.onnx
    local_dir: str       # its folder under models/
    url: str             # the release asset it is fetched from
    checksum: str        # "md5:<hex>" / "sha256:<hex>"
    size_mb: int         # approximate download size
    licence: str
    commercial_use: bool

    def path(self, models_dir: Path | str) -> Path:
        return Path(models_dir) / self.local_dir / self.file


def _presets_dir(presets_dir: Path | str | None) -> Path:
    from studio.config import REPO_ROOT

    return Path(presets_dir) if presets_dir is not None else REPO_ROOT / "presets"


def catalogue(presets_dir: Path | str | None = None) -> dict[str, RembgModel]:
    """rembg session name -> its facts, from the catalogue rows with `"source": "rembg"`."""
    folder = _presets_dir(presets_dir)
    st = (folder / "models.json").stat()
    return _read_catalogue(str(folder.resolve()), st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=8)
def _read_catalogue(folder: str, _mtime_ns: int, _size: int) -> dict[str, RembgModel]:
    from studio.presets import Presets

    out: dict[str, RembgModel] = {}
    for e in Presets(Path(folder)).models:
        if e.source != "rembg":
            continue
        name = Path(e.files[0]).stem
        out[name] = RembgModel(name=name, entry_id=e.id, file=e.files[0], local_dir=e.local_dir, url=e.url,
                               checksum=e.checksum, size_mb=round(e.disk_gb * 1000), licence=e.licence,
                               commercial_use=e.commercial_use)
    return out


def model(name: str, presets_dir: Path | str | None = None) -> RembgModel:
    models = catalogue(presets_dir)
    if name not in models:
        raise InputError("rembg.unknown", model=name, choices=", ".join(models))
    return models[name]


def home(models_dir: Path | str) -> Path:
    return Path(models_dir) / REMBG_DIR


def saved_path(models_dir: Path | str, name: str, presets_dir: Path | str | None = None) -> Path:
    """Where `download` saves `name` (the catalogue's folder; rembg's own layout)."""
    return model(name, presets_dir).path(models_dir)


def present(models_dir: Path | str, name: str, presets_dir: Path | str | None = None) -> Path | None:
    """The model's file if it is there: the catalogue's folder, or rembg's older flat layout."""
    m = catalogue(presets_dir).get(name)
    if m is None:
        return None
    for cand in (m.path(models_dir), home(models_dir) / m.file):
        if cand.is_file():
            return cand
    return None


def find_all(models_dir: Path | str, presets_dir: Path | str | None = None) -> dict[str, Path]:
    """Every catalogue model whose file is there."""
    found = {name: present(models_dir, name, presets_dir) for name in catalogue(presets_dir)}
    return {name: path for name, path in found.items() if path is not None}


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


def download(models_dir: Path | str, name: str = DEFAULT, progress: ProgressFn | None = None,
             mirror: str | None = None, presets_dir: Path | str | None = None) -> Path:
    """Fetch rembg model `name` into models/<local_dir> (URL and checksum from the catalogue); its path."""
    m = model(name, presets_dir)
    found = present(models_dir, name, presets_dir)
    if found is not None:
        return found
    if not m.url or not m.checksum:
        raise WeightsError("rembg.download.failed", model=name, err="no URL or checksum in the catalogue")
    url = m.url.replace(RELEASE_PREFIX, mirror.rstrip("/")) if mirror else m.url
    target = m.path(models_dir)
    import pooch

    with REMBG_LOCK:
        target.parent.mkdir(parents=True, exist_ok=True)
        log.info("rembg download: %s -> %s", url, target)
        try:
            pooch.retrieve(url, m.checksum, fname=target.name, path=str(target.parent),
                           progressbar=_Progress(progress, name))
        except (OSError, ValueError, RuntimeError) as exc:   # requests/pooch errors (and a bad checksum) derive from these
            log.warning("rembg download of %s failed: %s", name, exc)
            raise WeightsError("rembg.download.failed", model=name, err=type(exc).__name__) from exc
    if not target.is_file():
        raise WeightsError("rembg.download.failed", model=name, err="no file")
    log.info("rembg model %s saved at %s", name, target)
    return target


def open_session(name: str, path: Path | str, providers: Iterable[str]) -> Any:
    """rembg's session for `name` (or `CUSTOM`) on the onnx file at `path`, under REMBG_LOCK.

    rembg's `BaseSession.__init__` asks the class's `download_models()` for the file; the subclass
    made here answers with `path`, so rembg looks up no folder and fetches nothing."""
    import onnxruntime as ort
    from rembg.sessions import sessions

    base = sessions[name]
    file = str(Path(path))
    at_path = type(f"{base.__name__}AtPath", (base,),
                   {"__module__": __name__, "download_models": classmethod(lambda cls, *a, **k: file)})
    opts = ort.SessionOptions()
    threads = os.environ.get("OMP_NUM_THREADS")   # as rembg's new_session does (read only)
    if threads and threads.isdigit():
        opts.inter_op_num_threads = opts.intra_op_num_threads = int(threads)
    extra = {"model_path": file} if name == CUSTOM else {}
    with REMBG_LOCK:
        return at_path(name, opts, providers=list(providers), **extra)
