"""Stock batch figures: pipeline reuse vs reload, and Ray dispatch vs in-process.

    python benchmarks/stock.py [--images 16] [--no-ray]

1. Reuse vs reload: 16 rounds on the tiny FLUX text-to-image engine, each one image on ONE kept
   pipeline and one image on a freshly built and loaded pipeline (the reference system's way),
   interleaved; medians. Target: reuse ≥ 5x faster per image.
2. Ray vs in-process: the same stock batch (tiny engine, no upscaling, no gate) run in-process and
   on a local 2-worker Ray cluster with a warmed actor pool (`RayPool`). Dispatch overhead per image =
   (2 workers x Ray wall time / images) / (in-process time per image) - 1. Target ≤ 20 %.

Torch runs with one intra-op thread in the driver, as in each 1-CPU Ray actor.

Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from studio.config import REPO_ROOT, Settings  # noqa: E402

SIZE = 64


def _settings(root: Path) -> Settings:
    (root / "models").mkdir(parents=True, exist_ok=True)
    return Settings(models_dir=root / "models", outputs_dir=root / "outputs", presets_dir=REPO_ROOT / "presets",
                    engine="lite", ollama_host="http://127.0.0.1:9")


def _weight_files(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*.safetensors")}


def reuse_vs_reload(settings: Settings, n: int) -> dict:
    """Per image: one pipeline kept loaded (reuse) vs a fresh engine that loads the weights again
    for every image and frees them after it (reload, what a batch without reuse does).

    Measured honestly on a shared box: reuse and reload images are INTERLEAVED (one of each per
    round, so load spikes from other processes hit both alike) and the figures are MEDIANS over the
    rounds. Each reload builds a new engine with its own model manager, so nothing is cached between
    images: the transformer comes from models/flux-schnell/ and T5, CLIP, the VAE and tokenizers
    from models/flux-fill/ (the app's layout; `model_index.json` lists every component as the real
    repo's does). The check `reload_reads_fresh_weights` confirms that every reload holds new
    component objects, read from those files (the files and their bytes are reported).

    What the ratio measures: (load + generate) / generate. On the tiny set the load is mostly
    constructing modules and reading config/tokenizer files (the weights are a few hundred KB), and
    the generate step is a 2-step 64x64 denoise, so the ratio says how much fixed per-load work the
    code does relative to a tiny forward pass; it is not the full-size figure (see the report)."""
    import statistics

    from studio.engines.base import Text2ImageJob
    from studio.engines.t2i import create_tiny
    from studio.engines.tiny import tiny_models_dir
    from studio.workflows.stock import call_text2image

    root = tiny_models_dir(settings)
    files = _weight_files(root)
    jobs = [Text2ImageJob(prompt=f"latte art {i}", width=SIZE, height=SIZE, seed=i, steps=2) for i in range(n)]
    warm = create_tiny(settings)
    call_text2image(warm, jobs[0])               # imports and first-call costs, paid once for both ways
    warm.close()
    t0 = time.perf_counter()
    kept = create_tiny(settings)
    kept.load()
    call_text2image(kept, jobs[0])
    kept_first = time.perf_counter() - t0       # the one load (and first image) a reusing batch pays
    reuse_t: list[float] = []
    reload_t: list[float] = []
    load_t: list[float] = []
    gen_t: list[float] = []
    previous: list = []                          # last round's components, kept alive so ids can't repeat
    fresh = True
    for job in jobs:
        t0 = time.perf_counter()
        call_text2image(kept, job)
        reuse_t.append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        engine = create_tiny(settings)
        engine.load()
        t1 = time.perf_counter()
        call_text2image(engine, job)
        t2 = time.perf_counter()
        pipe = engine._pipe  # noqa: SLF001 - the check below: fresh objects every time
        now = [pipe.transformer, pipe.text_encoder, pipe.text_encoder_2, pipe.vae, pipe.tokenizer_2]
        mine = [kept._pipe.transformer, kept._pipe.text_encoder_2, kept._pipe.vae]  # noqa: SLF001
        fresh = fresh and engine.manager is not kept.manager and \
            not any(a is b for a in now for b in previous + mine)
        previous = now
        engine.close()
        t3 = time.perf_counter()
        reload_t.append(t3 - t0)
        load_t.append(t1 - t0)
        gen_t.append(t2 - t1)
        del pipe, engine
    del previous
    kept.close()
    reuse = statistics.median(reuse_t)
    reload = statistics.median(reload_t)
    # a whole batch of n images: reuse pays one load and first image, then n-1 reuse images
    batch_reuse = (kept_first + (n - 1) * reuse) / n
    batch_500 = (kept_first + 499 * reuse) / 500
    return {"batch_of_n_reload_over_reuse": round(reload / batch_reuse, 2),
            "batch_of_500_reload_over_reuse": round(reload / batch_500, 2),
            "reuse_first_image_with_load_s": round(kept_first, 4),
            "reuse_s_per_image": round(reuse, 4), "reload_s_per_image": round(reload, 4),
            "reload_over_reuse": round(reload / reuse, 2),
            "reload_over_reuse_means": round(statistics.fmean(reload_t) / statistics.fmean(reuse_t), 2),
            "reload_load_s": round(statistics.median(load_t), 4),
            "reload_generate_s": round(statistics.median(gen_t), 4),
            "reload_reads_fresh_weights": bool(fresh), "rounds": n,
            "tiny_weight_files": len(files), "tiny_weight_bytes": sum(files.values())}


def _made(sv, W, batch_id: str) -> int:
    """Items the batch generated: the plan plus any refills (a rejected near-duplicate is replaced)."""
    with W.batch_store(sv) as bs:
        return len(bs.items(batch_id))


def ray_vs_inprocess(root: Path, n: int) -> dict:
    import ray

    from studio.services import build_services
    from studio.workflows import stock as W
    from studio.workflows.stock_ray import RayPool, run_batch_ray

    req = dict(mode="random", industry="background", count=n, chain=("tiny",), width=SIZE, height=SIZE,
               min_short=0, gate=False, steps=2)
    sv = build_services(_settings(root / "inproc"))
    warm = W.plan_batch(W.StockRequest(**(req | {"count": 1, "seed": 99})), sv)
    W.run_batch(warm.id, sv)                    # pipeline loaded before timing, like warmed actors
    batch = W.plan_batch(W.StockRequest(**req), sv)
    t0 = time.perf_counter()
    W.run_batch(batch.id, sv)
    made_in = _made(sv, W, batch.id)
    inproc = (time.perf_counter() - t0) / made_in
    sv.store.close()

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1"}})
    try:
        sv = build_services(_settings(root / "ray"))
        from studio.engines.tiny import tiny_models_dir

        tiny_models_dir(sv.settings)
        t0 = time.perf_counter()
        pool = RayPool(sv.settings, ["tiny", "lite"], workers=2, address=None)
        warm = W.plan_batch(W.StockRequest(**(req | {"count": 4, "seed": 98})), sv)
        run_batch_ray(warm.id, sv, address=None, wait_s=0.05, pool=pool)   # actors up, pipelines loaded
        warm_s = time.perf_counter() - t0
        batch = W.plan_batch(W.StockRequest(**req), sv)
        t0 = time.perf_counter()
        run_batch_ray(batch.id, sv, address=None, wait_s=0.05, pool=pool)
        wall = time.perf_counter() - t0
        made_ray = _made(sv, W, batch.id)
        pool.close()
        sv.store.close()
    finally:
        ray.shutdown()
    # per image GENERATED (refills included: each costs a generation like any other item)
    per_worker_image = 2 * wall / made_ray
    return {"inprocess_items": made_in, "ray_items": made_ray,
            "inprocess_s_per_image": round(inproc, 4), "ray_wall_s_per_image": round(wall / made_ray, 4),
            "ray_worker_s_per_image": round(per_worker_image, 4),
            "ray_dispatch_overhead": round(per_worker_image / inproc - 1, 3),
            "ray_speedup": round(inproc / (wall / made_ray), 2),
            "ray_pool_start_and_warm_batch_s": round(warm_s, 1)}


def lite_at_2500(root: Path, n: int) -> dict:
    """Lite stock images drawn natively at 2500 px (short side), gate + tiling test + metadata + JPEG
    encode + history row included: seconds per image through `run_batch`."""
    from studio.services import build_services
    from studio.workflows import stock as W

    sv = build_services(_settings(root / "lite2500"))
    req = W.StockRequest(mode="keyword", keywords="pattern, marble, watercolor, bokeh, gradient, linen",
                         count=n, chain=("lite",), width=1024, height=1024, min_short=2500, seed=3)
    batch = W.plan_batch(req, sv)
    t0 = time.perf_counter()
    summary = W.run_batch(batch.id, sv)
    made = _made(sv, W, batch.id)                # refills included: each is drawn like any other
    per = (time.perf_counter() - t0) / max(1, made)
    sizes = {tuple(r.settings["size"]) for r in W._batch_records(sv, batch.id)}  # noqa: SLF001
    sv.store.close()
    return {"lite_2500_s_per_image": round(per, 2), "lite_2500_done": summary.done, "lite_2500_drawn": made,
            "lite_2500_sizes": sorted(list(s) for s in sizes)}


def contact_sheets(root: Path, out_dir: Path, seed: int = 1) -> dict:
    """The two 30-image lite batches a reviewer looks at (keyword "카페, 라떼아트, 수채화, 보케, 패턴,
    대리석, 질감" and random background), each as a numbered contact sheet with its titles, plus a
    text file per sheet: number, batch item, kind, tiles, English and Korean title."""
    from PIL import Image, ImageDraw

    from studio.services import build_services
    from studio.workflows import stock as W

    out_dir.mkdir(parents=True, exist_ok=True)
    reqs = {"keyword": dict(mode="keyword", keywords="카페, 라떼아트, 수채화, 보케, 패턴, 대리석, 질감"),
            "random": dict(mode="random", industry="background")}
    out: dict = {}
    for name, extra in reqs.items():
        sv = build_services(_settings(root / f"sheet-{name}"))
        req = W.StockRequest(count=30, chain=("lite",), width=384, height=384, min_short=0, seed=seed, **extra)
        batch = W.plan_batch(req, sv)
        summary = W.run_batch(batch.id, sv)
        recs = W._batch_records(sv, batch.id)  # noqa: SLF001
        side = 200
        sheet = Image.new("RGB", (6 * side, 5 * (side + 20)), "white")
        draw = ImageDraw.Draw(sheet)
        lines = []
        for k, rec in enumerate(recs):
            x, y = (k % 6) * side, (k // 6) * (side + 20)
            with Image.open(rec.path) as im:
                sheet.paste(im.convert("RGB").resize((side, side)), (x, y))
            meta = rec.settings["meta"]
            draw.text((x + 2, y + side + 3), f"{k} {meta['title_en']}"[:34], fill="black")
            drawn = rec.settings.get("drawn") or {}
            lines.append(f"{k}\titem {rec.settings['batch_item']}\t{drawn.get('family')}:{drawn.get('motif') or '-'}"
                         f"\ttiles={rec.settings['tiles']}\t{meta['title_en']}\t{meta['title_ko']}")
        sheet.save(out_dir / f"stock-{name}-sheet.png")
        (out_dir / f"stock-{name}-sheet.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        out[f"sheet_{name}_done"] = summary.done
        out[f"sheet_{name}_refilled"] = len(summary.rejected)
        sv.store.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--lite-images", type=int, default=4, help="lite images at 2500 px (0 = skip)")
    ap.add_argument("--sheets", type=Path, default=None,
                    help="only draw the two 30-image lite contact sheets into this folder")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import torch

    # one intra-op thread, as Ray gives each 1-CPU actor (OMP_NUM_THREADS=1): tiny work on a shared
    # 2-core box is ~10x slower with oversubscribed threads, which would hide what is measured here
    torch.set_num_threads(1)
    root = Path(tempfile.mkdtemp(prefix="stock-bench-"))
    if args.sheets is not None:
        try:
            print(json.dumps(contact_sheets(root, args.sheets)))
        finally:
            shutil.rmtree(root, ignore_errors=True)
        return 0
    try:
        out: dict = {"images": args.images, "size": SIZE}
        out.update(reuse_vs_reload(_settings(root / "reuse"), args.images))
        # the target is per image with the pipeline loaded once (median of interleaved rounds);
        # batch_of_n_* also charges the reusing batch its one load, spread over n images
        out["target_reload_over_reuse"] = 5.0
        ok = out["reload_over_reuse"] >= 5.0
        if not args.no_ray:
            out.update(ray_vs_inprocess(root, args.images))
            out["target_ray_dispatch_overhead"] = 0.2
            ok = ok and out["ray_dispatch_overhead"] <= 0.2
        if args.lite_images:
            out.update(lite_at_2500(root, args.lite_images))
        out["ok"] = bool(ok)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
