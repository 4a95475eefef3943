"""One-time preparation that would otherwise land on the owner's first ad.

The soft-edge matting (`vision.matting.soft_edges`) uses PyMatting, whose numba functions carry
eager signatures: the first `import pymatting` in a new environment compiles all of them (about
60 s on 2 cores) and writes numba's cache next to the package; every later import reads the cache
(about 1.5 s). That compile was the 73 s "first ad after install". `prepare()` runs it once during
setup (and, if setup was skipped, in the background at the first start) so that no ad waits on it.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)
_lock = threading.Lock()


def pymatting_cache_ready() -> bool:
    """Has numba's cache for PyMatting been written (is the next import cheap)?"""
    spec = importlib.util.find_spec("pymatting")
    if spec is None or not spec.submodule_search_locations:
        return True          # not installed: nothing to compile
    cache = Path(list(spec.submodule_search_locations)[0]) / "util" / "__pycache__"
    return cache.is_dir() and any(cache.glob("*.nbi"))


def warm_pymatting() -> float:
    """Import PyMatting (compiling and caching its numba code when needed); returns seconds."""
    import time

    t0 = time.perf_counter()
    with _lock:
        import pymatting  # noqa: F401
    return time.perf_counter() - t0


def prepare(models_dir: Path | str, say: Callable[[str], None] | None = None, lang: str = "ko") -> dict:
    """Everything setup does: the bundled models (fetched, hash-checked) and the compile cache."""
    from studio.i18n import t
    from studio.runtime.bundled_models import ensure_bundled

    say = say or (lambda msg: None)
    status = ensure_bundled(models_dir, progress=say, lang=lang)
    out: dict = {"models": status}
    if not pymatting_cache_ready():
        say(t("setup.compiling", lang))
        out["compile_s"] = round(warm_pymatting(), 1)
    say(t("setup.done", lang))
    return out


def prepare_in_background(models_dir: Path | str, lang: str = "ko") -> threading.Thread | None:
    """At the first start without setup: the same preparation on a daemon thread (logged)."""
    from studio.runtime.bundled_models import all_present

    if all_present(models_dir) and pymatting_cache_ready():
        return None

    def work() -> None:
        try:
            prepare(models_dir, say=lambda m: print(m, flush=True), lang=lang)
        except Exception as exc:  # the studio still works without them (Haar/GrabCut path)
            from studio.errors import StudioError

            msg = exc.message(lang) if isinstance(exc, StudioError) else str(exc)
            log.warning("background preparation failed: %s", msg)
            print(msg, flush=True)

    th = threading.Thread(target=work, name="fitad-prepare", daemon=True)
    th.start()
    return th
