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
from studio.schema import Notice
from studio.store.batches import PENDING, REJECTED, BatchItem
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
            from studio.render.stock_post import allowed_for, load_upscaler

            self.upscaler = load_upscaler(self.settings.models_dir, allowed=allowed_for(self.settings))
            self._upscaler_loaded = True
        produced = W.produce_item(self.chain, BatchItem(**item), req, self.upscaler)
        produced.metrics = dict(produced.metrics, worker=os.getpid())
        return produced


def _settings_dict(settings: Settings) -> dict:
    return {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}


def connect(address: str | None) -> Any:
    """Ray, initialised (joins `address`; None = a session the caller already started)."""
    ray = _import_ray()
    if not ray.is_initialized():
        probe(address)
        try:
            ray.init(address=address, log_to_driver=False, include_dashboard=False)
        except Exception as exc:  # noqa: BLE001 - every way of not getting in becomes one plain message
            raise connect_error(address, exc) from exc
    return ray


PROBE_S = 3.0   # how long a cluster address may take to answer before the owner is told it is not there


def probe(address: str | None, timeout: float = PROBE_S) -> None:
    """Knock on a cluster's port before `ray.init`: Ray itself keeps retrying a dead address for
    minutes (measured: still waiting after 120 s on Ray 2.60), so an address nobody answers on
    becomes the plain "refused" message in `timeout` seconds. "auto", None and addresses without
    a port are left to Ray."""
    import socket

    if not address or address == "auto":
        return
    hostport = address.split("://", 1)[-1]
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            return
    except OSError as exc:
        raise connect_error(address, ConnectionRefusedError(str(exc))) from exc


def connect_error(address: str | None, exc: BaseException) -> StudioError:
    """The owner's message for a failed `ray.init`: a wrong/missing auth token (Ray ≥ 2.52 token
    auth, `InvalidAuthToken`/"Unauthenticated"), a refused connection, else the generic one."""
    text = f"{type(exc).__name__}: {exc}"
    low = text.lower()
    if "invalidauthtoken" in low or "auth token" in low or "unauthenticated" in low or "authentication" in low:
        return StudioError("stock.ray_auth", address=address or "auto")
    if isinstance(exc, ConnectionRefusedError) or "connection refused" in low or "failed to connect" in low \
            or "unable to connect" in low or "could not find any running ray instance" in low:
        return StudioError("stock.ray_refused", address=address or "auto")
    return StudioError("stock.ray_failed", address=address, err=text[:200])


class RayPool:
    """Actors holding loaded pipelines; reusable across batches (a long-lived app or a benchmark
    keeps one), replaced one by one when a worker dies."""

    def __init__(self, settings: Settings, chain: list[str], workers: int | None = None,
                 address: str | None = "auto") -> None:
        self.ray = connect(address)
        gpus = int(self.ray.cluster_resources().get("GPU", 0))
        self.size = workers or (gpus if gpus else 2)
        options = {"num_gpus": 1} if gpus else {"num_cpus": 1}
        self._actor_cls = self.ray.remote(max_restarts=0, **options)(StockWorker)
        self.settings = _settings_dict(settings)
        self.chain = list(chain)
        self.actors: list[Any] = [self._new() for _ in range(self.size)]

    def _new(self) -> Any:
        return self._actor_cls.remote(self.settings, self.chain)

    def warm(self) -> list[int]:
        """Wait until every actor is up (their pids)."""
        return list(self.ray.get([a.pid.remote() for a in self.actors]))

    def replace(self, actor: Any) -> None:
        if actor in self.actors:
            self.actors.remove(actor)
        self.actors.append(self._new())

    def close(self) -> None:
        for actor in self.actors:
            try:
                self.ray.kill(actor)
            except (ValueError, self.ray.exceptions.RayError) as exc:
                log.info("stock: could not stop actor: %s", exc)
        self.actors = []


def run_batch_ray(batch_id: str, services: Any, *, address: str | None = "auto", workers: int | None = None,
                  inflight: int = 2, progress: ProgressFn | None = None, cancel: CancelToken | None = None,
                  on_image: Callable[[Record], None] | None = None, max_losses: int | None = None,
                  wait_s: float = WAIT_S, pool: RayPool | None = None) -> W.Summary:
    """Run the batch's pending items on Ray actors; returns the same Summary as `run_batch`.

    `address=None` uses a Ray session the caller already started (tests: a local 2-CPU cluster).
    A `pool` built for the same engine chain is reused (and left running); otherwise one is built
    for this batch and stopped at the end.
    """
    progress = progress or no_progress
    ray = connect(address)

    with W.batch_store(services) as bs:
        batch = bs.get(batch_id)
        request = W.StockRequest.from_dict(batch.request)
        bs.sync_done(batch.id)
        items = bs.items(batch.id)
        total = len(items)
        queue: deque[BatchItem] = deque(i for i in items if i.state == PENDING)
        finished = total - len(queue)
        names = W.resolve_chain(request.chain, lambda: services.engines.choice("text2image").name)
        own_pool = pool is None or pool.chain != names
        if own_pool:
            pool = RayPool(services.settings, names, workers, address=None)
        req_dict = request.to_dict()
        seen = W._seen_hashes(services, batch.id)  # noqa: SLF001 - same module family
        # a rejected item (gate or near-duplicate) is replaced by a NEW prompt, as in-process
        refill = W.Refill(services, request, [i.prompt for i in items],
                          sum(1 for i in items if i.state == REJECTED),
                          live=[i.prompt for i in items if i.state != REJECTED])
        bs.set_status(batch.id, "running")
        progress(finished, total, "stock")

        running: dict[Any, tuple[Any, BatchItem]] = {}   # object ref -> (actor, item)
        notices: list[dict] = []
        losses = 0
        limit = max_losses if max_losses is not None else 3 * pool.size
        status = "done"

        def dispatch() -> None:
            for actor in list(pool.actors):
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
                    if ref not in running:      # already requeued with its dead actor
                        continue
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
                        if losses > limit:
                            status = "failed"
                            notices.append({"key": "stock.ray_workers_lost", "fields": {}})
                            break
                        pool.replace(actor)
                        if {"key": "stock.ray_worker_restarted", "fields": {}} not in notices:
                            notices.append({"key": "stock.ray_worker_restarted", "fields": {}})
                        continue
                    saved = W.commit_item(services, bs, batch, item, produced, seen, request)
                    for n in produced.notices:
                        if n not in notices:
                            notices.append(n)
                    finished += 1
                    if saved is None and not produced.reason.startswith("stock."):
                        new = refill.next_item(bs, batch.id, item.prompt)
                        if new is not None:
                            queue.append(new)
                            total += 1
                    progress(finished, total, "stock")
                    if saved is not None and on_image is not None:
                        on_image(saved)
                if status == "failed":
                    break
                dispatch()
            if refill.exhausted:
                notices.append(Notice("stock.refill_exhausted", {"tried": refill.used}).as_record())
        finally:
            if own_pool:
                pool.close()
            if notices:
                bs.add_notices(batch.id, notices)
            remaining = bs.counts(batch.id).get(PENDING, 0)
            if status == "done" and remaining:
                status = "failed"
            bs.set_status(batch.id, status)
    return W.summarize(services, batch.id)
