"""Engines by task: which generators exist for each task, which one runs, and why.

The registry is data: one `EngineSpec` per (task, engine), in priority order within a task. The
`auto` choice of a task is the first spec whose weights are present (and CUDA, where it needs it),
else the task's no-weights engine; its reason is a message key, shown to the owner in their
language. The owner can switch a task's engine while the app runs (`EngineProvider.select`).

Engines are built lazily on first use (`EngineProvider.get`), so a PC without weights starts fast
and no torch is imported to decide. Checking for weights is a directory scan.
"""

from __future__ import annotations

import functools
import importlib
import logging
import threading
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Mapping

from studio.config import Settings
from studio.engines.base import TASKS
from studio.errors import InputError, StudioError
from studio.i18n import t
from studio.runtime.manager import ModelManager

if TYPE_CHECKING:
    from studio.engines.base import Engine

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineSpec:
    task: str                          # one of base.TASKS
    name: str                          # unique within the task ("flux", "lite", "motion", ...)
    factory: str                       # "module:callable"; the callable takes Settings, returns the engine
    label_key: str                     # i18n key of the owner-facing name
    weights_any: tuple[str, ...] = ()  # globs under models/; one match = weights present (empty: none needed)
    needs_cuda: bool = False
    heavy: bool = False                # a GPU pipeline: the model manager keeps at most one resident
    auto: bool = True                  # may `auto` pick it (the tiny test set never is)
    model_ids: tuple[str, ...] = ()    # catalog ids (presets/models.json) it loads
    memory_profile: str | None = None  # memory.PROFILES name: does it fit this card without streaming layers?

    @property
    def needs_weights(self) -> bool:
        return bool(self.weights_any)


SPECS: tuple[EngineSpec, ...] = (
    # inpaint ---------------------------------------------------------------------------------
    # commercially usable first (issue 23): the best that fits the card is the GPU default
    EngineSpec("inpaint", "qwen-edit", "studio.engines.commercial:create_qwen_edit", "engine.name.qwen_edit",
               weights_any=("qwen-image-edit-2511/model_index.json",), needs_cuda=True, heavy=True,
               model_ids=("qwen_image_edit_2511",), memory_profile="qwen-edit"),
    EngineSpec("inpaint", "klein", "studio.engines.commercial:create_klein", "engine.name.klein",
               weights_any=("flux2-klein-4b/model_index.json",), needs_cuda=True, heavy=True,
               model_ids=("flux2_klein_4b",), memory_profile="klein"),
    EngineSpec("inpaint", "flux", "studio.engines.flux_fill:create_engine", "engine.name.flux",
               weights_any=("flux-fill/model_index.json", "flux1-fill-dev*.safetensors"), needs_cuda=True,
               heavy=True, model_ids=("flux_fill_dev", "controlnet_union_pro2"), memory_profile="flux"),
    EngineSpec("inpaint", "lite", "studio.engines.lite:create_engine", "engine.name.lite"),
    EngineSpec("inpaint", "tiny", "studio.engines.tiny:create_engine", "engine.name.tiny", heavy=True, auto=False),
    # text2image ------------------------------------------------------------------------------
    EngineSpec("text2image", "klein", "studio.engines.commercial:create_klein", "engine.name.klein",
               weights_any=("flux2-klein-4b/model_index.json",), needs_cuda=True, heavy=True,
               model_ids=("flux2_klein_4b",), memory_profile="klein"),
    EngineSpec("text2image", "flux-schnell", "studio.engines.t2i:create_schnell", "engine.name.flux_schnell",
               weights_any=("flux-schnell/model_index.json",), needs_cuda=True, heavy=True,
               model_ids=("flux_schnell",)),
    EngineSpec("text2image", "flux-dev", "studio.engines.t2i:create_dev", "engine.name.flux_dev",
               weights_any=("flux-dev/model_index.json",), needs_cuda=True, heavy=True, model_ids=("flux_dev",)),
    EngineSpec("text2image", "tiny", "studio.engines.t2i:create_tiny", "engine.name.tiny", heavy=True, auto=False),
    # image2video ---
    EngineSpec("image2video", "ltx", "studio.engines.ltx_video:create_ltx", "engine.name.ltx",
               weights_any=("ltx-video/model_index.json",), needs_cuda=True, heavy=True, model_ids=("ltx_video",)),
    EngineSpec("image2video", "wan", "studio.engines.ltx_video:create_wan", "engine.name.wan",
               weights_any=("wan2.2-ti2v-5b/model_index.json",), needs_cuda=True, heavy=True,
               model_ids=("wan22_ti2v_5b",)),
    EngineSpec("image2video", "motion", "studio.engines.motion:create_engine", "engine.name.motion"),
    EngineSpec("image2video", "tiny", "studio.engines.ltx_video:create_tiny", "engine.name.tiny_video", heavy=True,
               auto=False),
    # text2image (no weights) ---
    EngineSpec("text2image", "lite", "studio.engines.lite_t2i:create_engine", "engine.name.lite_t2i"),
)


