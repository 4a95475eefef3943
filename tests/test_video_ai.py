"""AI image-to-video: the LTX engine end to end over tiny LTX-Video parts (the real diffusers classes,
tiny configs, saved in the real on-disk layout), equivalence with diffusers' own pipeline, the kept
region, cancel, missing weights, frame/size rules and the catalog."""

from __future__ import annotations

import json

import numpy as np
import pytest

from studio.config import REPO_ROOT, Settings
from studio.engines.base import Image2VideoJob
from studio.errors import CancelledError, WeightsError
from studio.runtime.jobs import CancelToken
from tests.test_video import ad_image, subject_pixels


@pytest.fixture(scope="module")
def tiny_settings(tmp_path_factory) -> Settings:
    root = tmp_path_factory.mktemp("video_ai")
    (root / "models").mkdir()
    return Settings(models_dir=root / "models", outputs_dir=root / "outputs", presets_dir=REPO_ROOT / "presets",
                    ollama_host="http://127.0.0.1:9")


@pytest.fixture(scope="module")
def tiny(tiny_settings):
    from studio.engines.ltx_video import create_tiny

    engine = create_tiny(tiny_settings)
    yield engine
    engine.close()


def test_tiny_set_is_saved_in_the_real_layout(tiny) -> None:
    index = json.loads((tiny.folder / "model_index.json").read_text())
    assert index["_class_name"] == "LTXConditionPipeline"
    for part in ("transformer", "vae", "text_encoder", "tokenizer", "scheduler"):
        assert part in index and (tiny.folder / part).is_dir()
    assert json.loads((tiny.folder / "transformer" / "config.json").read_text())["_class_name"] == \
        "LTXVideoTransformer3DModel"


def test_engine_frames_equal_diffusers_own_pipeline_over_the_same_parts(tiny) -> None:
    from diffusers import LTXConditionPipeline

    from studio.engines.ltx_video import TINY_LTX, frame_count, work_size

    img, _ = ad_image()
    w, h = work_size(270, 480, TINY_LTX)
    n = frame_count(9 / 24, TINY_LTX)
    # at the work size and the native frame rate the engine's output is the pipeline's, frame for frame
    job = Image2VideoJob(image=img, prompt="a cup of coffee on a table", width=w, height=h, seconds=n / 24,
                         fps=24, seed=7)
    ours = np.stack(list(tiny.image2video(job).frames))
    kwargs = tiny.pipeline_kwargs(job)
    pipe = LTXConditionPipeline(**tiny.pipeline.components)
    ref = np.asarray(pipe(**kwargs).frames[0])
    ref = (np.clip(ref, 0, 1) * 255 + 0.5).astype(np.uint8)
    assert ours.shape == ref.shape == (n, h, w, 3)
    assert np.array_equal(ours, ref)
    other = np.stack(list(tiny.image2video(Image2VideoJob(image=img, prompt="a cup of coffee on a table",
                                                          width=w, height=h, seconds=n / 24, fps=24,
                                                          seed=8)).frames))
    assert not np.array_equal(ours, other)  # the seed matters


def test_ai_clip_through_the_workflow_holds_the_kept_region_steady(tiny, tiny_settings) -> None:
    from studio.render.video import read_frames
    from studio.services import build_services
    from studio.workflows.video import VideoRequest, run

    services = build_services(tiny_settings)
    services.engines._engines[("image2video", "tiny")] = tiny  # the module's engine (built once)
    try:
        img, mask = ad_image()
        out = run(VideoRequest(image=img, seconds=1, size="9:16", engine="tiny", prompt_ko="커피잔 위로 김이 모락모락",
                               keep_mask=mask, keep_region=True, scale=0.25, seed=3), services)
        p = out.probe
        assert (p.width, p.height, p.fps, p.frames) == (270, 480, 30, 30)
        assert p.codec == "h264" and p.pix_fmt == "yuv420p" and p.boxes.index("moov") < p.boxes.index("mdat")
        rec = out.record
        assert rec.engine == "tiny" and rec.prompt_en.strip() and rec.kept_owner_pixels
        keys = [n.key for n in out.notices]
        assert "video.ai_frames" in keys and "video.keep_region" in keys
        for frame in read_frames(out.path):
            sub = subject_pixels(frame)
            ys, xs = np.nonzero(sub)
            assert len(xs) > 1000  # the green subject is there in every frame, unchanged by the tiny model
            assert xs.min() > 0 and ys.min() > 0 and xs.max() < 269 and ys.max() < 479
    finally:
        services.store.close()


