"""Download model weights from the Hugging Face Hub into `models/` (driven from the Models tab).

`download_model(entry_id, models_dir, ...)` fetches one catalog entry (`presets/models.json`) with
`huggingface_hub.snapshot_download`, restricted to the entry's `files` patterns, into
`models/<local_dir>/`. Progress goes to a plain callback `(done, total, desc)` through a
tqdm-compatible class, so the Models tab can forward it to `gr.Progress`. Gated repos (FLUX.1
dev / Fill) need the owner's token. Without network (offline mode, no connection, a dead
endpoint) it fails at once with a Korean message saying what to do; nothing half-written is
left marked as complete.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from studio.errors import StudioError
from studio.presets import ModelEntry, Presets

log = logging.getLogger(__name__)

DownloadProgress = Callable[[int, int, str], None]
HF_REPO = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class DownloadResult:
    entry_id: str
    path: Path
    files: int


def make_tqdm_class(callback: DownloadProgress | None) -> Any:
    """A tqdm subclass (what huggingface_hub accepts) that forwards progress to `callback`."""
    from tqdm.auto import tqdm

    class _Forward(tqdm):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.pop("name", None)  # huggingface_hub passes a name= kwarg to its own bars
            kwargs["disable"] = False if callback is not None else kwargs.get("disable", False)
            super().__init__(*args, **kwargs)
            self._report()

        def update(self, n: float | None = 1) -> bool | None:
            out = super().update(n)
            self._report()
            return out

        def _report(self) -> None:
            if callback is not None:
                callback(int(self.n or 0), int(self.total or 0), str(self.desc or ""))

    return _Forward


def _is_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def download_model(entry_id: str, models_dir: Path, *, presets: Presets | None = None,
                   token: str | None = None, progress: DownloadProgress | None = None,
                   endpoint: str | None = None, max_workers: int = 4) -> DownloadResult:
    """Download one catalog entry into `models_dir/<local_dir>/`."""
    from studio.config import REPO_ROOT

    presets = presets or Presets(REPO_ROOT / "presets")
    entry: ModelEntry = presets.model(entry_id)
    if entry.id != entry_id:
        raise StudioError("download.not_found", repo=entry_id)
    fields = {"model": entry.name_ko, "local_dir": entry.local_dir, "repo": entry.repo_id}
    if not HF_REPO.match(entry.repo_id):
        raise StudioError("download.not_hf", **fields)
    if _is_offline():
        raise StudioError("download.offline", **fields)
    target = Path(models_dir) / entry.local_dir
    target.mkdir(parents=True, exist_ok=True)
    free_gb = _free_gb(target)
    if free_gb is not None and free_gb < entry.disk_gb:
        raise StudioError("download.disk", need=entry.disk_gb, **fields)

    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
    )

    endpoint = endpoint or os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    token = token or None
    try:
        path = snapshot_download(entry.repo_id, local_dir=str(target), allow_patterns=entry.files or None,
                                 token=token, tqdm_class=make_tqdm_class(progress), endpoint=endpoint,
                                 max_workers=max_workers, etag_timeout=10)
    except GatedRepoError as exc:
        raise StudioError("download.gated", **fields) from exc
    except RepositoryNotFoundError as exc:
        if entry.gated or token is None:
            raise StudioError("download.gated", **fields) from exc
        raise StudioError("download.not_found", **fields) from exc
    except OfflineModeIsEnabled as exc:
        raise StudioError("download.offline", **fields) from exc
    except LocalEntryNotFoundError as exc:
        key = "download.offline" if _is_offline() else "download.unreachable"
        raise StudioError(key, endpoint=endpoint, **fields) from exc
    except HfHubHTTPError as exc:
        raise StudioError("download.failed", err=str(exc).splitlines()[0][:160], **fields) from exc
    except OSError as exc:
        raise StudioError("download.failed", err=f"{type(exc).__name__}: {exc}"[:160], **fields) from exc
    count = sum(1 for p in Path(path).rglob("*") if p.is_file() and ".cache" not in p.parts)
    log.info("downloaded %s (%s) into %s: %d files", entry.id, entry.repo_id, path, count)
    return DownloadResult(entry_id=entry.id, path=Path(path), files=count)


def _free_gb(path: Path) -> float | None:
    import shutil

    try:
        return shutil.disk_usage(path).free / 1e9
    except OSError:
        return None