def _index(specs: tuple[EngineSpec, ...]) -> Mapping[str, Mapping[str, EngineSpec]]:
    by_task: dict[str, dict[str, EngineSpec]] = {task: {} for task in TASKS}
    for spec in specs:
        if spec.task not in by_task:
            raise ValueError(f"engine {spec.name}: unknown task {spec.task}")
        if spec.name in by_task[spec.task]:
            raise ValueError(f"engine {spec.task}/{spec.name} registered twice")
        by_task[spec.task][spec.name] = spec
    return MappingProxyType({k: MappingProxyType(v) for k, v in by_task.items()})


REGISTRY: Mapping[str, Mapping[str, EngineSpec]] = _index(SPECS)


def specs_for(task: str) -> list[EngineSpec]:
    if task not in REGISTRY:
        raise InputError("engine.unknown_task", task=task)
    return list(REGISTRY[task].values())


def spec_for(task: str, name: str) -> EngineSpec:
    spec = REGISTRY.get(task, {}).get(name)
    if spec is None:
        names = ", ".join(s.name for s in specs_for(task))
        raise InputError("engine.unknown", task=task, engine=name, names=names)
    return spec


def weights_present(spec: EngineSpec, settings: Settings) -> bool:
    if not spec.weights_any:
        return True
    root = settings.models_dir
    return any(next(iter(root.glob(pattern)), None) is not None for pattern in spec.weights_any)


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


@functools.lru_cache(maxsize=4)
def _catalog(presets_dir: Any) -> tuple:
    from studio.presets import Presets

    return tuple(Presets(presets_dir).models)


def catalog_commercial() -> dict[str, bool]:
    """Catalogue id -> commercial_use, read from presets/models.json (no torch)."""
    from studio.config import REPO_ROOT

    try:
        return {e.id: bool(e.commercial_use) for e in _catalog(REPO_ROOT / "presets")}
    except Exception as exc:  # noqa: BLE001 - an unreadable catalogue: nothing catalogued counts as commercial
        log.warning("model catalogue unreadable (%s); treating catalogued models as non-commercial", exc)
        return {}


def is_commercial(spec: EngineSpec, table: dict[str, bool] | None = None) -> bool:
    """Built-in engines (no model ids: the studio's own code) are commercial; a model-backed
    engine only when every model it loads is marked `commercial_use` in the catalogue. The
    tiny test sets are never offered to the owner."""
    if spec.name == "tiny" or spec.name.startswith("tiny"):
        return False
    table = catalog_commercial() if table is None else table
    return all(table.get(mid, False) for mid in spec.model_ids)


