"""The model manager on the tiny set: switching inpaint -> text2image -> inpaint frees the resident
pipeline first and reloads as designed under a simulated VRAM budget; shared T5/CLIP/VAE load once;
a failing load rolls back with a notice; OOM notices reach the ad result and the history row."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from skimage import data

from studio.config import Settings
from studio.engines.base import InpaintJob, Text2ImageJob
from studio.engines.registry import EngineProvider
from studio.runtime.manager import ModelManager
from studio.runtime.memory import choose_plan

SIZE = 64


def _inpaint_job() -> InpaintJob:
    image = Image.fromarray(data.astronaut()).resize((SIZE, SIZE))
    m = np.zeros((SIZE, SIZE), np.uint8)
    m[SIZE // 2:, :] = 255
    return InpaintJob(image=image, mask=Image.fromarray(m, "L"), prompt="a cafe owner", width=SIZE, height=SIZE,
                      steps=1, seed=1)


def _pretend_card(engine, vram_gb: float) -> None:
    """Plan as if a CUDA card of `vram_gb` were there (the tiny set still runs on the CPU)."""
    engine._resolve_device()
    engine.plan = choose_plan(vram_gb, cuda=True, ram_gb=256.0)


class _FakeOllama:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> bool:
        self.calls += 1
        return True


def _provider(settings: Settings, vram_gb: float, ollama: _FakeOllama) -> EngineProvider:
    s = settings.with_(engine="tiny", task_engines=(("text2image", "tiny"),))
    return EngineProvider(s, manager=ModelManager(vram_gb=vram_gb, ollama_unload=ollama))


def test_switch_inpaint_text2image_inpaint_frees_first_and_shares_parts(settings: Settings) -> None:
    ollama = _FakeOllama()
    provider = _provider(settings, vram_gb=24.0, ollama=ollama)
    manager = provider.manager
    fill = provider.get("inpaint")
    t2i = provider.get("text2image")
    assert fill.manager is manager and t2i.manager is manager  # bound by the provider
    _pretend_card(fill, 24.0)
    _pretend_card(t2i, 24.0)

    fill.inpaint(_inpaint_job())
    shared = {n: getattr(fill.pipeline, n) for n in ("text_encoder", "text_encoder_2", "vae", "tokenizer")}
    fill_transformer = fill.pipeline.transformer
    assert manager.resident == fill.key
    assert manager.components.loads == 5

    out = t2i.text2image(Text2ImageJob(prompt="coffee cup", width=SIZE, height=SIZE, steps=1))
    assert out.images[0].size == (SIZE, SIZE)
    assert not fill.loaded and manager.resident == t2i.key        # Fill was freed first
    assert all(getattr(t2i.pipeline, n) is part for n, part in shared.items())  # shared, not reloaded
    assert manager.components.loads == 5

    fill.inpaint(_inpaint_job())
    assert not t2i.loaded and manager.resident == fill.key
    assert fill.pipeline.transformer is not fill_transformer      # its own part was reloaded
    assert all(getattr(fill.pipeline, n) is part for n, part in shared.items())
    assert manager.components.loads == 5

    loads_frees = [e for e in manager.events if e[0] in ("load", "free")]
    assert loads_frees == [("load", fill.key), ("free", fill.key), ("load", t2i.key),
                           ("free", t2i.key), ("load", fill.key)]
    # 24 GB is short of what each bf16 pipeline needs: Ollama was asked before each load
    assert ollama.calls == 3
    assert [e for e in manager.events if e[0] == "ollama_unload"] == [("ollama_unload", "ok")] * 3


def test_big_card_keeps_ollama_and_switch_to_lite_frees_shared_parts(settings: Settings) -> None:
    ollama = _FakeOllama()
    provider = _provider(settings, vram_gb=80.0, ollama=ollama)
    fill = provider.get("inpaint")
    _pretend_card(fill, 80.0)
    fill.inpaint(_inpaint_job())
    assert ollama.calls == 0 and len(provider.manager.components) == 5
    choice = provider.select("inpaint", "lite")
    assert choice.name == "lite" and not fill.loaded
    assert provider.manager.resident is None
    assert len(provider.manager.components) == 0  # nobody holds T5/CLIP/VAE any more: freed


def test_failing_load_rolls_back_with_a_notice(settings: Settings) -> None:
    provider = EngineProvider(settings.with_(engine="tiny", commercial_only=False),  # Fill is non-commercial
                              manager=ModelManager(vram_gb=24.0))
    tiny = provider.get("inpaint")
    tiny.inpaint(_inpaint_job())
    choice = provider.select("inpaint", "flux", load=True)  # no FLUX weights under models/
    assert choice.name == "tiny" and provider.active_name("inpaint") == "tiny"
    assert choice.reason_key == "engine.notice.rollback"
    ko, en = choice.reason("ko"), choice.reason("en")
    assert "flux" in ko and "tiny" in ko and "되돌렸" in ko
    assert "flux-fill" in ko  # why: the missing folder, in the owner's language
    assert "could not load" in en
    assert provider.peek("inpaint", "flux") is None
    assert provider.manager.resident == tiny.key  # the failed engine holds nothing; the previous is back
    again = provider.get("inpaint")
    assert again.name == "tiny"
    assert again.inpaint(_inpaint_job()).images[0].size == (SIZE, SIZE)


def test_oom_notice_reaches_the_result_and_the_history_row(settings: Settings) -> None:
    import torch

    from studio.schema import GenerationOptions, ProductRequest
    from studio.services import build_services
    from studio.vision.io import load_image
    from studio.workflows import product

    svc = build_services(settings.with_(engine="tiny"))
    try:
        engine = svc.engines.get("inpaint")
        _pretend_card(engine, 80.0)
        calls: list[str] = []

        def hook(plan, w: int, h: int) -> None:
            calls.append(plan.name)
            if len(calls) == 1:
                raise torch.OutOfMemoryError("CUDA out of memory (injected)")

        engine.alloc_hook = hook
        img = load_image(data.coffee()).image
        res = product.run(ProductRequest(image=img, industry="cafe", style="warm", sns_size="kakao_channel",
                                         product_box=(90, 20, 520, 380),
                                         options=GenerationOptions(steps=1, seed=3)), svc)
        assert calls == ["gpu", "model_offload"]
        plan_notes = [n for n in res.notices if n.key == "engine.notice.plan"]
        assert len(plan_notes) == 1 and plan_notes[0].fields == {"plan": "model_offload"}
        assert "model_offload" in plan_notes[0].text("ko")  # what the ads tab shows
        row = svc.store.get(res.records[0].id)
        assert {"key": "engine.notice.plan", "fields": {"plan": "model_offload"}} in row.settings["notices"]
    finally:
        svc.store.close()


@pytest.mark.parametrize("module", ["manager", "memory", "weights", "catalog", "downloader", "jobs", "compat"])
def test_runtime_never_imports_engines(module: str) -> None:
    import ast
    from pathlib import Path

    import studio.runtime

    path = Path(studio.runtime.__file__).parent / f"{module}.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    names += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [n for n in names if n.startswith("studio.engines")]


def _corrupt_flux_copy(settings: Settings) -> None:
    """The tiny set in the real layout under models/flux-fill/, its transformer file cut short."""
    import shutil

    from studio.engines.tiny import tiny_models_dir

    src = tiny_models_dir(settings) / "flux-fill"
    shutil.copytree(src, settings.models_dir / "flux-fill")
    files = sorted((settings.models_dir / "flux-fill" / "transformer").glob("*.safetensors"))
    assert files
    for f in files:
        f.write_bytes(f.read_bytes()[:100])


@pytest.mark.parametrize("fault", ["memory", "runtime", "corrupt"])
def test_any_load_failure_rolls_back_to_the_working_engine(settings: Settings, monkeypatch, fault: str) -> None:
    import studio.engines.flux_fill as flux_fill

    # FLUX.1 Fill is non-commercial: the owner turned the commercial-only switch off to pick it
    provider = EngineProvider(settings.with_(engine="tiny", commercial_only=False), manager=ModelManager(vram_gb=24.0))
    tiny = provider.get("inpaint")
    tiny.inpaint(_inpaint_job())
    plan_before = tiny.plan
    assert tiny.loaded and plan_before is not None
    built: list = []
    real_create = flux_fill.create_engine

    def create(s: Settings):
        engine = real_create(s)
        built.append(engine)
        if fault != "corrupt":
            def broken_load() -> None:
                raise MemoryError() if fault == "memory" else RuntimeError("injected failure")
            engine.load = broken_load
        return engine

    monkeypatch.setattr(flux_fill, "create_engine", create)
    if fault == "corrupt":
        _corrupt_flux_copy(provider.settings)

    choice = provider.select("inpaint", "flux", load=True)

    assert built, "the flux engine was really built and tried"
    assert choice.name == "tiny" and provider.active_name("inpaint") == "tiny"
    assert provider.peek("inpaint", "flux") is None           # the broken engine is not cached
    assert provider.manager.resident in (None, tiny.key)      # it holds nothing
    ko = choice.reason("ko")
    assert choice.reason_key == "engine.notice.rollback" and "되돌렸" in ko
    why = choice.reason_fields["why"]
    assert any("\uac00" <= ch <= "\ud7a3" for ch in why)       # the reason is Korean words...
    assert "Error" not in why and "injected" not in why          # ...not an exception name
    from studio.i18n import t
    if fault == "corrupt":  # the loader names the damaged file and what to download again
        assert "손상" in why and "diffusion_pytorch_model.safetensors" in why
    else:
        assert why == t({"memory": "engine.rollback.memory", "runtime": "engine.rollback.failed"}[fault], "ko")
    again = provider.get("inpaint")
    assert again is tiny and tiny.plan == plan_before          # the same engine, with its memory plan
    assert tiny.loaded                                          # resident again, as before the switch
    assert again.inpaint(_inpaint_job()).images[0].size == (SIZE, SIZE)
