"""The stock batch on a local Ray cluster (2 CPU workers): end to end with the tiny engine, and a
worker killed with SIGKILL mid-batch (its items are redone elsewhere: no duplicates, no gaps)."""

from __future__ import annotations

import os
import signal

import pytest
import ray

from studio.config import REPO_ROOT, Settings
from studio.workflows import stock as W
from studio.workflows.stock_ray import run_batch_ray

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def ray_cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1"}})
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture
def services(settings: Settings):
    from studio.services import build_services

    sv = build_services(settings)
    yield sv
    sv.store.close()


def _items(services) -> list[int]:
    return [r.settings["batch_item"] for r in services.store.list(limit=1000, workflow="stock")]


def test_ray_batch_end_to_end_with_the_tiny_engine(ray_cluster, services, tmp_path) -> None:
    from studio.engines.tiny import tiny_models_dir

    tiny_models_dir(services.settings)   # written once here, read by both actors
    req = W.StockRequest(mode="random", industry="background", count=4, chain=("tiny", "lite"), width=64,
                         height=64, min_short=128, gate=False)
    batch = W.plan_batch(req, services)
    summary = run_batch_ray(batch.id, services, address=None, workers=2, wait_s=0.5)
    assert summary.status == "done" and summary.done == 4
    assert sorted(_items(services)) == [0, 1, 2, 3]
    recs = services.store.list(workflow="stock")
    assert {r.engine for r in recs} == {"tiny"}
    assert len({r.settings["gate"]["worker"] for r in recs}) == 2          # both actors worked
    assert all(r.settings["gate"]["worker"] != os.getpid() for r in recs)   # not in the driver
    files, csvs = W.export_files(services, batch.id)
    assert len(files) == 4 and csvs[f"adobe_{batch.short}.csv"].count(b"\r\n") == 5


def test_ray_batch_survives_a_killed_worker(ray_cluster, services) -> None:
    req = W.StockRequest(mode="keyword", keywords="marble, pattern, gradient, wood", count=12, chain=("lite",),
                         width=96, height=96, min_short=0)
    batch = W.plan_batch(req, services)
    killed: list[int] = []

    def on_image(rec) -> None:
        if not killed:
            pid = rec.settings["gate"]["worker"]
            killed.append(pid)
            os.kill(pid, signal.SIGKILL)

    summary = run_batch_ray(batch.id, services, address=None, workers=2, inflight=3, on_image=on_image, wait_s=0.5)
    assert killed
    items = _items(services)
    assert sorted(items) == sorted(set(items))                               # no duplicates
    with W.batch_store(services) as bs:
        every = [i.idx for i in bs.items(batch.id)]                          # plan + refills
    assert set(items) | {r["item"] for r in summary.rejected} == set(every)  # no gaps
    assert summary.status == "done" and summary.done == 12
    assert any(n.key == "stock.ray_worker_restarted" for n in summary.notices)


def test_ray_refills_rejected_items_with_new_prompts(ray_cluster, services, monkeypatch) -> None:
    """The driver's near-duplicate check rejects items 0 and 2: each is replaced by a NEW prompt and
    the batch still ends with the count asked for; with every item rejected it stops and says why."""
    from studio.render import stock_post as post

    real = post.near_duplicate
    verdicts: list[int] = []

    def picky(sig, seen):
        verdicts.append(len(seen))
        return {"by": "test"} if len(verdicts) in (1, 3) else real(sig, seen)

    monkeypatch.setattr(post, "near_duplicate", picky)
    req = W.StockRequest(mode="keyword", keywords="pattern, marble, linen", count=4, chain=("lite",), width=96,
                         height=96, min_short=0, seed=9)
    batch = W.plan_batch(req, services)
    summary = run_batch_ray(batch.id, services, address=None, workers=2, wait_s=0.2)
    assert summary.status == "done" and summary.done == 4 and summary.total == 4
    with W.batch_store(services) as bs:
        items = bs.items(batch.id)
    rejected = [i for i in items if i.state == "rejected"]
    assert len(rejected) >= 2 and len(items) == 4 + len(rejected)       # one new item per reject
    planned = {i.prompt["prompt_en"] for i in items if not i.prompt.get("refill")}
    new = [i for i in items if i.prompt.get("refill")]
    assert len(new) == len(rejected) and all(i.prompt["prompt_en"] not in planned for i in new)
    assert len({i.prompt["prompt_en"] for i in items}) == len(items)   # never a prompt twice

    monkeypatch.setattr(post, "near_duplicate", lambda sig, seen: {"by": "test"})
    batch = W.plan_batch(W.StockRequest(mode="keyword", keywords="pattern", count=1, chain=("lite",), width=96,
                                        height=96, min_short=0, seed=4), services)
    summary = run_batch_ray(batch.id, services, address=None, workers=2, wait_s=0.2)
    assert summary.done == 0 and "stock.refill_exhausted" in [n.key for n in summary.notices]