def cuda_vram_gb() -> float | None:
    """The first CUDA card's memory in GiB (None without one)."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    return round(torch.cuda.get_device_properties(0).total_memory / 1024**3, 1)


def fits_card(spec: EngineSpec, vram_gb: float | None) -> bool:
    """The engine runs without streaming layers (its plan is "gpu" or model offload) on this card."""
    if spec.memory_profile is None or vram_gb is None:
        return True
    from studio.runtime.memory import PROFILES, choose_plan_for

    plan = choose_plan_for(PROFILES[spec.memory_profile], vram_gb, cuda=True)
    return plan.name in ("gpu", "model_offload")


@dataclass(frozen=True)
class EngineChoice:
    name: str
    reason_key: str
    reason_fields: dict = field(default_factory=dict)
    task: str = "inpaint"

    def reason(self, lang: str) -> str:
        return t(self.reason_key, lang, **self.reason_fields)


def auto_choice(task: str, settings: Settings) -> EngineChoice:
    """The best engine of the task whose weights (and CUDA, where needed) are present; else the
    task's engine that needs no weights, with the reason why the better one was passed over.

    With `settings.commercial_only` (on by default) non-commercial engines are never chosen.
    Among the usable GPU engines the first that fits the card without streaming layers wins
    (else the first usable one): the GPU default per card size is the best engine that fits."""
    commercial_only = bool(getattr(settings, "commercial_only", True))
    table = catalog_commercial() if commercial_only else {}
    specs = [s for s in specs_for(task) if s.auto]
    lang = settings.lang
    fallback = next((s for s in specs if not s.needs_weights), None)
    passed: tuple[str, str] | None = None  # (reason key, engine) of the best engine passed over
    cuda: bool | None = None
    usable: list[EngineSpec] = []
    for spec in specs:
        if not spec.needs_weights:
            continue
        if commercial_only and not is_commercial(spec, table):
            passed = passed or ("engine.reason.commercial_only", t(spec.label_key, lang))
            continue
        if not weights_present(spec, settings):
            passed = passed or ("engine.reason.no_weights", t(spec.label_key, lang))
            continue
        if spec.needs_cuda:
            cuda = cuda_available() if cuda is None else cuda
            if not cuda:
                passed = ("engine.reason.no_cuda", t(spec.label_key, lang))
                continue
        usable.append(spec)
    if usable:
        vram = cuda_vram_gb() if any(s.memory_profile for s in usable) else None
        best = next((s for s in usable if fits_card(s, vram)), usable[0])
        return EngineChoice(best.name, "engine.reason.ready", {"engine": t(best.label_key, lang)}, task)
    if fallback is None:
        best = specs[0] if specs else None
        key, label = passed or ("engine.reason.no_weights", t(best.label_key, lang) if best else task)
        return EngineChoice(best.name if best else "-", key, {"engine": label, "fallback": "-"}, task)
    fallback_label = t(fallback.label_key, lang)
    key, label = passed or ("engine.reason.only", fallback_label)
    return EngineChoice(fallback.name, key, {"engine": label, "fallback": fallback_label}, task)


def commercial_gap(task: str, settings: Settings) -> dict | None:
    """When the switch is on and no commercial model-backed engine of the task has its weights:
    what to download (catalogue id + label) so the owner can be told and offered it. None otherwise."""
    if not getattr(settings, "commercial_only", True):
        return None
    table = catalog_commercial()
    candidates = [s for s in specs_for(task) if s.auto and s.needs_weights and is_commercial(s, table)]
    if not candidates or any(weights_present(s, settings) for s in candidates):
        return None
    want = candidates[-1] if task == "inpaint" else candidates[0]  # inpaint: the light one (klein) fits most cards
    return {"task": task, "engine": want.name, "model_id": want.model_ids[0] if want.model_ids else "",
            "label": t(want.label_key, settings.lang),
            "message": t("commercial.none_for_task", settings.lang, task=t(f"commercial.task.{task}", settings.lang),
                         model=t(want.label_key, settings.lang))}


def choose(task: str, settings: Settings) -> EngineChoice:
    """The owner's forced choice for the task (settings), else `auto_choice`."""
    forced = settings.engine_for(task)
    if forced and forced != "auto":
        spec = spec_for(task, forced)  # raises a clear message for an unknown name
        if getattr(settings, "commercial_only", True) and spec.needs_weights and not is_commercial(spec):
            auto = auto_choice(task, settings)  # the switch wins over a non-commercial forced engine
            fields = {"engine": t(spec.label_key, settings.lang),
                      "fallback": t(spec_for(task, auto.name).label_key, settings.lang) if auto.name != "-" else "-"}
            return EngineChoice(auto.name, "engine.reason.commercial_only", fields, task)
        return EngineChoice(forced, "engine.reason.forced", {"engine": forced}, task)
    return auto_choice(task, settings)


def load_failure_reason(exc: BaseException, lang: str) -> str:
    """Why an engine could not load, in the owner's words (no exception names, no jargon)."""
    if isinstance(exc, StudioError):
        return exc.message(lang)
    if isinstance(exc, MemoryError) or "out of memory" in str(exc).lower():
        return t("engine.rollback.memory", lang)
    names = " ".join(c.__name__ for c in type(exc).__mro__).lower()
    text = str(exc).lower()
    if any(w in names for w in ("safetensor", "unpickling", "eoferror")) or any(
            w in text for w in ("header", "corrupt", "invalid load key", "deserializ", "incomplete")):
        return t("engine.rollback.corrupt", lang)
    return t("engine.rollback.failed", lang)


