"""ControlNet settings reach the ControlNet as its model card says: its own guidance (not Fill's
30), the pose conditioning scale and end, the Union pose mode; sequential offload offloads it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from studio.engines.base import InpaintJob

SIZE = 64
SEQ = 32


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from studio.engines.tiny import save_tiny_models

    return save_tiny_models(tmp_path_factory.mktemp("cn") / "models")


@pytest.fixture(scope="module")
def engine(models_dir: Path):
    from studio.engines.flux_fill import FluxFillEngine

    return FluxFillEngine(models_dir, device="cpu", max_sequence_length=SEQ)


def _job(**kw) -> InpaintJob:
    image = Image.fromarray(data.astronaut()).resize((SIZE, SIZE))
    m = np.zeros((SIZE, SIZE), np.uint8)
    m[SIZE // 4:, :] = 255
    pose = Image.fromarray(data.coffee()).resize((SIZE, SIZE))
    base = dict(image=image, mask=Image.fromarray(m, "L"), prompt="a cafe owner", width=SIZE, height=SIZE,
                seed=1, steps=20, guidance=30.0, control_image=pose)
    base.update(kw)
    return InpaintJob(**base)


def _spy(engine):
    calls: list[dict] = []
    net = engine.pipeline.controlnet
    real = net.forward

    def forward(*args, **kwargs):
        calls.append({"guidance": None if kwargs["guidance"] is None else float(kwargs["guidance"][0]),
                      "scale": float(kwargs["conditioning_scale"]),
                      "mode": None if kwargs["controlnet_mode"] is None else int(kwargs["controlnet_mode"][0, 0])})
        return real(*args, **kwargs)

    net.forward = forward
    return calls, lambda: setattr(net, "forward", real)


def test_controlnet_gets_its_own_guidance_not_fills_30(engine) -> None:
    calls, undo = _spy(engine)
    try:
        engine.inpaint(_job(steps=2))
        assert calls and all(c["guidance"] == 3.5 for c in calls)  # Union Pro 2.0 trained on 1..7
        calls.clear()
        engine.inpaint(_job(steps=2, control_guidance=5.0))  # the owner's value wins
        assert calls and all(c["guidance"] == 5.0 for c in calls)
    finally:
        undo()


def test_pose_defaults_come_from_the_model_card(engine) -> None:
    calls, undo = _spy(engine)
    try:
        engine.inpaint(_job(steps=20))
        assert len(calls) == 13  # end 0.65 of 20 steps: (i + 1) / 20 <= 0.65
        assert all(c["scale"] == pytest.approx(0.9) for c in calls)
        assert all(c["mode"] == 4 for c in calls)  # InstantX-style union (num_mode 10): pose = 4
        calls.clear()
        engine.inpaint(_job(steps=20, controlnet_scale=0.5, control_end=1.0))  # the owner's values win
        assert len(calls) == 20 and all(c["scale"] == pytest.approx(0.5) for c in calls)
    finally:
        undo()


def test_pro2_style_controlnet_without_modes_gets_no_mode(models_dir: Path) -> None:
    from studio.engines.flux_fill import control_defaults
    from studio.engines.tiny import build_controlnet
    from studio.presets import pose_defaults

    net = build_controlnet(num_mode=None)  # Union Pro 2.0: "mode embedding removed"
    d = control_defaults(net)
    assert not net.union and d.pose_mode is None
    # the model card's pose values, read from the catalogue (presets/models.json), the one home
    assert (d.scale, d.end, d.guidance) == (0.9, 0.65, 3.5)
    card = pose_defaults()
    assert (card["conditioning_scale"], card["guidance_end"]) == (d.scale, d.end)
    lo, hi = d.guidance_range
    assert lo <= d.guidance <= hi


def test_sequential_offload_offloads_the_controlnet_too(models_dir: Path) -> None:
    from studio.engines.flux_fill import FluxFillEngine

    eng = FluxFillEngine(models_dir, device="cpu", max_sequence_length=SEQ)
    pipe = eng.pipeline
    pipe.enable_sequential_cpu_offload(device="cpu")
    try:
        hooked = {name for name, m in pipe.components.items()
                  if hasattr(m, "modules") and any(hasattr(sub, "_hf_hook") for sub in m.modules())}
        assert "controlnet" in hooked and "transformer" in hooked
        assert pipe._exclude_from_cpu_offload == ["controlnet"]  # model offload still keeps it whole
    finally:
        eng.close()


def test_first_block_cache_runs_in_the_fill_loop(models_dir: Path) -> None:
    """diffusers' caches need `transformer.cache_context` around each denoiser call."""
    from diffusers import FirstBlockCacheConfig

    from studio.engines.flux_fill import FluxFillEngine

    eng = FluxFillEngine(models_dir, device="cpu", max_sequence_length=SEQ)
    try:
        plain = np.asarray(eng.inpaint(_job(steps=3)).images[0])
        eng.pipeline.transformer.enable_cache(FirstBlockCacheConfig(threshold=0.0))  # never skips: same result
        cached = np.asarray(eng.inpaint(_job(steps=3)).images[0])
        assert np.array_equal(plain, cached)
    finally:
        eng.close()
