"""The model manager: the one owner of GPU memory and of the components pipelines share.

- **One heavy pipeline resident.** An engine calls `activate(key, need_gb, release)` before it
  loads. The manager frees the pipeline resident before it (calling that engine's `release`)
  *first*, then, when the VRAM budget is short of `need_gb`, asks Ollama to unload its model.
- **Shared components load once.** T5, CLIP and the VAE are the same files for FLUX.1 Fill, dev and
  schnell: `component(...)` loads each (folder, dtype, device) once and hands the same object to
  every pipeline that asks. Each holder is recorded; when a pipeline is freed its claims are
  dropped, and `trim()` (after the next engine has loaded) frees the components nobody holds. So
  a switch Fill -> schnell keeps T5/CLIP/VAE, a switch Fill -> lite frees them.
- **Loaded models are context managers.** `with manager.use(key):` holds the engine's VRAM while a
  job runs; an engine in use is never freed under it (another thread's switch waits).
- **The idle previous pipeline may wait in system RAM** (InvokeAI's habit). When a manager has a
  RAM gauge (`ram_free_gb`; `from_settings` gives it psutil's), the pipeline set aside for the
  next one is *parked* instead of freed, if system RAM still leaves room for the next load
  (`park_fits`): its engine moves it to the CPU and keeps it, so switching back places it on the
  card again instead of re-reading its weights from disk. One pipeline is parked at most; parking
  another, closing it, or `free_all` frees it. Without a gauge (tests build managers bare)
  nothing is parked.
- Every load/free/park/unpark is recorded in `events` (tests and `benchmarks/switch.py` read them).

There is no module-level instance: `EngineProvider` builds one per app (tests build their own),
so nothing leaks between tests. This module knows nothing of `studio.engines`: engines hand it
plain callables.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

log = logging.getLogger(__name__)

ReleaseFn = Callable[[], None]
ParkFn = Callable[[], bool]          # move the pipeline to system RAM and keep it; False: could not
OllamaUnload = Callable[[], bool]
RamGauge = Callable[[], "float | None"]   # system RAM available now, GiB
PARK_HEADROOM_GB = 4.0               # system RAM left free beyond the next load's weights


@dataclass
class _Resident:
    key: str
    need_gb: float
    release: ReleaseFn
    users: int = 0
    park: ParkFn | None = None       # None: this pipeline is never parked
    ram_gb: float = 0.0              # its weights in system RAM once parked


@dataclass
class ComponentCache:
    """Loaded components keyed by (folder, dtype, device); loads each key once; records holders."""

    _items: dict[tuple[str, str, str], Any] = field(default_factory=dict)
    _holders: dict[tuple[str, str, str], set[str]] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    loads: int = 0
    hits: int = 0

    @staticmethod
    def key(path: Path, dtype: Any, device: Any) -> tuple[str, str, str]:
        return (str(Path(path).resolve()), str(dtype), str(device))

    def get(self, path: Path, dtype: Any, device: Any, loader: Callable[[], Any], holder: str = "") -> Any:
        key = self.key(path, dtype, device)
        with self._lock:
            if key in self._items:
                self.hits += 1
            else:
                self._items[key] = loader()
                self.loads += 1
            if holder:
                self._holders.setdefault(key, set()).add(holder)
            return self._items[key]

    def evict(self, obj: Any) -> int:
        """Drop every entry holding `obj` (a model left half-moved by an error). Returns how many."""
        with self._lock:
            keys = [k for k, v in self._items.items() if v is obj]
            for k in keys:
                del self._items[k]
                self._holders.pop(k, None)
            return len(keys)

    def release(self, holder: str) -> None:
        with self._lock:
            for holders in self._holders.values():
                holders.discard(holder)

    def trim(self) -> list[str]:
        """Free the components no pipeline holds. Returns their folders."""
        with self._lock:
            idle = [k for k in self._items if not self._holders.get(k)]
            for k in idle:
                del self._items[k]
                self._holders.pop(k, None)
            return [k[0] for k in idle]

    def holders(self, obj: Any) -> set[str]:
        with self._lock:
            return set().union(*(self._holders.get(k, set()) for k, v in self._items.items() if v is obj))

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._holders.clear()

    def __len__(self) -> int:
        return len(self._items)


class ModelManager:
    """Owns GPU memory: at most one heavy pipeline resident, shared components loaded once."""

    def __init__(self, *, vram_gb: float | None = None, ollama_unload: OllamaUnload | None = None,
                 ram_free_gb: RamGauge | None = None) -> None:
        # vram_gb: the budget heavy pipelines are planned against (None: detect on first need;
        # tests pass a simulated budget)
        self._vram_gb = vram_gb
        self._vram_known = vram_gb is not None
        self.ollama_unload = ollama_unload
        self.components = ComponentCache()
        self._resident: _Resident | None = None
        self._parked: _Resident | None = None
        self.ram_free_gb = ram_free_gb
        self._lock = threading.RLock()
        self._idle = threading.Condition(self._lock)
        self.events: list[tuple[str, str]] = []

    @classmethod
    def from_settings(cls, settings: Any) -> "ModelManager":
        host, model = getattr(settings, "ollama_host", None), getattr(settings, "ollama_model", None)
        unload: OllamaUnload | None = None
        if host and model:
            def unload() -> bool:
                from studio.runtime.memory import unload_ollama

                return unload_ollama(host, model)
        return cls(ollama_unload=unload, ram_free_gb=available_ram_gb)

    # ---- budget -------------------------------------------------------------------------------
    @property
    def vram_gb(self) -> float | None:
        if not self._vram_known:
            from studio.runtime.memory import detect_device

            self._vram_gb = detect_device().vram_gb
            self._vram_known = True
        return self._vram_gb

    @property
    def resident(self) -> str | None:
        return self._resident.key if self._resident is not None else None

    @property
    def parked(self) -> str | None:
        return self._parked.key if self._parked is not None else None

    def park_fits(self, park_gb: float, next_gb: float) -> bool:
        """Whether system RAM holds a parked pipeline of `park_gb` and still leaves the next load
        (`next_gb` of weights) and PARK_HEADROOM_GB free."""
        free = self.ram_free_gb() if self.ram_free_gb is not None else None
        return free is not None and free - park_gb >= next_gb + PARK_HEADROOM_GB

    # ---- heavy pipelines ----------------------------------------------------------------------
    def activate(self, key: str, need_gb: float, release: ReleaseFn, park: ParkFn | None = None,
                 ram_gb: float = 0.0) -> None:
        """`key` is about to load (or run): set the pipeline resident before it aside first (parked
        in system RAM when `park_fits`, else freed), then ask Ollama for its VRAM when the budget
        is short of `need_gb`. `park`/`ram_gb`: how this pipeline parks later, and its size."""
        with self._idle:
            current = self._resident
            if current is not None and current.key == key:
                current.release, current.park, current.ram_gb = release, park, ram_gb
                return
            while self._resident is not None and self._resident.users > 0:
                self._idle.wait()  # never free a pipeline under a running job
            if self._parked is not None and self._parked.key == key:
                self._parked = None                      # back from system RAM: no reload
                self.events.append(("unpark", key))
            if self._resident is not None:
                self._set_aside(self._resident, next_gb=ram_gb)
            budget = self.vram_gb
            if budget is not None and need_gb > budget and self.ollama_unload is not None:
                asked = self.ollama_unload()
                self.events.append(("ollama_unload", "ok" if asked else "unreachable"))
            self._resident = _Resident(key, need_gb, release, park=park, ram_gb=ram_gb)
            self.events.append(("load", key))

    def _set_aside(self, resident: _Resident, next_gb: float) -> None:
        """Park `resident` in system RAM when it can park and RAM allows; else free it."""
        self._resident = None
        if resident.park is not None and self.park_fits(resident.ram_gb, next_gb):
            if self._parked is not None:
                self._free(self._parked)                 # one parked pipeline at most
            try:
                parked = resident.park()
            except Exception:  # noqa: BLE001 - a failed park frees the pipeline instead
                log.exception("model manager: parking %s failed; freeing it", resident.key)
                parked = False
            if parked:
                log.info("model manager: %s waits in system RAM", resident.key)
                self._parked = resident
                self.events.append(("park", resident.key))
                return
        self._free(resident)

    def _free(self, resident: _Resident) -> None:
        log.info("model manager: freeing %s", resident.key)
        if self._resident is resident:
            self._resident = None
        if self._parked is resident:
            self._parked = None
        try:
            resident.release()
        finally:
            self.components.release(resident.key)
            self.events.append(("free", resident.key))

    def deactivate(self, key: str) -> None:
        """`key` freed itself (close) or failed to load: forget it and drop its component claims."""
        with self._idle:
            if self._resident is not None and self._resident.key == key:
                self._resident = None
                self.events.append(("free", key))
            if self._parked is not None and self._parked.key == key:
                self._parked = None
                self.events.append(("free", key))
            self.components.release(key)
            self._idle.notify_all()

    def free_all(self) -> None:
        with self._idle:
            while self._resident is not None and self._resident.users > 0:
                self._idle.wait()
            if self._resident is not None:
                self._free(self._resident)
            if self._parked is not None:
                self._free(self._parked)
            self.trim()

    def trim(self) -> list[str]:
        freed = self.components.trim()
        if freed:
            from studio.runtime.memory import free_memory

            self.events.append(("trim", ",".join(Path(f).name for f in freed)))
            free_memory()
        return freed

    @contextmanager
    def use(self, key: str) -> Iterator[None]:
        """Hold `key`'s pipeline while a job runs (it must be the resident one)."""
        with self._idle:
            resident = self._resident
            if resident is None or resident.key != key:
                raise RuntimeError(f"{key} is not the resident pipeline; activate it first")
            resident.users += 1
        try:
            yield
        finally:
            with self._idle:
                resident.users -= 1
                self._idle.notify_all()

    # ---- shared components --------------------------------------------------------------------
    def component(self, path: Path, dtype: Any, device: Any, loader: Callable[[], Any], holder: str) -> Any:
        return self.components.get(path, dtype, device, loader, holder)

    def evict(self, obj: Any) -> int:
        return self.components.evict(obj)


def available_ram_gb() -> float | None:
    """System RAM available now, GiB (None when psutil is missing)."""
    try:
        import psutil
    except ImportError:
        return None
    return psutil.virtual_memory().available / 1024**3
