"""benchmarks/gpu.py (run in-process): the CPU check with the tiny set (every method gives a figure or a skip reason,
the first-block cache really serves calls through our engine, rows land in RESULTS.md), the full-size
parts it would build on a GPU (built on the meta device: the published sizes), and its FLOP count."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import shutil
import sys
from pathlib import Path

import pytest

from studio.config import REPO_ROOT

SCRIPT = REPO_ROOT / "benchmarks" / "gpu.py"
RESULTS = REPO_ROOT / "benchmarks" / "RESULTS.md"


def _load_module():
    spec = importlib.util.spec_from_file_location("bench_gpu", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_gpu"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench():
    return _load_module()


@pytest.fixture(scope="module")
def tiny_run(bench, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The script's own main() in this process (the imports are shared with the other tests)."""
    tmp = tmp_path_factory.mktemp("gpu_bench")
    results = tmp / "RESULTS.md"
    shutil.copy(RESULTS, results)
    out = tmp / "gpu.json"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = bench.main(["--tiny", "--size", "64", "--steps", "3", "--runs", "1", "--fbc-threshold", "100",
                         "--json-out", str(out), "--record", "--results", str(results)])
    stdout = buf.getvalue()
    assert rc == 0, stdout[-3000:]
    lines = [ln for ln in stdout.splitlines() if ln.strip()]
    return {"stdout": stdout, "last": lines[-1], "json_file": out, "results": results}


def test_tiny_run_ends_with_one_json_line(tiny_run) -> None:
    summary = json.loads(tiny_run["last"])
    assert summary == json.loads(tiny_run["json_file"].read_text(encoding="utf-8"))
    assert summary["bench"] == "gpu" and summary["mode"] == "tiny" and summary["device"] == "CPU"
    assert summary["size"] == 64 and summary["steps"] == 3
    # progress lines came before it
    assert "[gpu-bench" in tiny_run["stdout"] and "plain: warm-up" in tiny_run["stdout"]
    for key in ("methods", "targets", "figures", "checks", "ok", "flops_per_step_tflop"):
        assert key in summary
    assert summary["targets"]["compile_s"] == 4.5 and summary["targets"]["fbc_s"] == 2.5
    assert summary["targets"]["card16_vs_plain"] == 3.0
    # the targets are GPU ones: a CPU run does not claim them
    assert all(v is None for v in summary["checks"].values())
    assert summary["ok"] is True


def test_every_method_has_a_figure_or_a_reason(bench, tiny_run) -> None:
    methods = json.loads(tiny_run["last"])["methods"]
    assert set(methods) == set(bench.METHODS)
    detail = methods["detail_pass"]   # issue 24: a pass over three regions, not one engine call
    assert detail["status"] == "ok", detail
    assert detail["extra"]["regions"] == 3 == detail["extra"]["engine_calls"] and detail["extra"]["kept_identical"]
    assert detail["extra"]["engine_size"] == [64, 64] and detail["s_image"] >= detail["extra"]["engine_s"] > 0
    for name, m in methods.items():
        assert m["status"] in ("ok", "skipped"), (name, m)
        if name == "detail_pass":
            continue
        if m["status"] == "ok":
            assert m["s_image"] > 0 and m["runs"] >= 1 and m["s_step"] == pytest.approx(m["s_image"] / 3, rel=0.01)
            assert m["denoise_s_step"] > 0 and m["tflops"] > 0
            assert m["extra"]["image_std"] > 0  # the regenerated area is not a flat (NaN) picture
        else:
            assert isinstance(m["reason"], str) and len(m["reason"]) > 10, name
    # what can run on a CPU did run
    for name in ("plain", "no_controlnet", "fbc", "compile", "fp8_layerwise"):
        assert methods[name]["status"] == "ok", (name, methods[name])
    assert methods["plain"]["controlnet"] is True and methods["no_controlnet"]["controlnet"] is False
    # the ControlNet ran inside its window on the pose job, never without a control image
    assert 1 <= methods["plain"]["extra"]["controlnet_steps"] <= 3
    assert methods["no_controlnet"]["extra"]["controlnet_steps"] == 0
    assert methods["fp8_layerwise"]["dtype"].startswith("float8_e4m3fn")
    assert methods["compile"]["extra"]["backend"] == "eager"


