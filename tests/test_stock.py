"""Stock batches: prompt modes (LLM through the fake Ollama server), dedup, the fallback chain,
upscaled sizes, the quality gate, CSV columns, resume after `kill -9`, migration 3, lite assets."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from fake_ollama import FakeOllama
from studio.config import REPO_ROOT, Settings
from studio.engines.base import EngineResult, Text2ImageJob
from studio.engines.lite_t2i import LiteT2IEngine, plan_asset, render_asset
from studio.render import stock_post as post
from studio.store import db as dbmod
from studio.store.batches import BatchStore
from studio.text.llm import LLMClient
from studio.text.stock_meta import PLATFORMS, StockMeta, build_meta, write_csv
from studio.text.stock_prompts import (StockPrompt, build_prompts, dedupe, load_templates, norm_key,
                                       salvage_json)
from studio.workflows import stock as W

MODEL = "qwen2.5:7b-instruct"


@pytest.fixture
def services(settings: Settings):
    from studio.services import build_services

    sv = build_services(settings)
    yield sv
    sv.store.close()


def _req(**kw) -> W.StockRequest:
    base = dict(mode="keyword", keywords="카페, 라떼, pattern", count=4, chain=("lite",), width=128, height=128,
                min_short=0)
    base.update(kw)
    return W.StockRequest(**base)


# --- prompt modes ---------------------------------------------------------------------------
def test_random_mode_uses_the_industry_templates_and_is_distinct() -> None:
    plan = build_prompts("random", 60, seed=3, industry="bakery")
    tpl = load_templates().industry("bakery")
    subjects = {s[0] for s in tpl.subjects}
    assert len(plan.prompts) == 60 and plan.mode_used == "random"
    assert len({norm_key(p.prompt_en) for p in plan.prompts}) == 60
    assert all(any(p.prompt_en.startswith(s) for s in subjects) for p in plan.prompts)
    assert all(p.description_ko and any("\uac00" <= c <= "\ud7a3" for c in p.description_ko) for p in plan.prompts)
    assert len({p.prompt_en.split(",")[0] for p in plan.prompts}) >= 4  # subjects vary
    # deterministic per seed, different across seeds
    assert [p.prompt_en for p in build_prompts("random", 5, seed=3, industry="bakery").prompts] == \
        [p.prompt_en for p in plan.prompts[:5]]
    assert build_prompts("random", 5, seed=4, industry="bakery").prompts[0].prompt_en != plan.prompts[0].prompt_en


def test_keyword_mode_translates_korean_and_reports_unknown_words() -> None:
    plan = build_prompts("keyword", 20, seed=1, keywords="카페, 라떼아트, marble, 꾸덕꾸덕")
    assert len(plan.prompts) == 20
    joined = " ".join(p.prompt_en for p in plan.prompts)
    assert "cafe" in joined and "latte" in joined and "marble" in joined
    assert not any("\uac00" <= c <= "\ud7a3" for c in joined)          # English prompts only
    assert plan.prompts[0].tags_ko == ["카페", "라떼아트", "꾸덕꾸덕"]     # unknown words kept
    assert [n.key for n in plan.notices] == ["stock.unknown_words"]
    assert "꾸덕꾸덕" in plan.notices[0].fields["words"]


def test_keyword_mode_needs_keywords() -> None:
    from studio.errors import InputError

    with pytest.raises(InputError) as err:
        build_prompts("keyword", 3, keywords=" , ")
    assert err.value.key == "stock.no_keywords"


def test_dedupe_drops_case_space_and_punctuation_variants() -> None:
    ps = [StockPrompt(t, "", "") for t in ("A latte, soft light", "a  latte soft light!", "A mocha", "a latte; SOFT light")]
    assert [p.prompt_en for p in dedupe(ps)] == ["A latte, soft light", "A mocha"]


def test_keyword_mode_with_one_keyword_still_fills_a_large_batch_without_repeats() -> None:
    plan = build_prompts("keyword", 300, keywords="coffee")
    assert len(plan.prompts) == 300
    assert len({norm_key(p.prompt_en) for p in plan.prompts}) == 300


def _llm_items(n: int, start: int = 0) -> str:
    return json.dumps({"items": [{"korean_description": f"나무 테이블 위 라떼 {i}번",
                                  "english_prompt": f"latte art number {i} on a wooden table, soft window light",
                                  "tags": ["latte", "coffee", "cafe", "wood", "morning", f"t{i}"]}
                                 for i in range(start, start + n)]}, ensure_ascii=False)


def test_llm_mode_through_the_fake_ollama_server() -> None:
    with FakeOllama(models=[MODEL]) as fake:
        fake.replies.append(_llm_items(5))
        plan = build_prompts("llm", 5, keywords="라떼", industry="cafe", llm=LLMClient(fake.url, MODEL))
        sent = fake.chat_requests()[0]
    assert plan.mode_used == "llm" and not plan.notices
    assert [p.source for p in plan.prompts] == ["llm"] * 5
    assert plan.prompts[2].prompt_en.startswith("latte art number 2")
    assert plan.prompts[2].description_ko == "나무 테이블 위 라떼 2번"
    assert 5 <= len(plan.prompts[2].tags_en) <= 7
    assert "korean_description" in sent["messages"][0]["content"] and "라떼" in sent["messages"][1]["content"]


def test_llm_broken_json_is_salvaged() -> None:
    broken = "Here you go!\n```json\n" + _llm_items(3)[:-2] + ",],}\n```"   # trailing commas, fenced
    with FakeOllama(models=[MODEL]) as fake:
        fake.replies.append(broken)
        plan = build_prompts("llm", 3, keywords="라떼", industry="cafe", llm=LLMClient(fake.url, MODEL))
    assert plan.mode_used == "llm" and [p.source for p in plan.prompts] == ["llm"] * 3
    # fields picked out of text that is no JSON at all
    items = salvage_json('{"korean_description": "빵", "english_prompt": "fresh bread loaves, warm light", '
                         '"tags": ["bread", "bakery"] oops {"english_prompt": "croissant on linen"')
    assert [i["english_prompt"] for i in items] == ["fresh bread loaves, warm light", "croissant on linen"]
    assert items[0]["tags"] == ["bread", "bakery"]


def test_llm_garbage_falls_back_to_keyword_mode_and_tells_the_owner() -> None:
    with FakeOllama(models=[MODEL]) as fake:
        fake.replies.extend(["I cannot do that.", "still not json"])
        plan = build_prompts("llm", 4, keywords="카페, 라떼", industry="cafe", llm=LLMClient(fake.url, MODEL))
    assert len(plan.prompts) == 4 and plan.mode_used == "keyword"
    assert {p.source for p in plan.prompts} == {"keyword"}
    assert [n.key for n in plan.notices] == ["stock.llm_fallback"]
    # a server that is down: same fallback
    plan = build_prompts("llm", 2, keywords="카페", llm=LLMClient("http://127.0.0.1:9", MODEL, connect_timeout=0.5))
    assert plan.mode_used == "keyword" and plan.notices[0].key == "stock.llm_fallback"


def test_llm_partial_answer_is_topped_up_without_duplicates() -> None:
    with FakeOllama(models=[MODEL]) as fake:
        fake.replies.append(_llm_items(2) )
        fake.replies.append(_llm_items(2))          # the same two again: nothing new -> fallback
        plan = build_prompts("llm", 5, keywords="라떼", industry="cafe", llm=LLMClient(fake.url, MODEL))
    assert len(plan.prompts) == 5 and len({norm_key(p.prompt_en) for p in plan.prompts}) == 5
    assert [p.source for p in plan.prompts][:2] == ["llm", "llm"] and plan.mode_used == "llm+keyword"


# --- lite assets ------------------------------------------------------------------------------
def test_lite_t2i_is_steered_by_the_prompt_and_deterministic() -> None:
    assert plan_asset("seamless polka dot pattern, pastel", 0).family == "pattern"
    assert plan_asset("seamless polka dot pattern, pastel", 0).motif == "dots"
    assert plan_asset("white marble texture", 5).family == "marble"
    assert plan_asset("coffee beans background", 1).palette == "coffee"
    engine = LiteT2IEngine()
    job = Text2ImageJob(prompt="terrazzo texture, pastel", width=200, height=120, seed=4, num_images=2)
    res = engine.text2image(job)
    assert isinstance(res, EngineResult) and [im.size for im in res.images] == [(200, 120)] * 2
    again = engine.text2image(job)
    assert np.array_equal(np.asarray(res.images[0]), np.asarray(again.images[0]))
    assert not np.array_equal(np.asarray(res.images[0]), np.asarray(res.images[1]))  # seed + i differs


@pytest.mark.parametrize("prompt", ["pastel mesh gradient background", "white marble texture", "watercolor wash",
                                    "seamless stripes pattern", "seamless hexagon pattern", "terrazzo texture",
                                    "concrete wall texture", "oak wood texture", "linen fabric texture",
                                    "bokeh lights night"])
def test_lite_assets_pass_the_quality_gate(prompt: str) -> None:
    img, _plan = render_asset(prompt, 384, 384, 11)
    res = post.quality_gate(img)
    assert res.ok, (prompt, res.reason, res.metrics)


def test_lite_textures_tile_seamlessly() -> None:
    for prompt in ("seamless stripes pattern coffee", "concrete wall texture", "linen fabric texture"):
        img, plan = render_asset(prompt, 256, 256, 2)
        assert plan.seamless
        a = np.asarray(img, np.float32)
        seam = np.abs(a[:, 0] - a[:, -1]).mean()
        inner = np.abs(a[:, 1] - a[:, 0]).mean()
        assert seam < 3 * inner + 2.0, (prompt, seam, inner)


# --- post-processing ------------------------------------------------------------------------------
@pytest.mark.parametrize(("size", "expected_short"), [((1024, 1024), 2500), ((1024, 768), 2500), ((768, 1344), 2500),
                                                      ((3000, 2600), 2600)])
def test_upscale_makes_the_short_side_at_least_2500(size, expected_short) -> None:
    img = Image.new("RGB", size, (120, 80, 40))
    out, method = post.upscale(img, 2500)
    assert min(out.size) == expected_short
    assert abs(out.size[0] / out.size[1] - size[0] / size[1]) < 0.01
    assert method == ("none" if min(size) >= 2500 else "lanczos")


def test_encode_jpeg_and_png_quality() -> None:
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    hi, suf = post.encode(img, "jpeg", 95)
    lo, _ = post.encode(img, "jpeg", 40)
    png, psuf = post.encode(img, "png", 9)
    assert suf == ".jpg" and psuf == ".png" and len(lo) < len(hi)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png))), np.asarray(img))  # PNG is lossless


def test_quality_gate_rejects_crafted_bad_images() -> None:
    from skimage import data as skdata

    good = Image.fromarray(skdata.astronaut())
    assert post.quality_gate(good).ok
    black = Image.new("RGB", (256, 256), (3, 3, 3))
    assert post.quality_gate(black).reason == "black"
    nan = np.full((64, 64, 3), np.nan, np.float32)
    assert post.quality_gate(nan).reason == "nan"
    flat = np.full((256, 256, 3), 128, np.uint8)
    flat += np.random.default_rng(0).integers(0, 2, flat.shape, dtype=np.uint8)   # ±1 of noise
    assert post.quality_gate(Image.fromarray(flat)).reason == "uniform"
    blurred = Image.fromarray(cv2.GaussianBlur(skdata.astronaut(), (0, 0), 9))
    assert post.quality_gate(blurred).reason == "blurred"
    first = post.quality_gate(good)
    near = Image.fromarray(np.clip(skdata.astronaut().astype(int) + 6, 0, 255).astype(np.uint8)).resize((500, 500))
    dup = post.quality_gate(near, seen=[first.phash])
    assert dup.reason == "duplicate"
    other = post.quality_gate(Image.fromarray(skdata.coffee()), seen=[first.phash])
    assert other.ok


# --- metadata and CSV ---------------------------------------------------------------------------
def test_csv_columns_with_korean_text_commas_and_quotes() -> None:
    meta = StockMeta(title_en='Latte, "art" on wood, morning', title_ko='라떼, "아트" 한 잔',
                     description_ko='나무 테이블 위 "라떼", 부드러운 빛', keywords_en=[f"kw{i}" for i in range(60)],
                     keywords_ko=["카페", "라떼,아트", '"따옴표"'], category=4)
    data = write_csv("adobe", [("stock_abcd1234_0001.jpg", meta)])
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    assert rows[0] == ["Filename", "Title", "Keywords", "Category", "Releases"]
    fname, title, keywords, category, releases = rows[1]
    assert fname == "stock_abcd1234_0001.jpg" and len(fname) <= 30
    assert "," not in title and len(title) <= 70 and "Latte" in title
    assert len(keywords.split(", ")) == 49 and category == "4" and releases == ""
    kr = write_csv("crowdpic", [("stock_abcd1234_0001.jpg", meta)])
    assert kr.startswith(b"\xef\xbb\xbf")                        # BOM: Excel opens the Korean right
    krows = list(csv.reader(io.StringIO(kr.decode("utf-8-sig"))))
    assert krows[0] == ["파일명", "제목", "설명", "키워드"]
    assert krows[1][1] == '라떼, "아트" 한 잔'                    # commas and quotes survive the round trip
    assert krows[1][2] == '나무 테이블 위 "라떼", 부드러운 빛'
    assert krows[1][3].startswith("카페, 라떼 아트")


def test_build_meta_respects_platform_limits() -> None:
    plan = build_prompts("random", 3, seed=2, industry="cafe")
    meta = build_meta(plan.prompts[0].to_dict(), "cafe")
    assert meta.category == 4 and meta.title_en and "," not in meta.title_en and len(meta.title_en) <= 70
    assert 5 <= len(meta.keywords_en) <= 49 and meta.keywords_ko and meta.description_ko
    assert len({k.lower() for k in meta.keywords_en}) == len(meta.keywords_en)
    assert PLATFORMS["adobe"].keywords_max == 49


# --- batches --------------------------------------------------------------------------------------
def test_batch_end_to_end_with_history_csv_and_zip(services, tmp_path: Path) -> None:
    streamed = []
    batch = W.plan_batch(_req(count=5, min_short=300), services)
    summary = W.run_batch(batch.id, services, on_image=streamed.append)
    assert summary.status == "done" and summary.done == 5          # a near-duplicate is refilled
    got = [r.settings["batch_item"] for r in streamed]
    assert got == sorted(set(got)) and len(got) == 5
    assert set(range(5)) - set(got) == {r["item"] for r in summary.rejected if r["item"] < 5}
    recs = services.store.list(workflow="stock")
    assert len(recs) == 5 and {r.engine for r in recs} == {"lite"}
    for r in recs:
        with Image.open(r.path) as im:
            assert min(im.size) == 300 and im.format == "JPEG"
        assert r.settings["meta"]["keywords_en"] and r.settings["engine_used"] == "lite"
    z = W.export_zip(services, batch.id, tmp_path / "out.zip")
    with zipfile.ZipFile(z) as zf:
        names = zf.namelist()
        adobe = zf.read(f"adobe_{batch.short}.csv").decode("utf-8")
    assert sum(n.endswith(".jpg") for n in names) == 5 and f"crowdpic_{batch.short}.csv" in names
    rows = list(csv.reader(io.StringIO(adobe)))
    assert len(rows) == 6 and {r[0] for r in rows[1:]} == {n for n in names if n.endswith(".jpg")}


class _Broken:
    name = "broken"

    def __init__(self) -> None:
        self.calls = 0

    def text2image(self, job, progress=None, cancel=None):
        self.calls += 1
        raise RuntimeError("CUDA error: device-side assert")


def test_fallback_chain_passes_work_on_and_records_the_engine(services) -> None:
    broken = _Broken()
    real_get = services.engines.get

    def get(task, name=None):
        return broken if name == "flux-dev" else real_get(task, name)

    services.engines.get = get  # the provider is a collaborator the test swaps, like a fake LLM
    # flux-schnell fails to load (no weights here), flux-dev errors at run time, lite takes over
    batch = W.plan_batch(_req(count=3, chain=("flux-schnell", "flux-dev", "lite")), services)
    summary = W.run_batch(batch.id, services)
    assert summary.done == 3 and summary.status == "done"
    assert [n.key for n in summary.notices if n.key.startswith("stock.engine")] == ["stock.engine_failed"] * 2
    assert [n.fields["engine"] for n in summary.notices if n.key == "stock.engine_failed"] == ["flux-schnell", "flux-dev"]
    assert {r.engine for r in services.store.list(workflow="stock")} == {"lite"}
    assert broken.calls == 1          # a failed engine is not retried for every image


def test_fallback_chain_with_the_tiny_engine_first(services) -> None:
    batch = W.plan_batch(_req(count=2, chain=("tiny", "lite"), width=64, height=64), services)
    summary = W.run_batch(batch.id, services)
    engines = [r.engine for r in services.store.list(workflow="stock")]
    assert summary.done + len(summary.rejected) == 2
    assert set(engines) <= {"tiny"} and engines   # the tiny FLUX pipeline made them
    assert services.engines.peek("text2image", "tiny") is not None   # loaded once, still resident


def test_cancel_then_resume_finishes_without_gaps(services) -> None:
    from studio.runtime.jobs import CancelToken

    token = CancelToken()
    batch = W.plan_batch(_req(count=6), services)

    saved: list[int] = []

    def on_image(rec) -> None:
        saved.append(rec.settings["batch_item"])
        if len(saved) == 3:
            token.cancel()

    first = W.run_batch(batch.id, services, cancel=token, on_image=on_image)
    assert first.status == "cancelled" and first.done == 3
    second = W.run_batch(batch.id, services)
    assert second.status == "done" and second.done == 6
    items = sorted(r.settings["batch_item"] for r in services.store.list(workflow="stock"))
    with W.batch_store(services) as bs:
        every = [i.idx for i in bs.items(batch.id)]          # the plan and any refills
    assert items == sorted(set(items)) and len(items) == 6   # no duplicates
    assert set(items) | {r["item"] for r in second.rejected} == set(every)   # no gaps


_CHILD = r"""
import sys, time
from pathlib import Path
from studio.config import Settings, REPO_ROOT
from studio.engines import lite_t2i
from studio.services import build_services
from studio.workflows import stock as W

