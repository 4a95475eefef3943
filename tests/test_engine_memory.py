"""Memory plans per VRAM size, overrides, quantisation rules, the OOM ladder order, Ollama unload."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from studio.errors import StudioError
from studio.runtime.memory import (
    PLAN_ORDER,
    MemoryPlan,
    choose_plan,
    lighter_plans,
    plan_table,
    require_quantization_support,
    unload_ollama,
)


@pytest.mark.parametrize("vram, expected", [
    (8, "sequential_offload"), (12, "group_offload"), (16, "group_offload"), (24, "group_offload"),
    (34, "model_offload"), (48, "gpu"), (80, "gpu"),
])
def test_plan_per_vram(vram: float, expected: str) -> None:
    plan = choose_plan(vram)
    assert plan.name == expected
    assert plan.vae_tiling == (expected != "gpu")  # small cards tile the VAE
    assert plan.notes_ko and plan.notes_en if expected != "gpu" else True


def test_plans_never_get_heavier_as_vram_shrinks() -> None:
    names = [p.name for _, p in plan_table(sizes=(80, 48, 40, 32, 24, 16, 12, 10, 8, 6))]
    ranks = [PLAN_ORDER.index(n) for n in names]
    assert ranks == sorted(ranks)
    assert [s for s, _ in plan_table()] == [8, 12, 16, 24, 48, 80]


def test_quantisation_lets_smaller_cards_keep_more_on_gpu() -> None:
    assert choose_plan(24, quantize="8bit").name == "model_offload"
    assert choose_plan(24, quantize="4bit").name == "gpu"
    q = choose_plan(12, quantize="8bit")  # bnb weights cannot be layer-offloaded
    assert q.name == "model_offload" and q.quantize == "8bit"
    assert any("bitsandbytes" in n for n in q.notes_en)
    assert all(p.name == "model_offload" for p in lighter_plans(choose_plan(80, quantize="4bit"))[:1])
    assert [p.name for p in lighter_plans(choose_plan(80, quantize="4bit"))] == ["model_offload"]


def test_no_cuda_is_the_cpu_plan_and_override_wins() -> None:
    assert choose_plan(None).name == "cpu"
    assert choose_plan(None, cuda=True).name == "sequential_offload"  # a card of unknown size: safest
    forced = choose_plan(80, override="model_offload")
    assert forced.name == "model_offload" and any("model_offload" in n for n in forced.notes_en)
    with pytest.raises(StudioError) as info:
        choose_plan(24, override="turbo")
    assert info.value.key == "memory.bad_plan"


def test_ladder_order() -> None:
    assert [p.name for p in lighter_plans(choose_plan(80))] == ["model_offload", "group_offload", "sequential_offload"]
    assert lighter_plans(choose_plan(8)) == []
    assert lighter_plans(choose_plan(None)) == []


def test_quantisation_needs_a_gpu() -> None:
    require_quantization_support("none", cuda=False)
    with pytest.raises(StudioError) as info:
        require_quantization_support("4bit", cuda=False)
    assert info.value.key == "memory.quantize_needs_gpu"
    assert "GPU" in info.value.message("ko") and "GPU" in info.value.message("en")


def test_plan_is_plain_data_for_the_models_tab() -> None:
    plan = choose_plan(16)
    assert isinstance(plan, MemoryPlan)
    assert plan.label("ko") != plan.label("en")
    assert plan.notes("en") == plan.notes_en


def test_detect_device_on_this_machine() -> None:
    from studio.runtime.memory import detect_device

    info = detect_device()
    assert info.torch_version
    assert (info.vram_gb is None) == (not info.cuda)
    assert choose_plan(info.vram_gb).name == ("cpu" if not info.cuda else choose_plan(info.vram_gb).name)


def test_unload_ollama_tolerates_a_dead_server() -> None:
    assert unload_ollama("http://127.0.0.1:9", "qwen2.5:7b-instruct", timeout=1.0) is False


def test_unload_ollama_sends_keep_alive_zero() -> None:
    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server API
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            seen.append({"path": self.path, **json.loads(body or b"{}")})
            reply = json.dumps({"model": "m", "created_at": "2024-01-01T00:00:00Z", "response": "",
                                "done": True, "done_reason": "unload"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: object) -> None:
            return None

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert unload_ollama(f"http://127.0.0.1:{server.server_port}", "qwen2.5:7b-instruct") is True
    finally:
        server.shutdown()
        server.server_close()
    assert seen and seen[0]["path"] == "/api/generate"
    assert seen[0]["model"] == "qwen2.5:7b-instruct" and seen[0]["keep_alive"] == 0


def test_system_ram_short_of_an_unquantised_load_picks_8bit_or_4bit_or_says_so() -> None:
    from studio.runtime.memory import choose_plan, host_ram_needed_gb, ram_notice

    need = host_ram_needed_gb("none")
    assert 37.0 <= need <= 39.0  # ~38 GB: bf16 transformer + ControlNet + T5 + CLIP/VAE
    roomy = choose_plan(24.0, cuda=True, ram_gb=64.0, can_quantize=True)
    assert roomy.quantize == "none" and not roomy.ram_short and ram_notice(roomy) is None
    eight = choose_plan(24.0, cuda=True, ram_gb=32.0, can_quantize=True)
    assert eight.quantize == "8bit" and "memory.note.ram_quant" in eight.note_keys and not eight.ram_short
    four = choose_plan(24.0, cuda=True, ram_gb=24.0, can_quantize=True)
    assert four.quantize == "4bit" and not four.ram_short
    short = choose_plan(24.0, cuda=True, ram_gb=16.0, can_quantize=False)  # no bitsandbytes
    assert short.quantize == "none" and short.ram_short
    notice = ram_notice(short)
    assert notice is not None and notice.key == "memory.note.ram_short"
    assert "16.0 GB" in notice.text("ko") and "bitsandbytes" in notice.text("ko")
    assert choose_plan(None, ram_gb=8.0).name == "cpu"  # the CPU plan (tiny set) ignores it


def test_engine_says_ram_is_short_before_loading(tmp_path) -> None:
    """The notice comes with the load, before any weight is read (here: there are none)."""
    import pytest

    from studio.engines.flux_fill import FluxFillEngine
    from studio.errors import WeightsError
    from studio.runtime.memory import choose_plan

    eng = FluxFillEngine(tmp_path, device="cpu", ram_gb=16.0)
    eng._resolve_device()
    eng.plan = choose_plan(24.0, cuda=True, ram_gb=16.0, can_quantize=False)
    with pytest.raises(WeightsError):
        eng.load()
    assert [n.key for n in eng.load_notices] == ["memory.note.ram_short"]
