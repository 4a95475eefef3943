"""FLUX Fill + ControlNet engine on the tiny set: equivalence with diffusers' FluxFillPipeline,
ControlNet effect and start/end, cancel, progress, determinism, paste-back, input checks, OOM ladder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from studio.engines.base import Engine, InpaintJob
from studio.errors import CancelledError, InputError, StudioError
from studio.runtime.jobs import CancelToken

SIZE = 64
SEQ = 32


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from studio.engines.tiny import save_tiny_models

    return save_tiny_models(tmp_path_factory.mktemp("flux") / "models")


@pytest.fixture(scope="module")
def engine(models_dir: Path):
    from studio.engines.flux_fill import FluxFillEngine

    return FluxFillEngine(models_dir, device="cpu", max_sequence_length=SEQ, paste_back=False)


def _inputs(size: int = SIZE) -> tuple[Image.Image, Image.Image, Image.Image]:
    image = Image.fromarray(data.astronaut()).resize((size, size), Image.Resampling.LANCZOS)
    m = np.zeros((size, size), np.uint8)
    m[size // 4:, :] = 255  # regenerate everything below the face
    pose = Image.fromarray(data.coffee()).resize((size, size))
    return image, Image.fromarray(m, "L"), pose


def _job(**kw) -> InpaintJob:
    image, mask, pose = _inputs(kw.pop("size", SIZE))
    base = dict(image=image, mask=mask, prompt="a cafe owner wearing an apron", width=image.width,
                height=image.height, seed=3, steps=3, guidance=30.0, control_image=pose,
                controlnet_scale=0.7, control_start=0.0, control_end=1.0)
    base.update(kw)
    return InpaintJob(**base)


def _arr(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.int16)


def _reference(engine, job: InpaintJob, output_type: str = "np"):
    """diffusers' own FluxFillPipeline over the very same components."""
    import torch
    from diffusers import FluxFillPipeline

    pipe = engine.pipeline
    ref = FluxFillPipeline(**{k: v for k, v in pipe.components.items() if k != "controlnet"})
    ref.set_progress_bar_config(disable=True)
    return ref(prompt=job.prompt, image=job.image, mask_image=job.mask, height=job.height, width=job.width,
               num_inference_steps=job.steps, guidance_scale=job.guidance,
               generator=torch.Generator("cpu").manual_seed(job.seed), max_sequence_length=SEQ,
               output_type=output_type).images


def _ours(engine, job: InpaintJob, **kw):
    import torch

    return engine.pipeline(prompt=job.prompt, image=job.image, mask_image=job.mask, height=job.height,
                           width=job.width, num_inference_steps=job.steps, guidance_scale=job.guidance,
                           generator=torch.Generator("cpu").manual_seed(job.seed), max_sequence_length=SEQ,
                           output_type="np", control_image=job.control_image, control_mode=4, **kw).images


def test_engine_protocol_and_caps(engine) -> None:
    assert isinstance(engine, Engine)
    assert engine.name == "flux"
    assert engine.caps.changes_outfit and engine.caps.uses_pose_control
    assert engine.caps.needs_gpu and engine.caps.needs_weights


@pytest.mark.parametrize("variant", ["no_controlnet", "scale_0", "end_0"])
def test_equals_flux_fill_pipeline_when_control_is_off(engine, variant: str) -> None:
    job = _job()
    ref = _reference(engine, job)
    if variant == "no_controlnet":
        pipe = engine.pipeline
        saved = pipe.controlnet
        pipe.controlnet = None
        try:
            out = _ours(engine, job, controlnet_conditioning_scale=0.7)
        finally:
            pipe.controlnet = saved
    elif variant == "scale_0":
        out = _ours(engine, job, controlnet_conditioning_scale=0.0)
    else:
        out = _ours(engine, job, controlnet_conditioning_scale=0.7, control_guidance_start=0.0,
                    control_guidance_end=0.0)
    assert out.shape == ref.shape == (1, SIZE, SIZE, 3)
    assert float(np.abs(out - ref).max()) <= 1e-6