class EngineProvider:
    """Per task: the chosen engine, built on first use and cached; the owner may switch at runtime.

    Switching a task releases its previous engine first (IOPaint habit). All heavy engines share
    one `ModelManager` (bound right after they are built): at most one heavy pipeline is resident,
    and shared components load once. `select(..., load=True)` loads a heavy engine at once and,
    when that fails, rolls back to the previous engine with a notice the owner sees.
    """

    def __init__(self, settings: Settings, choice: EngineChoice | None = None,
                 manager: ModelManager | None = None) -> None:
        self.settings = settings
        self.manager = manager if manager is not None else ModelManager.from_settings(settings)
        self._choices: dict[str, EngineChoice] = {}
        if choice is not None:
            self._choices[choice.task] = choice
        self._engines: dict[tuple[str, str], Any] = {}
        self._lock = threading.RLock()

    def choice(self, task: str = "inpaint") -> EngineChoice:
        with self._lock:
            if task not in self._choices:
                self._choices[task] = choose(task, self.settings)
            return self._choices[task]

    def active_name(self, task: str = "inpaint") -> str:
        return self.choice(task).name

    def select(self, task: str, name: str, *, load: bool = False) -> EngineChoice:
        """The owner switches the task's engine ("auto" re-decides). With `load`, a heavy engine
        loads now; if it cannot, for any reason (missing or corrupt weights, out of memory, a bug),
        the previous engine stays active with its memory plan, the broken one is not kept, and the
        returned choice is the rollback notice (Korean first) the owner sees (IOPaint habit)."""
        with self._lock:
            previous = self._choices.get(task) or self.choice(task)
            if name == "auto":
                new = auto_choice(task, self.settings)
            else:
                spec = spec_for(task, name)
                if getattr(self.settings, "commercial_only", True) and spec.needs_weights and not is_commercial(spec):
                    auto = auto_choice(task, self.settings)  # the switch is on: never a non-commercial engine
                    fields = {"engine": t(spec.label_key, self.settings.lang),
                              "fallback": t(spec_for(task, auto.name).label_key, self.settings.lang)
                              if auto.name != "-" else "-"}
                    new = EngineChoice(auto.name, "engine.reason.commercial_only", fields, task)
                else:
                    new = EngineChoice(name, "engine.reason.selected", {"engine": name}, task)
            if not (load and spec_for(task, new.name).heavy):
                if previous.name != new.name:
                    self.release(task, previous.name)
                self._choices[task] = new
                return new
            old = self.peek(task, previous.name)
            old_plan = getattr(old, "plan", None)
            old_loaded = bool(getattr(old, "loaded", False))
            cached_before = (task, new.name) in self._engines
            try:
                engine = self.get(task, new.name)
                load_fn = getattr(engine, "load", None)
                if callable(load_fn):
                    load_fn()
            except BaseException as exc:  # noqa: BLE001 - any failure rolls back (MemoryError included)
                if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    raise
                return self._roll_back(task, new, previous, exc, old, old_plan, old_loaded,
                                       drop_new=previous.name != new.name or not cached_before)
            if previous.name != new.name:
                self.release(task, previous.name)
            self._choices[task] = new
            return new

    def _roll_back(self, task: str, new: EngineChoice, previous: EngineChoice, exc: BaseException,
                   old: Any, old_plan: Any, old_loaded: bool, *, drop_new: bool) -> EngineChoice:
        log.warning("engine %s/%s failed to load (%r); rolling back to %s", task, new.name, exc, previous.name)
        if drop_new:
            try:
                self.release(task, new.name)  # the broken engine is not cached, and holds nothing
            except Exception:  # noqa: BLE001 - the rollback itself must not fail
                log.exception("closing the failed engine %s/%s", task, new.name)
                self._engines.pop((task, new.name), None)
        self._choices[task] = previous
        if old is not None:
            if old_plan is not None:
                old.plan = old_plan  # the memory plan it had (a ladder step down is kept)
            if old_loaded and callable(getattr(old, "load", None)):
                try:
                    old.load()  # resident again, as before the switch
                except Exception:  # noqa: BLE001 - it reloads lazily on its next job
                    log.exception("reloading the previous engine %s/%s", task, previous.name)
        fields = {"engine": new.name, "previous": previous.name, "why": load_failure_reason(exc, self.settings.lang)}
        rolled = EngineChoice(previous.name, "engine.notice.rollback", fields, task)
        self._choices[task] = rolled
        return rolled

    def get(self, task: str = "inpaint", name: str | None = None) -> "Engine":
        name = name or self.choice(task).name
        spec = spec_for(task, name)
        with self._lock:
            key = (task, name)
            if key not in self._engines:
                module_name, _, attr = spec.factory.partition(":")
                factory = getattr(importlib.import_module(module_name), attr)
                log.info("building engine %s/%s", task, name)
                engine = factory(self.settings)
                bind = getattr(engine, "bind_manager", None)
                if callable(bind):
                    bind(self.manager)
                self._engines[key] = engine
            return self._engines[key]

    def peek(self, task: str, name: str) -> "Engine | None":
        """The engine if it is already built (never builds)."""
        return self._engines.get((task, name))

    def release(self, task: str, name: str) -> None:
        with self._lock:
            engine = self._engines.pop((task, name), None)
        close = getattr(engine, "close", None)
        if callable(close):
            close()
        self.manager.trim()

    def status(self, task: str) -> list[tuple[EngineSpec, str]]:
        """Each engine of the task with its status key (loaded / ready / no weights / needs CUDA)."""
        rows = []
        for spec in specs_for(task):
            engine = self.peek(task, spec.name)
            if engine is not None and getattr(engine, "loaded", False):
                key = "engine.status.loaded"
            elif not weights_present(spec, self.settings):
                key = "engine.status.no_weights"
            elif spec.needs_cuda and not cuda_available():
                key = "engine.status.no_cuda"
            else:
                key = "engine.status.ready"
            rows.append((spec, key))
        return rows