def test_cancel_stops_within_one_step(tiny) -> None:
    img, _ = ad_image()
    token = CancelToken()
    steps: list[int] = []

    def progress(step: int, total: int, desc: str = "") -> None:
        steps.append(step)
        token.cancel()

    with pytest.raises(CancelledError):
        tiny.image2video(Image2VideoJob(image=img, width=64, height=128, seconds=0.5, fps=30), progress, token)
    assert steps == [1]


def test_missing_weights_say_what_to_do(settings) -> None:
    from studio.engines.ltx_video import create_ltx

    engine = create_ltx(settings)
    img, _ = ad_image()
    with pytest.raises(WeightsError) as err:
        engine.image2video(Image2VideoJob(image=img))
    assert "ltx-video" in err.value.message("en")


def test_frame_counts_and_sizes_follow_the_model_rules() -> None:
    from studio.engines.ltx_video import LTX, WAN, frame_count, work_size

    assert frame_count(5, LTX) == 121 and (frame_count(5, LTX) - 1) % 8 == 0
    assert frame_count(15, LTX) == 161   # LTX's longest clip; the workflow stretches it to the length
    assert (frame_count(5, WAN) - 1) % 4 == 0 and frame_count(5, WAN) == 121
    for model in (LTX, WAN):
        w, h = work_size(1080, 1920, model)
        assert w % 32 == 0 and h % 32 == 0 and h > w
        assert abs(w * h / 1e6 - model.work_megapixels) < 0.15 * model.work_megapixels


def test_catalog_lists_the_video_models_with_licences_and_says_why_hunyuan_is_absent() -> None:
    from studio.engines.registry import specs_for
    from studio.presets import Presets

    entries = {m.id: m for m in Presets(REPO_ROOT / "presets").models}
    for spec in specs_for("image2video"):
        for mid in spec.model_ids:
            entry = entries[mid]
            assert entry.purpose == "video" and entry.licence and entry.files
            assert any(g.startswith(entry.local_dir + "/") for g in spec.weights_any)
    assert entries["wan22_ti2v_5b"].licence == "Apache-2.0"
    text = json.dumps(json.loads((REPO_ROOT / "presets" / "models.json").read_text()), ensure_ascii=False)
    assert "Hunyuan" in text and "South Korea" in text


def test_the_video_engine_loads_through_the_shared_model_manager(tiny, tiny_settings) -> None:
    """Loading the video engine frees the heavy pipeline resident before it (one at a time)."""
    from studio.engines.ltx_video import AIVideoEngine, TINY_LTX
    from studio.runtime.manager import ModelManager

    manager = ModelManager()
    freed: list[str] = []
    manager.activate("other-heavy-pipeline", 1.0, lambda: freed.append("other"))
    engine = AIVideoEngine(tiny_settings.models_dir, TINY_LTX, folder=tiny.folder, name="tiny", device="cpu",
                           max_sequence_length=16)
    engine.bind_manager(manager)
    img, _ = ad_image()
    list(engine.image2video(Image2VideoJob(image=img, width=64, height=128, seconds=0.3, fps=30, steps=1)).frames)
    assert freed == ["other"] and manager.resident == engine.key
    engine.close()
    assert manager.resident is None