def test_first_block_cache_serves_calls_through_our_engine(tiny_run) -> None:
    fbc = json.loads(tiny_run["last"])["methods"]["fbc"]["extra"]
    # warm-up + 1 run, 3 steps each; a huge threshold caches every step after the first of an image
    assert fbc["transformer_calls"] == 6
    assert fbc["cached_calls"] == 4 and fbc["full_calls"] == 2


def test_cards_report_the_plan_choose_plan_picks(tiny_run) -> None:
    from studio.runtime.memory import choose_plan

    methods = json.loads(tiny_run["last"])["methods"]
    for gb in (12, 16, 24):
        card = methods[f"card_{gb}gb"]
        assert card["status"] == "skipped" and "CUDA" in card["reason"]
        assert card["extra"]["plan"] == choose_plan(float(gb), cuda=True).name
        assert card["extra"]["card_gb"] == gb


def test_rows_recorded_in_the_cpu_section(tiny_run) -> None:
    before = RESULTS.read_text(encoding="utf-8")
    after = tiny_run["results"].read_text(encoding="utf-8")
    gpu_head, _, rest = after.partition("<!-- gpu-rows-end -->")
    assert gpu_head == before.partition("<!-- gpu-rows-end -->")[0]  # GPU section untouched
    cpu_section = rest.partition("<!-- cpu-rows-end -->")[0]
    new_rows = [ln for ln in cpu_section.splitlines() if "NOT a GPU figure" in ln and ln not in before]
    assert len(new_rows) == 6
    assert any("| compile |" in ln for ln in new_rows) and any("| fbc |" in ln for ln in new_rows)
    assert any("| detail_pass |" in ln and "3 engine calls" in ln for ln in new_rows)


def test_record_from_saved_json_goes_to_the_gpu_section(bench, tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    shutil.copy(RESULTS, results)
    summary = {"mode": "full", "date": "2026-12-01", "device": "NVIDIA H200", "size": 1024, "steps": 28,
               "methods": {"plain": {"status": "ok", "s_image": 6.1, "s_step": 0.218, "denoise_s_step": 0.2,
                                     "tflops": 400.0, "peak_vram_gib": 40.2, "host_rss_peak_gib": 3.1,
                                     "runs": 3, "dtype": "bfloat16", "controlnet": True, "extra": {"plan": "gpu"}},
                           "fbc": {"status": "skipped", "reason": "budget"}}}
    saved = tmp_path / "gpu.json"
    saved.write_text(json.dumps(summary), encoding="utf-8")
    assert bench.main(["--record-from", str(saved), "--results", str(results)]) == 0
    text = results.read_text(encoding="utf-8")
    gpu_section = text.partition("<!-- gpu-rows-end -->")[0]
    row = [ln for ln in gpu_section.splitlines() if "NVIDIA H200" in ln]
    assert len(row) == 1 and "| plain |" in row[0] and "6.100" in row[0] and "plan gpu" in row[0]
    assert "NOT a GPU figure" not in row[0]


def test_full_size_parts_have_the_published_sizes(bench) -> None:
    """Built on the meta device (no memory): the configs give the real models' parameter counts."""
    import torch

    parts = bench.build_parts(False, "meta", torch.bfloat16, "pro2")
    counts = {k: sum(p.numel() for p in v.parameters()) for k, v in parts.items() if hasattr(v, "parameters")}
    published = {"transformer": 11.90e9, "controlnet": 2.14e9, "text_encoder_2": 4.76e9,
                 "text_encoder": 123.06e6, "vae": 83.8e6}
    for name, n in published.items():
        assert counts[name] == pytest.approx(n, rel=0.01), name
    assert all(p.dtype == torch.bfloat16 for p in parts["transformer"].parameters())
    # the FLOP count the achieved TFLOP/s is based on: ~74 TFLOP per step at 1024x1024 (issue 15)
    flops = bench.flux_flops(dict(parts["transformer"].config), 4096, 512)
    assert flops / 1e12 == pytest.approx(bench.ISSUE_FLOOR_TFLOP_PER_STEP, rel=0.015)


def test_full_mode_without_cuda_says_so(bench, capsys, monkeypatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert bench.main(["--budget-s", "5"]) == 2
    line = capsys.readouterr().out.strip().splitlines()[-1]
    out = json.loads(line)
    assert out["ok"] is False and "no CUDA" in out["error"]