orig = lite_t2i.LiteT2IEngine.text2image
def slow(self, job, progress=None, cancel=None):
    time.sleep(0.15)
    return orig(self, job, progress, cancel)
lite_t2i.LiteT2IEngine.text2image = slow
root = Path(sys.argv[1])
s = Settings(models_dir=root / "models", outputs_dir=root / "outputs", presets_dir=REPO_ROOT / "presets",
             engine="lite", ollama_host="http://127.0.0.1:9")
sv = build_services(s)
W.run_batch(sys.argv[2], sv)
"""


def test_kill_9_in_the_middle_then_resume_no_duplicates_no_gaps(services, settings: Settings, tmp_path: Path) -> None:
    count = 30
    batch = W.plan_batch(_req(count=count, keywords="marble, pattern, gradient, wood"), services)
    root = settings.outputs_dir.parent
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(root), batch.id], env=env, cwd=str(REPO_ROOT))
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if services.store.count("stock") >= 4:
                break
            if child.poll() is not None:
                pytest.fail(f"child exited early with {child.returncode}")
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    made = services.store.count("stock")
    assert 4 <= made < count, made                      # killed in the middle
    summary = W.run_batch(batch.id, services)
    assert summary.status == "done"
    items = [r.settings["batch_item"] for r in services.store.list(limit=1000, workflow="stock")]
    assert sorted(items) == sorted(set(items))                       # no duplicates
    done = set(items) | {r["item"] for r in summary.rejected}
    with BatchStore(services.store.db_path) as bs:
        all_items = bs.items(batch.id)
    states = {i.state for i in all_items}
    assert done == {i.idx for i in all_items} and set(range(count)) <= done   # no gaps
    assert states <= {"done", "rejected"}
    assert len(items) == count                                    # rejected items were replaced


# --- migration 3 ------------------------------------------------------------------------------
def test_migration_3_adds_batch_tables_and_keeps_history(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    conn = dbmod.connect(path)
    dbmod.migrate(conn, target=2)
    conn.execute("INSERT INTO generations (created_at, workflow, engine, path) VALUES ('t', 'person', 'lite', 'a.png')")
    assert dbmod.migrate(conn, target=3) == 3 == dbmod.LATEST
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"stock_batches", "stock_items"} <= tables
    assert conn.execute("SELECT COUNT(*) FROM generations").fetchone()[0] == 1
    conn.execute("INSERT INTO stock_batches (id, created_at) VALUES ('b', 't')")
    conn.execute("INSERT INTO stock_items (batch_id, idx, prompt, seed) VALUES ('b', 0, '{}', 1)")
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO stock_items (batch_id, idx, prompt, seed) VALUES ('b', 0, '{}', 2)")
    conn.close()


def test_plan_is_committed_before_generation(services) -> None:
    batch = W.plan_batch(_req(count=7), services)
    with BatchStore(services.store.db_path) as bs:
        items = bs.items(batch.id)
    assert [i.idx for i in items] == list(range(7)) and {i.state for i in items} == {"pending"}
    assert len({norm_key(i.prompt["prompt_en"]) for i in items}) == 7
    assert services.store.count("stock") == 0


def test_model_upscaler_through_spandrel_with_a_tiny_real_esrgan_compact(settings: Settings) -> None:
    import torch

    from studio.runtime.compat import ensure_torchvision

    ensure_torchvision()
    from spandrel.architectures.Compact import Compact

    torch.manual_seed(0)
    net = Compact(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=2)   # real arch, tiny size
    folder = settings.models_dir / post.UPSCALER_DIR
    folder.mkdir(parents=True)
    torch.save(net.state_dict(), folder / "tiny_compact_x2.pth")
    model = post.load_upscaler(settings.models_dir)
    assert isinstance(model, post.ModelUpscaler) and model.scale == 2
    img = Image.fromarray(np.random.default_rng(1).integers(0, 255, (100, 150, 3), dtype=np.uint8))
    assert model(img).size == (300, 200)                      # the network itself doubles the size
    out, method = post.upscale(img, 500, model)
    assert method == "model+lanczos" and min(out.size) == 500 and out.size == (750, 500)
    lanczos, m2 = post.upscale(img, 500)
    assert m2 == "lanczos" and not np.array_equal(np.asarray(out), np.asarray(lanczos))
    # no weights: Lanczos only
    assert post.load_upscaler(settings.models_dir / "nothing-here") is None


def test_png_batch_keeps_metadata_chunks_and_size(services) -> None:
    batch = W.plan_batch(_req(count=1, fmt="png", quality=9, min_short=200), services)
    assert W.run_batch(batch.id, services).done == 1
    rec = services.store.list(workflow="stock")[0]
    assert rec.path.suffix == ".png"
    with Image.open(rec.path) as im:
        assert im.format == "PNG" and min(im.size) == 200
        assert "parameters" in im.text and "fitad" in im.text
