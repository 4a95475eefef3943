"""The base every diffusers engine builds on: device, memory plan, OOM ladder, cancel, close.

FLUX Fill (inpaint), FLUX schnell/dev (text2image) and the image-to-video engines subclass
`DiffusersEngine` and write only what is theirs:

    class MyEngine(DiffusersEngine):
        name = "my"
        caps = EngineCaps(...)
        model_label = "My model"            # names the model in messages
        def footprint_gb(self, plan) -> float: ...          # VRAM the pipeline needs (the manager plans with it)
        def _load_parts(self, qconfig) -> dict: ...          # components, shared ones via self.shared_components(...)
        def _build_pipeline(self, parts) -> Any: ...         # e.g. LTXImageToVideoPipeline(**parts)

        def image2video(self, job, progress=None, cancel=None) -> VideoResult:
            def attempt(plan, w, h):                         # one try at one plan and size
                return self._pipe(..., callback_on_step_end=self.step_callback(progress, steps, cancel)).frames[0]
            frames, notices, plan, (w, h) = self.run_ladder(job.width, job.height, attempt, cancel)
            return VideoResult(frames, fps, notices)

What the base does:
- resolves the device (CUDA if present, unless `device="cpu"`), dtype (bf16 on CUDA, fp32 on CPU)
  and the memory plan (`studio.runtime.memory.choose_plan`, system RAM included);
- `load()` goes through the model manager: the pipeline resident before it is freed first, Ollama
  is asked to unload when VRAM is short; a load failure leaves nothing claimed;
- `run_ladder` places the pipeline by plan and runs one attempt under `manager.use(key)`; on
  out-of-memory it frees memory, evicts half-moved parts, and retries with the next lighter plan,
  then at lower resolutions; each step down becomes a notice for the owner;
- `step_callback` reports progress every step and stops within one step on cancel
  (diffusers' `callback_on_step_end`);
- `close()` frees the pipeline and its claim on shared components.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from studio.engines.base import EngineCaps
from studio.errors import CancelledError, StudioError
from studio.runtime.jobs import CancelToken, ProgressFn, no_progress
from studio.runtime.manager import ModelManager
from studio.schema import Notice

if TYPE_CHECKING:
    from studio.runtime.memory import DeviceInfo, MemoryPlan

log = logging.getLogger(__name__)

SIZE_MULTIPLE = 16
MIN_SIZE = 64
MAX_SIZE = 2048
LOWER_RES_FACTORS: tuple[float, ...] = (0.75, 0.5)

T = TypeVar("T")
AllocHook = Callable[["MemoryPlan", int, int], None]
Attempt = Callable[["MemoryPlan", int, int], T]


def notice_dict(notice: Notice) -> dict:
    """A notice as the history row records it: `Notice.as_record` (one format for ads, clips, stock)."""
    return notice.as_record()


class DiffusersEngine:
    """Shared plumbing of the diffusers engines (see the module docstring for how to subclass)."""

    name = "diffusers"
    caps = EngineCaps(needs_gpu=True, needs_weights=True)
    model_label = "diffusers"
    size_multiple = SIZE_MULTIPLE
    min_size = MIN_SIZE
    memory_profile: str | None = None  # a `memory.PROFILES` name: plan by that engine's weights (None: FLUX Fill)

    def __init__(
        self,
        models_dir: Path | None = None,
        *,
        parts: dict[str, Any] | None = None,
        device: str | None = None,
        dtype: Any = None,
        memory_plan: str = "auto",
        quantize: str = "none",
        manager: ModelManager | None = None,
        alloc_hook: AllocHook | None = None,
        lower_res_factors: tuple[float, ...] = LOWER_RES_FACTORS,
        name: str | None = None,
        ram_gb: float | None = None,
    ) -> None:
        if models_dir is None and parts is None:
            raise ValueError(f"{type(self).__name__} needs models_dir or parts")
        self.models_dir = Path(models_dir) if models_dir is not None else None
        self._parts = dict(parts) if parts is not None else None
        self._device_name = device
        self._dtype = dtype
        self.memory_plan = memory_plan
        self.quantize = quantize
        self.manager = manager if manager is not None else ModelManager()
        self.alloc_hook = alloc_hook
        self.lower_res_factors = lower_res_factors
        if name is not None:
            self.name = name
        self._ram_gb = ram_gb
        self._pipe: Any = None
        self._placed: "MemoryPlan | None" = None
        self._kept: dict[str, Any] = {}
        self._in_ram = False          # parked by the manager: on the CPU, hooks removed, kept for a switch back
        self.plan: "MemoryPlan | None" = None
        self.device_info: "DeviceInfo | None" = None
        self.load_notices: list[Notice] = []
        self.last_notices: list[Notice] = []
        self.last_plan: "MemoryPlan | None" = None
        self.last_size: tuple[int, int] | None = None

    # ---- what subclasses provide --------------------------------------------------------------
    def footprint_gb(self, plan: "MemoryPlan") -> float:
        """VRAM the pipeline needs under `plan`, in GiB like the card's size (`memory.gib(decimal GB)`);
        the manager asks Ollama to unload above its budget."""
        return 0.0

    def _load_parts(self, qconfig: Any) -> dict[str, Any]:
        raise NotImplementedError

    def _build_pipeline(self, parts: dict[str, Any]) -> Any:
        raise NotImplementedError

    # ---- identity and manager -----------------------------------------------------------------
    @property
    def key(self) -> str:
        """The manager's name for this engine's pipeline (unique per engine object)."""
        return f"{self.name}@{id(self):x}"

    def bind_manager(self, manager: ModelManager) -> None:
        """The app's manager (EngineProvider calls this right after building the engine)."""
        if self._pipe is not None and manager is not self.manager:
            self.close()
        self.manager = manager

    # ---- device and plan ----------------------------------------------------------------------
    def _resolve_device(self) -> None:
        if self.device_info is not None:
            return
        import torch

        from studio.runtime.memory import DeviceInfo, choose_plan, detect_device, system_ram_gb

        info = detect_device()
        if self._device_name is not None and torch.device(self._device_name).type == "cpu":
            info = DeviceInfo(name="CPU", cuda=False, vram_gb=None, torch_version=info.torch_version)
        self.device_info = info
        if self._dtype is None:
            self._dtype = torch.bfloat16 if info.cuda else torch.float32
        ram = self._ram_gb if self._ram_gb is not None else system_ram_gb()
        if self.memory_profile is not None:
            from studio.runtime.memory import PROFILES, choose_plan_for

            self.plan = choose_plan_for(PROFILES[self.memory_profile], info.vram_gb,
                                        self.memory_plan if info.cuda else "auto", self.quantize,
                                        cuda=info.cuda, ram_gb=ram)
        else:
            self.plan = choose_plan(info.vram_gb, self.memory_plan if info.cuda else "auto", self.quantize,
                                    cuda=info.cuda, ram_gb=ram)

    @property
    def device(self) -> str:
        self._resolve_device()
        return self._device_name or self.device_info.device  # type: ignore[union-attr]

    @property
    def dtype(self) -> Any:
        self._resolve_device()
        return self._dtype

    # ---- loading ------------------------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        return self._pipe is not None

    @property
    def pipeline(self) -> Any:
        """The loaded pipeline (loads on first access)."""
        self.load()
        return self._pipe

    def load(self) -> None:
        """Load through the manager (the resident pipeline is freed first). Idempotent."""
        self._resolve_device()
        plan: MemoryPlan = self.plan  # type: ignore[assignment]
        self._activate(plan)
        self._in_ram = False          # (back from system RAM, if it was parked: placed again on the next run)
        if self._pipe is not None:
            return
        from studio.runtime.memory import quantization_config, ram_notice

        try:
            cuda = bool(self.device_info and self.device_info.cuda)
            qconfig = quantization_config(plan.quantize if cuda else self.quantize, cuda)
            self.load_notices = [n for n in [ram_notice(plan)] if n is not None]
            parts = self._parts if self._parts is not None else self._load_parts(qconfig)
            pipe = self._build_pipeline(parts)
        except BaseException:
            self.manager.deactivate(self.key)
            raise
        pipe.set_progress_bar_config(disable=True)
        self._pipe = pipe
        self._placed = None
        self._activate(plan)          # again, with the measured size of its weights
        self.manager.trim()  # shared components the previous pipeline held and this one does not
        log.info("%s loaded (device=%s, dtype=%s, plan=%s)", self.name, self.device, self._dtype, plan.name)

    def shared_components(self, own: Path) -> dict[str, Any]:
        """T5 / CLIP / VAE / tokenizers from models/flux-fill/ (else `own`), loaded once by the manager."""
        from studio.runtime import weights as W

        return W.load_shared_components(Path(self.models_dir or "."), own, self._dtype, "cpu",
                                        self.manager.components, holder=self.key)

    def _activate(self, plan: "MemoryPlan") -> None:
        self.manager.activate(self.key, self.footprint_gb(plan), self._release_for_manager,
                              park=self._park_for_manager, ram_gb=self.weights_gb())

    def weights_gb(self) -> float:
        """The pipeline's weights in system RAM, GiB: measured once loaded, else the plan's VRAM need."""
        if self._pipe is None:
            return self.footprint_gb(self.plan) if self.plan is not None else 0.0
        total = 0
        for module in getattr(self._pipe, "components", {}).values():
            if module is not None and hasattr(module, "parameters"):
                total += sum(p.numel() * p.element_size() for p in module.parameters())
        return total / 1024**3

    def _release_for_manager(self) -> None:
        self._free_pipeline()

    def _park_for_manager(self) -> bool:
        """The manager sets this pipeline aside and system RAM allows: move it to the CPU (hooks
        removed) and keep it, so a switch back places it again instead of reloading. False when a
        component cannot leave the card (then the manager frees it)."""
        from studio.runtime.memory import free_memory, release_plan

        if self._pipe is None or release_plan(self._pipe, free=False):
            return False
        self._placed = None
        self._in_ram = True
        free_memory()
        return True

    def _free_pipeline(self) -> None:
        from studio.runtime.memory import free_memory, release_plan

        if self._pipe is not None and not self._in_ram:
            # (a parked pipeline was released when parked; its shared parts may now serve another)
            release_plan(self._pipe, free=False)
        self._pipe = None
        self._placed = None
        self._in_ram = False
        self._kept = {}
        free_memory()

    def close(self) -> None:
        """Free the pipeline (switching engines frees the old one first) and its component claims."""
        self._free_pipeline()
        self.manager.deactivate(self.key)

    # ---- placement and OOM recovery -----------------------------------------------------------
    def _place(self, plan: "MemoryPlan") -> None:
        from studio.runtime.memory import apply_plan, release_plan

        if self._placed == plan:
            return
        if self._placed is not None:
            self._evict(release_plan(self._pipe))
            if self._pipe is None:  # evicted: reload what was dropped
                self.load()
        apply_plan(self._pipe, plan, self.device)
        self._placed = plan

    def _evict(self, stuck: list[str]) -> None:
        """Components that could not be moved back are dropped: the next attempt reloads them."""
        if not stuck:
            return
        for name in stuck:
            self.manager.evict(getattr(self._pipe, name, None))
        log.warning("evicted half-moved components %s; they reload on the next attempt", stuck)
        if self._parts is None:
            comps = getattr(self._pipe, "components", {})
            self._kept = {n: m for n, m in comps.items() if n in self.own_components and n not in stuck
                          and m is not None}
            self._pipe = None
        self._placed = None

    own_components: tuple[str, ...] = ("transformer", "controlnet")

    def _recover(self) -> None:
        from studio.runtime.memory import free_memory, release_plan

        if self._pipe is not None:
            self._evict(release_plan(self._pipe))
        self._placed = None
        free_memory()

    def attempts(self, width: int, height: int) -> list[tuple["MemoryPlan", int, int]]:
        """The OOM ladder: this plan, each lighter plan, then lower resolutions on the lightest."""
        from studio.runtime.memory import lighter_plans

        self._resolve_device()
        first: MemoryPlan = self.plan  # type: ignore[assignment]
        plans = [first, *lighter_plans(first)]
        out = [(p, width, height) for p in plans]
        seen = {(width, height)}
        m = self.size_multiple
        for factor in self.lower_res_factors:
            w = max(self.min_size, int(width * factor) // m * m)
            h = max(self.min_size, int(height * factor) // m * m)
            if (w, h) not in seen:
                seen.add((w, h))
                out.append((plans[-1], w, h))
        return out

    def run_ladder(self, width: int, height: int, attempt: "Attempt[T]",
                   cancel: CancelToken | None = None) -> tuple[T, list[Notice], "MemoryPlan", tuple[int, int]]:
        """Run `attempt(plan, w, h)` down the OOM ladder. Returns its result, the notices (load
        notices + a lighter plan + a lower resolution), the plan and size that worked."""
        import torch

        if cancel is not None:
            cancel.raise_if_cancelled()
        self._resolve_device()
        last_exc: BaseException | None = None
        result: Any = None
        done = False
        plan, w, h = self.plan, width, height
        for plan, w, h in self.attempts(width, height):
            try:
                self.load()
                with self.manager.use(self.key):
                    self._place(plan)
                    if self.alloc_hook is not None:
                        self.alloc_hook(plan, w, h)
                    result = attempt(plan, w, h)
                done = True
                break
            except torch.OutOfMemoryError as exc:
                last_exc = exc
                log.warning("out of memory with plan %s at %dx%d; trying a lighter setting", plan.name, w, h)
                self._recover()
        if not done:
            raise StudioError("engine.oom") from last_exc
        notices = list(self.load_notices)
        if self.plan is None or plan.name != self.plan.name:
            notices.append(Notice("engine.notice.plan", {"plan": plan.name}))
            self.plan = plan  # stay on the plan that worked for the next jobs
        if (w, h) != (width, height):
            notices.append(Notice("engine.notice.lower_res", {"w": w, "h": h, "tw": width, "th": height}))
        self.last_notices, self.last_plan, self.last_size = notices, plan, (w, h)
        return result, notices, plan, (w, h)  # type: ignore[return-value]

    @staticmethod
    def step_callback(progress: ProgressFn | None, total: int, cancel: CancelToken | None,
                      desc: str = "denoise") -> Callable[[Any, int, Any, dict], dict]:
        """diffusers' `callback_on_step_end`: progress every step, cancel within one step."""
        report = progress or no_progress

        def on_step(pipe: Any, i: int, t: Any, kwargs: dict) -> dict:
            report(i + 1, total, desc)
            if cancel is not None and cancel.cancelled:
                raise CancelledError()
            return {}

        return on_step
