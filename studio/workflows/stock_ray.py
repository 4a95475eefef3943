"""Stock batches on a Ray cluster: one actor per GPU, each holding one loaded pipeline.

Ray is optional (``requirements-scale.txt``); without it the batch runs in-process
(`studio.workflows.stock.run_batch`). The driver owns the history and the batch state:

- it plans nothing new: the batch's plan is already committed (`plan_batch`), so a resumed batch
  dispatches exactly the items still pending;
- each actor builds its engine chain once (`EngineProvider` in the actor process) and runs
  `produce_item` (generate, gate, upscale, encode) for the items it is handed; the driver keeps
  up to `inflight` items per actor so a worker never waits for the driver;
- results come back to the driver, which checks near-duplicates, writes the history row and
  marks the item (`commit_item`), exactly as in-process; the CSV/ZIP export is the same;
- when an actor dies (node lost, `kill -9`, OOM) its in-flight items go back into the queue and
  a fresh actor replaces it; after too many losses the batch stops (status "failed") and can be
  resumed later.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections import deque
from typing import Any, Callable

from studio.config import Settings
from studio.errors import StudioError
from studio.runtime.jobs import CancelToken, ProgressFn, no_progress
from studio.store.batches import PENDING, BatchItem
from studio.store.history import Record
from studio.workflows import stock as W

log = logging.getLogger(__name__)

WAIT_S = 1.0


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise StudioError("stock.ray_missing") from exc
    return ray


class StockWorker:
    """The actor body (wrapped with `ray.remote` at run time, so importing this needs no Ray)."""

    def __init__(self, settings: dict, chain: list[str]) -> None:
        from studio.engines.registry import EngineProvider

        self.settings = Settings(**settings)
        self.provider = EngineProvider(self.settings)
        self.chain = W.EngineChain(list(chain), lambda n: self.provider.get("text2image", n),
                                   lambda n: self.provider.release("text2image", n))
        self.upscaler: Any = None
        self._upscaler_loaded = False

    def pid(self) -> int:
        return os.getpid()

    def produce(self, item: dict, request: dict) -> W.Produced:
        req = W.StockRequest.from_dict(request)
        if req.min_short and not self._upscaler_loaded:
            from studio.render.stock_post import load_upscaler

            self.upscaler = load_upscaler(self.settings.models_dir)
            self._upscaler_loaded = True
        produced = W.produce_item(self.chain, BatchItem(**item), req, self.upscaler)
        produced.metrics = dict(produced.metrics, worker=os.getpid())
        return produced


def _settings_dict(settings: Settings) -> dict:
    return {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}


def run_batch_ray(batch_id: str, services: Any, *, address: str | None = "auto", workers: int | None = None,
                  inflight: int = 2, progress: ProgressFn | None = None, cancel: CancelToken | None = None,
                  on_image: Callable[[Record], None] | None = None, max_losses: int | None = None,
                  wait_s: float = WAIT_S) -> W.Summary:
    """Run the batch's pending items on Ray actors; returns the same Summary as `run_batch`.

    `address=None` uses a Ray session the caller already started (tests: a local 2-CPU cluster).
    """
    ray = _import_ray()
    progress = progress or no_progress
    if not ray.is_initialized():
        try:
            ray.init(address=address, log_to_driver=False, include_dashboard=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise StudioError("stock.ray_failed", address=address, err=str(exc)[:200]) from exc
    gpus = int(ray.cluster_resources().get("GPU", 0))
    n_workers = workers or (gpus if gpus else 2)
    options = {"num_gpus": 1} if gpus else {"num_cpus": 1}
    Actor = ray.remote(max_restarts=0, **options)(StockWorker)

    with W.batch_store(services) as bs:
        batch = bs.get(batch_id)
        request = W.StockRequest.from_dict(batch.request)
        bs.sync_done(batch.id)
        items = bs.items(batch.id)
        total = len(items)
        queue: deque[BatchItem] = deque(i for i in items if i.state == PENDING)
        finished = total - len(queue)
        names = W.resolve_chain(request.chain, lambda: services.engines.choice("text2image").name)
        settings = _settings_dict(services.settings)
        req_dict = request.to_dict()
        seen = W._seen_hashes(services, batch.id)  # noqa: SLF001 - same module family
        bs.set_status(batch.id, "running")
        progress(finished, total, "stock")

        actors: list[Any] = [Actor.remote(settings, names) for _ in range(n_workers)]
        running: dict[Any, tuple[Any, BatchItem]] = {}   # object ref -> (actor, item)
        notices: list[dict] = []
        losses = 0
        limit = max_losses if max_losses is not None else 3 * n_workers
        status = "done"

        def dispatch() -> None:
            for actor in actors:
                busy = sum(1 for a, _ in running.values() if a is actor)
                while busy < inflight and queue:
                    item = queue.popleft()
                    ref = actor.produce.remote(dataclasses.asdict(item), req_dict)
                    running[ref] = (actor, item)
                    busy += 1

        try:
            dispatch()
            while running:
                if cancel is not None and cancel.cancelled:
                    status = "cancelled"
                    break
                ready, _ = ray.wait(list(running), num_returns=1, timeout=wait_s)
                for ref in ready:
                    actor, item = running.pop(ref)
                    try:
                        produced: W.Produced = ray.get(ref)
                    except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as exc:
                        losses += 1
                        log.warning("stock: Ray worker lost on item %d (%s)", item.idx, type(exc).__name__)
                        # every item that actor held goes back, and a fresh actor takes its place
                        lost = [r for r, (a, _) in running.items() if a is actor]
                        requeue = [item] + [running.pop(r)[1] for r in lost]
                        queue.extendleft(reversed(sorted(requeue, key=lambda i: i.idx)))
                        if actor in actors:
                            actors.remove(actor)
                        if losses > limit:
                            status = "failed"
                            notices.append({"key": "stock.ray_workers_lost", "fields": {}})
                            break
                        actors.append(Actor.remote(settings, names))
                        if {"key": "stock.ray_worker_restarted", "fields": {}} not in notices:
                            notices.append({"key": "stock.ray_worker_restarted", "fields": {}})
                        continue
                    saved = W.commit_item(services, bs, batch, item, produced, seen, request)
                    for n in produced.notices:
                        if n not in notices:
                            notices.append(n)
                    finished += 1
                    progress(finished, total, "stock")
                    if saved is not None and on_image is not None:
                        on_image(saved)
                if status == "failed":
                    break
                dispatch()
        finally:
            for actor in actors:
                try:
                    ray.kill(actor)
                except (ValueError, ray.exceptions.RayError) as exc:
                    log.info("stock: could not stop actor: %s", exc)
            if notices:
                bs.add_notices(batch.id, notices)
            remaining = bs.counts(batch.id).get(PENDING, 0)
            if status == "done" and remaining:
                status = "failed"
            bs.set_status(batch.id, status)
    return W.summarize(services, batch.id)
