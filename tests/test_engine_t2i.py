"""Stock text-to-image (FluxPipeline, schnell) on the tiny set, sharing the Fill engine's parts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from studio.errors import CancelledError, InputError, WeightsError
from studio.runtime.jobs import CancelToken


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from studio.engines.tiny import save_tiny_models

    return save_tiny_models(tmp_path_factory.mktemp("t2i") / "models")


def _t2i(models: Path, manager=None):
    from studio.engines.t2i import T2IEngine

    return T2IEngine(models, "schnell", device="cpu", max_sequence_length=32, manager=manager)


def test_tiny_schnell_generates_deterministically(models: Path) -> None:
    eng = _t2i(models)
    steps: list[int] = []
    a = eng.generate("coffee cup on a wood table", 96, 64, steps=2, seed=5, progress=lambda s, n, d="": steps.append(s))
    b = eng.generate("coffee cup on a wood table", 96, 64, steps=2, seed=5)
    c = eng.generate("coffee cup on a wood table", 96, 64, steps=2, seed=6, num_images=2)
    assert a[0].size == (96, 64) and a[0].mode == "RGB"
    assert steps == [1, 2]
    assert np.array_equal(np.asarray(a[0]), np.asarray(b[0]))
    assert len(c) == 2 and not np.array_equal(np.asarray(a[0]), np.asarray(c[0]))


def test_shares_text_encoders_and_vae_with_the_fill_engine(models: Path) -> None:
    from studio.engines.flux_fill import FluxFillEngine
    from studio.runtime.manager import ModelManager

    manager = ModelManager()
    fill = FluxFillEngine(models, device="cpu", manager=manager)
    t2i = _t2i(models, manager)
    shared = {name: getattr(fill.pipeline, name) for name in ("text_encoder", "text_encoder_2", "tokenizer",
                                                              "tokenizer_2", "vae")}
    fill_transformer = fill.pipeline.transformer
    for name, part in shared.items():  # loading text-to-image freed Fill first, but kept what it shares
        assert getattr(t2i.pipeline, name) is part, name
    assert not fill.loaded and manager.resident == t2i.key
    assert manager.components.loads == 5  # loaded once, reused
    assert t2i.pipeline.transformer is not fill_transformer


def test_cancel_and_bad_inputs(models: Path) -> None:
    eng = _t2i(models)
    token = CancelToken()

    def progress(step: int, total: int, desc: str = "") -> None:
        if step == 1:
            token.cancel()

    with pytest.raises(CancelledError):
        eng.generate("a cafe", 64, 64, steps=4, progress=progress, cancel=token)
    with pytest.raises(InputError):
        eng.generate("  ", 64, 64)
    with pytest.raises(InputError):
        eng.generate("a cafe", 70, 64)


def test_dev_missing_says_how_to_fix(models: Path) -> None:
    from studio.engines.t2i import T2IEngine

    with pytest.raises(WeightsError) as info:
        T2IEngine(models, "dev", device="cpu").generate("a cafe", 64, 64, steps=1)
    assert "flux-dev" in info.value.message("ko")


def test_create_t2i_tiny_uses_the_saved_cache(settings) -> None:

    from studio.engines.t2i import create_tiny

    eng = create_tiny(settings)
    out = eng.generate("flower shop", 64, 64, steps=1)
    assert out[0].size == (64, 64)
    assert (settings.models_dir / ".tiny-cache" / "flux-schnell" / "model_index.json").is_file()