def test_engine_output_equals_reference_pil(engine) -> None:
    job = _job(controlnet_scale=0.0)
    ours = engine.inpaint(job)
    ref = _reference(engine, job, output_type="pil")
    assert len(ours) == 1 and ours[0].size == (SIZE, SIZE)
    assert np.array_equal(_arr(ours[0]), _arr(ref[0]))


def test_controlnet_changes_output_and_start_end_are_honoured(engine) -> None:
    off = _ours(engine, _job(), controlnet_conditioning_scale=0.0)
    full = _ours(engine, _job(), controlnet_conditioning_scale=1.0)
    late = _ours(engine, _job(), controlnet_conditioning_scale=1.0, control_guidance_start=0.5)
    early = _ours(engine, _job(), controlnet_conditioning_scale=1.0, control_guidance_end=0.5)
    assert np.abs(full - off).max() > 1e-3
    for partial in (late, early):
        assert np.abs(partial - off).max() > 1e-4
        assert np.abs(partial - full).max() > 1e-4
    assert np.abs(late - early).max() > 1e-4
    # a different pose image steers differently
    other = _job(control_image=Image.fromarray(data.chelsea()).resize((SIZE, SIZE)))
    moved = _ours(engine, other, controlnet_conditioning_scale=1.0)
    assert np.abs(moved - full).max() > 1e-4


def test_control_mode_matters_for_union(engine) -> None:
    import torch

    job = _job()
    common = dict(prompt=job.prompt, image=job.image, mask_image=job.mask, height=SIZE, width=SIZE,
                  num_inference_steps=2, max_sequence_length=SEQ, output_type="np", control_image=job.control_image)
    a = engine.pipeline(generator=torch.Generator().manual_seed(1), control_mode=4, **common).images
    b = engine.pipeline(generator=torch.Generator().manual_seed(1), control_mode=0, **common).images
    assert np.abs(a - b).max() > 1e-5
    with pytest.raises(ValueError, match="control_mode"):
        engine.pipeline(generator=torch.Generator().manual_seed(1), control_mode=None, **common)


def test_same_seed_same_output_other_seed_differs(engine) -> None:
    a = engine.inpaint(_job(seed=11))[0]
    b = engine.inpaint(_job(seed=11))[0]
    c = engine.inpaint(_job(seed=12))[0]
    assert np.array_equal(_arr(a), _arr(b))
    assert not np.array_equal(_arr(a), _arr(c))


def test_num_images_and_non_square(engine) -> None:
    image, mask, pose = _inputs(SIZE)
    job = InpaintJob(image=image.resize((96, 64)), mask=mask.resize((96, 64)), prompt="shop", width=96, height=64,
                     steps=2, num_images=2, control_image=pose.resize((96, 64)))
    out = engine.inpaint(job)
    assert [im.size for im in out] == [(96, 64), (96, 64)]
    assert not np.array_equal(_arr(out[0]), _arr(out[1]))


def test_progress_every_step_and_cancel_within_one_step(engine) -> None:
    seen: list[tuple[int, int]] = []
    engine.inpaint(_job(steps=4), progress=lambda s, n, d="": seen.append((s, n)))
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]

    token = CancelToken()
    steps: list[int] = []

    def progress(step: int, total: int, desc: str = "") -> None:
        steps.append(step)
        if step == 2:
            token.cancel()

    with pytest.raises(CancelledError):
        engine.inpaint(_job(steps=6), progress=progress, cancel=token)
    assert steps == [1, 2]
    # cancelled before it starts: nothing runs at all
    started: list[int] = []
    with pytest.raises(CancelledError):
        engine.inpaint(_job(), progress=lambda s, n, d="": started.append(s), cancel=token)
    assert started == []


def test_paste_back_keeps_owner_pixels_exactly(models_dir: Path) -> None:
    from studio.engines.flux_fill import FluxFillEngine

    eng = FluxFillEngine(models_dir, device="cpu", max_sequence_length=SEQ)  # paste_back on (the default)
    job = _job(controlnet_scale=0.0)
    out = _arr(eng.inpaint(job)[0])
    src = _arr(job.image)
    keep = np.asarray(job.mask) == 0
    assert np.array_equal(out[keep], src[keep])
    assert np.abs(out[~keep] - src[~keep]).mean() > 5  # the regenerated part really changed


@pytest.mark.parametrize("change, key", [
    (dict(width=72, height=64), "engine.bad_size"),
    (dict(width=40, height=64), "engine.bad_size"),
    (dict(mask=Image.new("L", (32, 32), 255)), "engine.mask_size"),
    (dict(mask=Image.new("L", (SIZE, SIZE), 0)), "engine.mask_empty"),
    (dict(control_image=Image.new("RGB", (32, 32))), "engine.control_size"),
    (dict(steps=0), "engine.bad_param"),
    (dict(control_start=0.8, control_end=0.2), "engine.bad_param"),
])
def test_inputs_checked_before_any_compute(models_dir: Path, change: dict, key: str) -> None:
    from studio.engines.flux_fill import FluxFillEngine

    eng = FluxFillEngine(models_dir, device="cpu")
    with pytest.raises(InputError) as info:
        eng.inpaint(_job(**change))
    assert info.value.key == key
    assert info.value.message("ko") != info.value.message("en")
    assert not eng.loaded  # nothing was loaded


def test_create_engine_is_lazy(settings) -> None:
    from studio.engines.flux_fill import create_engine

    eng = create_engine(settings)
    assert not eng.loaded
    with pytest.raises(StudioError) as info:  # no weights under the empty models dir
        eng.inpaint(_job())
    assert info.value.key == "weights.missing_folder"
    assert "flux-fill" in info.value.message("ko")


def test_quantize_on_cpu_says_it_needs_a_gpu(models_dir: Path) -> None:
    from studio.engines.flux_fill import FluxFillEngine

    eng = FluxFillEngine(models_dir, device="cpu", quantize="8bit")
    with pytest.raises(StudioError) as info:
        eng.inpaint(_job())
    assert info.value.key == "memory.quantize_needs_gpu"
    assert "GPU" in info.value.message("ko")


class _InjectedOOM:
    """Raises torch.OutOfMemoryError for the first `fail` allocations, recording each attempt."""

    def __init__(self, fail: int) -> None:
        self.fail = fail
        self.calls: list[tuple[str, int, int]] = []

    def __call__(self, plan, w: int, h: int) -> None:
        import torch

        self.calls.append((plan.name, w, h))
        if len(self.calls) <= self.fail:
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")


def _ladder_engine(models_dir: Path, hook: _InjectedOOM):
    from studio.engines.flux_fill import FluxFillEngine
    from studio.runtime.memory import choose_plan

    eng = FluxFillEngine(models_dir, device="cpu", max_sequence_length=SEQ, alloc_hook=hook)
    eng._resolve_device()
    eng.plan = choose_plan(80.0, cuda=True)  # pretend a big card: start from "gpu"
    return eng


def test_oom_ladder_walks_lighter_plans(models_dir: Path) -> None:
    hook = _InjectedOOM(fail=2)
    eng = _ladder_engine(models_dir, hook)
    job = _job(size=128, steps=2)
    out = eng.inpaint(job)
    assert [c[0] for c in hook.calls] == ["gpu", "model_offload", "group_offload"]
    assert out[0].size == (128, 128)
    assert eng.last_plan.name == "group_offload" and eng.plan.name == "group_offload"
    assert [n.key for n in out.notices] == ["engine.notice.plan"]
    assert [n["key"] for n in job.extras["notices"]] == ["engine.notice.plan"]
    assert eng.loaded  # the pipeline survived the recovery and ran


def test_oom_ladder_then_lower_resolution(models_dir: Path) -> None:
    hook = _InjectedOOM(fail=4)
    eng = _ladder_engine(models_dir, hook)
    job = _job(size=128, steps=2)
    out = eng.inpaint(job)
    assert hook.calls[-1] == ("sequential_offload", 96, 96)
    assert out[0].size == (128, 128)  # upscaled back to what was asked
    assert eng.last_size == (96, 96)
    keys = [n.key for n in out.notices]
    assert "engine.notice.lower_res" in keys
    lower = next(n for n in out.notices if n.key == "engine.notice.lower_res")
    assert "96×96" in lower.text("ko")


def test_oom_everywhere_gives_clear_error(models_dir: Path) -> None:
    hook = _InjectedOOM(fail=100)
    eng = _ladder_engine(models_dir, hook)
    with pytest.raises(StudioError) as info:
        eng.inpaint(_job(size=128, steps=2))
    assert info.value.key == "engine.oom"
    assert len(hook.calls) == 6  # 4 plans + 2 lower resolutions


def test_from_parts_equals_loaded_folder(models_dir: Path) -> None:
    from studio.engines.flux_fill import FluxFillEngine
    from studio.engines.tiny import build_tiny_components

    parts = build_tiny_components()
    a = FluxFillEngine.from_parts(**parts, device="cpu", max_sequence_length=SEQ)
    b = FluxFillEngine(models_dir, device="cpu", max_sequence_length=SEQ)
    # Guidance 30 for the ControlNet once put one pixel on a rounding edge: loaded weights are
    # memory-mapped at unaligned file offsets, and CPU kernels compute unaligned data along other
    # SIMD paths. The CPU plan now copies them into owned memory (memory.own_weights), so the
    # folder-loaded engine equals the one built from parts whatever ran before.
    job = _job(steps=2, control_guidance=30.0)
    assert np.array_equal(_arr(a.inpaint(job)[0]), _arr(b.inpaint(job)[0]))


def test_tiny_engine_through_the_provider(settings) -> None:
    """`--engine tiny`: saved into models/.tiny-cache in the real layout and loaded by the real loader."""
    from studio.engines.registry import EngineProvider

    provider = EngineProvider(settings.with_(engine="tiny"))
    eng = provider.get()
    assert eng.name == "tiny" and isinstance(eng, Engine)
    assert not eng.caps.needs_gpu and eng.caps.uses_pose_control
    assert not eng.loaded
    cache = settings.models_dir / ".tiny-cache"
    assert (cache / "flux-fill" / "model_index.json").is_file()
    assert (cache / "controlnet-union" / "config.json").is_file()
    job = _job(steps=2)
    out = eng.inpaint(job)
    assert out[0].size == (SIZE, SIZE) and eng.loaded
    assert eng.pipeline.controlnet is not None
    assert out.notices == []
    provider.release("inpaint", "tiny")
    assert not eng.loaded


def test_oom_evicts_a_half_moved_model_and_the_next_attempt_reloads_it(models_dir: Path) -> None:
    import torch

    from studio.engines.flux_fill import FluxFillEngine
    from studio.runtime.manager import ModelManager

    manager = ModelManager()
    cache = manager.components
    state = {"armed": False, "calls": 0}

    def hook(plan, w: int, h: int) -> None:
        state["calls"] += 1
        if state["calls"] == 1:
            vae = eng.pipeline.vae
            real_to = vae.to

            def stuck_to(*args, **kwargs):
                if state["armed"]:
                    raise RuntimeError("CUDA error: out of memory while moving (injected)")
                return real_to(*args, **kwargs)

            vae.to = stuck_to
            state["armed"] = True
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")

    eng = FluxFillEngine(models_dir, device="cpu", max_sequence_length=SEQ, manager=manager, alloc_hook=hook)
    eng.load()
    old_vae, old_t5, old_tr = eng.pipeline.vae, eng.pipeline.text_encoder_2, eng.pipeline.transformer
    loads_before = cache.loads
    out = eng.inpaint(_job(steps=2, size=96))
    assert out[0].size == (96, 96) and state["calls"] == 2
    assert eng.pipeline.vae is not old_vae          # evicted and reloaded from disk
    assert eng.pipeline.text_encoder_2 is old_t5    # the healthy parts were reused
    assert eng.pipeline.transformer is old_tr
    assert cache.loads == loads_before + 1
