"""Issue 23: FLUX.2 [klein] 4B and Qwen-Image-Edit-2511 engines, their memory plans and layouts,
and the "상업용으로 쓸 수 있는 모델만" switch."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))

from studio.config import REPO_ROOT, Settings  # noqa: E402
from studio.engines.base import TASKS, InpaintJob, Text2ImageJob  # noqa: E402
from studio.errors import CancelledError, StudioError, WeightsError  # noqa: E402
from studio.runtime.jobs import CancelToken  # noqa: E402

SIZE = 64


@pytest.fixture(scope="module")
def klein_models(tmp_path_factory) -> Path:
    from studio.engines.tiny_commercial import save_klein

    root = tmp_path_factory.mktemp("klein")
    save_klein(root)
    return root


def _photo(seed: int = 0) -> Image.Image:
    rng = np.random.RandomState(seed)
    return Image.fromarray((rng.rand(SIZE, SIZE, 3) * 255).astype("uint8"), "RGB")


def _mask() -> Image.Image:
    m = np.zeros((SIZE, SIZE), "uint8")
    m[16:48, 12:52] = 255  # regenerate; the rest (the face, the product) is kept
    return Image.fromarray(m, "L")


def _job(steps: int = 2, seed: int = 3, refs: list | None = None) -> InpaintJob:
    job = InpaintJob(image=_photo(), mask=_mask(), prompt="a red linen dress", width=SIZE, height=SIZE, seed=seed,
                     steps=steps, guidance=1.0)
    if refs:
        job.extras["references"] = refs
    return job


def _pipe(folder: Path, cls_name: str):
    from studio.runtime.compat import ensure_torchvision

    ensure_torchvision()
    import diffusers

    pipe = getattr(diffusers, cls_name).from_pretrained(str(folder))
    pipe.set_progress_bar_config(disable=True)
    return pipe


# ---- tiny-model equivalence -------------------------------------------------------------------
def test_klein_inpaint_equals_diffusers_pipeline(klein_models: Path) -> None:
    import torch

    from studio.engines.commercial import KleinEngine

    eng = KleinEngine(klein_models, device="cpu", paste_back=False)
    job = _job()
    got = eng.inpaint(job)
    pipe = _pipe(klein_models / "flux2-klein-4b", "Flux2KleinInpaintPipeline")
    want = pipe(prompt=job.prompt, image=job.image, mask_image=job.mask, height=SIZE, width=SIZE, strength=1.0,
                num_inference_steps=2, guidance_scale=1.0,
                generator=torch.Generator("cpu").manual_seed(3)).images[0]
    diff = np.abs(np.asarray(got[0], dtype=int) - np.asarray(want.convert("RGB"), dtype=int)).max()
    assert diff == 0
    # the notice names the model and its licence, and the history row gets it
    assert [n.key for n in got.notices] == ["engine.notice.model_used"]
    assert "Apache-2.0" in got.notices[0].text("ko") and "FLUX.2 [klein] 4B" in got.notices[0].text("ko")
    assert job.extras["model"] == {"label": "FLUX.2 [klein] 4B", "licence": "Apache-2.0", "commercial": True}


def test_klein_reference_inpaint_and_text2image_equal_pipeline(klein_models: Path) -> None:
    import torch

    from studio.engines.commercial import KleinEngine

    eng = KleinEngine(klein_models, device="cpu", paste_back=False)
    product = _photo(7)
    got = eng.inpaint(_job(refs=[product]))
    pipe = _pipe(klein_models / "flux2-klein-4b", "Flux2KleinInpaintPipeline")
    want = pipe(prompt="a red linen dress", image=_photo(), mask_image=_mask(), image_reference=[product], height=SIZE,
                width=SIZE, strength=1.0, num_inference_steps=2, guidance_scale=1.0,
                generator=torch.Generator("cpu").manual_seed(3)).images[0]
    assert np.array_equal(np.asarray(got[0]), np.asarray(want.convert("RGB")))

    t2i = eng.text2image(Text2ImageJob(prompt="a cup of coffee", width=SIZE, height=SIZE, seed=5, steps=2))
    pipe2 = _pipe(klein_models / "flux2-klein-4b", "Flux2KleinPipeline")
    want2 = pipe2(prompt="a cup of coffee", height=SIZE, width=SIZE, num_inference_steps=2, guidance_scale=1.0,
                  generator=torch.Generator("cpu").manual_seed(5)).images[0]
    assert np.array_equal(np.asarray(t2i[0]), np.asarray(want2.convert("RGB")))


def test_klein_keeps_face_and_product_pixels_byte_identical(klein_models: Path) -> None:
    from studio.engines.commercial import KleinEngine

    eng = KleinEngine(klein_models, device="cpu")
    job = _job()
    out = np.asarray(eng.inpaint(job)[0])
    keep = np.asarray(_mask()) == 0
    assert np.array_equal(out[keep], np.asarray(job.image)[keep])
    assert not np.array_equal(out[~keep], np.asarray(job.image)[~keep])  # the masked part was redrawn


def test_klein_progress_and_cancel_within_one_step(klein_models: Path) -> None:
    from studio.engines.commercial import KleinEngine

    eng = KleinEngine(klein_models, device="cpu")
    token = CancelToken()
    steps: list[int] = []

    def progress(step: int, total: int, desc: str = "") -> None:
        steps.append(step)
        if step == 2:
            token.cancel()

    with pytest.raises(CancelledError):
        eng.inpaint(_job(steps=4), progress=progress, cancel=token)
    assert steps == [1, 2]


def test_klein_oom_ladder_steps_down_with_notices(klein_models: Path) -> None:
    import torch

    from studio.engines.commercial import KleinEngine
    from studio.runtime.memory import KLEIN_PROFILE, choose_plan_for

    calls: list[str] = []

    def hook(plan, w: int, h: int) -> None:
        calls.append(plan.name)
        if len(calls) <= 2:
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")

    eng = KleinEngine(klein_models, device="cpu", alloc_hook=hook)
    eng._resolve_device()
    eng.plan = choose_plan_for(KLEIN_PROFILE, 80.0, cuda=True)  # a big card: start from "gpu"
    job = _job()
    out = eng.inpaint(job)
    assert calls == ["gpu", "model_offload", "group_offload"]
    assert [n.key for n in out.notices] == ["engine.notice.plan", "engine.notice.model_used"]
    keep = np.asarray(_mask()) == 0
    assert np.array_equal(np.asarray(out[0])[keep], np.asarray(job.image)[keep])


# ---- real layouts -------------------------------------------------------------------------------
def test_klein_real_layout_validates_and_matches_configs(tmp_path: Path) -> None:
    import real_layouts as RL

    from studio.runtime import weights as W
    from studio.runtime.memory import KLEIN_PROFILE
    from studio.presets import Presets

    folder = RL.write_klein(tmp_path)
    index = W.validate_pipeline_folder(folder, "FLUX.2 [klein] 4B",
                                       ("scheduler", "transformer", "vae", "text_encoder", "tokenizer"))
    assert index["_class_name"] == "Flux2KleinPipeline"
    # the config loads into the real class, and the file holds every tensor it expects
    want = RL.diffusers_tensors("Flux2Transformer2DModel", json.loads((folder / "transformer/config.json").read_text()))
    assert RL.read_header(folder / "transformer" / "diffusion_pytorch_model.safetensors") == want
    # sizes: the memory profile and the catalogue row agree with what the download patterns fetch
    gb = {sub: RL.fetched_bytes(folder, [f"{sub}/*"]) / 1e9 for sub in ("transformer", "text_encoder", "vae")}
    assert gb["transformer"] == pytest.approx(KLEIN_PROFILE.transformer_gb["none"], abs=0.01)
    assert gb["text_encoder"] == pytest.approx(KLEIN_PROFILE.encoder_gb, abs=0.01)
    assert gb["vae"] == pytest.approx(KLEIN_PROFILE.vae_gb, abs=0.01)
    row = Presets(REPO_ROOT / "presets").model("flux2_klein_4b")
    assert RL.fetched_bytes(folder, row.files) / 1e9 == pytest.approx(row.disk_gb, abs=0.1)
    assert row.commercial_use and row.licence == "Apache-2.0"


def test_qwen_edit_real_layout_sizes(tmp_path: Path) -> None:
    import real_layouts as RL

    from studio.runtime.memory import QWEN_EDIT_PROFILE

    folder = RL.write_qwen_edit_transformer(tmp_path)
    assert len(list((folder / "transformer").glob("*.safetensors"))) == 5
    gb = RL.fetched_bytes(folder, ["transformer/*"]) / 1e9
    assert gb == pytest.approx(QWEN_EDIT_PROFILE.transformer_gb["none"], abs=0.01)  # 40.86 GB, as the repo's
    assert RL.fetched_bytes(folder, ["vae/*"]) / 1e9 == pytest.approx(QWEN_EDIT_PROFILE.vae_gb, abs=0.01)


def test_broken_klein_layout_is_refused_in_korean(tmp_path: Path) -> None:
    import real_layouts as RL

    from studio.engines.commercial import KleinEngine

    folder = RL.write_klein(tmp_path, transformer=False)
    eng = KleinEngine(tmp_path, device="cpu")
    with pytest.raises(WeightsError) as info:
        eng.load()
    text = info.value.message("ko")
    assert "transformer" in text and "모델 탭" in text and "FLUX.2 [klein] 4B" in text
    # a truncated weight file is refused too
    (folder / "transformer").mkdir(exist_ok=True)
    (folder / "transformer" / "config.json").write_text(json.dumps(RL.KLEIN_TRANSFORMER))
    (folder / "transformer" / "diffusion_pytorch_model.safetensors").write_bytes(b"\x10\x00")
    with pytest.raises(WeightsError) as info:
        KleinEngine(tmp_path, device="cpu").load()
    assert "다시 내려받" in info.value.message("ko")
    assert not eng.manager.components  # nothing stays claimed after a failed load


def test_broken_qwen_layout_is_refused_in_korean(tmp_path: Path) -> None:
    import real_layouts as RL

    from studio.engines.commercial import QwenEditEngine

    RL.write_qwen_edit_transformer(tmp_path)  # no text encoder, tokenizer or processor: incomplete download
    with pytest.raises(WeightsError) as info:
        QwenEditEngine(tmp_path, device="cpu").load()
    assert "Qwen-Image-Edit-2511" in info.value.message("ko") and "내려받" in info.value.message("ko")


# ---- memory plan table --------------------------------------------------------------------------
@pytest.mark.parametrize("bnb", [True, False])
def test_memory_plan_table_for_each_engine(bnb: bool) -> None:
    from studio.runtime.memory import engine_plan_table

    def table(name: str) -> dict[int, tuple[str, str]]:
        return {gb: (p.name, p.quantize) for gb, p in engine_plan_table(name, can_quantize=bnb)}

    assert table("klein") == {8: ("model_offload", "fp8"), 12: ("model_offload", "none"),
                              16: ("model_offload", "none"), 24: ("gpu", "none"), 80: ("gpu", "none")}
    qwen = table("qwen-edit")
    assert qwen[80] == ("gpu", "none") and qwen[24] == ("model_offload", "fp8")
    assert qwen[16] == (("model_offload", "4bit") if bnb else ("group_offload", "none"))
    assert qwen[12] == ("group_offload", "none") and qwen[8] == ("sequential_offload", "none")
    assert table("flux")[80] == ("gpu", "none") and table("flux")[8] == ("sequential_offload", "none")


def test_fp8_plan_is_plain_torch_and_ladder_keeps_it() -> None:
    from studio.runtime.memory import KLEIN_PROFILE, choose_plan_for, lighter_plans, quantization_config

    plan = choose_plan_for(KLEIN_PROFILE, 8.0, cuda=True, can_quantize=False)
    assert plan.quantize == "fp8" and "memory.note.fp8" in plan.note_keys
    assert quantization_config("fp8", cuda=True) is None  # no bitsandbytes needed
    assert [p.name for p in lighter_plans(plan)] == ["group_offload", "sequential_offload"]
    assert "그래픽카드" in plan.notes("ko")[0]


# ---- the commercial-use switch --------------------------------------------------------------------
def _all_weights(models: Path) -> None:
    """A marker for every engine's weights (the registry decides by a directory scan)."""
    from studio.engines.registry import SPECS

    for spec in SPECS:
        for pattern in spec.weights_any:
            path = models / pattern.replace("*", "")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("{}")


@pytest.mark.parametrize("vram", [8.0, 12.0, 16.0, 24.0, 80.0])
def test_switch_on_walks_every_task_without_noncommercial(tmp_path: Path, monkeypatch, vram: float) -> None:
    from studio.engines import registry as R

    monkeypatch.setattr(R, "cuda_available", lambda: True)
    monkeypatch.setattr(R, "cuda_vram_gb", lambda: vram)
    _all_weights(tmp_path)
    table = R.catalog_commercial()
    on = Settings(models_dir=tmp_path, commercial_only=True)
    for task in TASKS:
        choice = R.auto_choice(task, on)
        spec = R.spec_for(task, choice.name)
        assert R.is_commercial(spec, table), (task, choice.name)
        # even a forced non-commercial engine is not used while the switch is on
        for other in R.specs_for(task):
            if other.needs_weights and not R.is_commercial(other, table):
                forced = on.with_(engine=other.name) if task == "inpaint" else \
                    on.with_(task_engines=((task, other.name),))
                got = R.choose(task, forced)
                assert R.is_commercial(R.spec_for(task, got.name), table)
                assert got.reason_key == "engine.reason.commercial_only"
    # GPU default per card: the best commercial engine that fits
    inpaint = R.auto_choice("inpaint", on).name
    assert inpaint == ("qwen-edit" if vram >= 24 else "klein")
    assert R.auto_choice("text2image", on).name == "klein"


def test_switch_off_allows_noncommercial_and_says_so(tmp_path: Path, monkeypatch) -> None:
    from studio.engines import registry as R

    monkeypatch.setattr(R, "cuda_available", lambda: True)
    monkeypatch.setattr(R, "cuda_vram_gb", lambda: 80.0)
    _all_weights(tmp_path)
    off = Settings(models_dir=tmp_path, commercial_only=False)
    assert R.choose("inpaint", off.with_(engine="flux")).name == "flux"
    assert R.choose("text2image", off.with_(task_engines=(("text2image", "flux-dev"),))).name == "flux-dev"


def test_no_commercial_model_present_says_so_and_offers_download(tmp_path: Path, monkeypatch) -> None:
    from studio.engines import registry as R

    monkeypatch.setattr(R, "cuda_available", lambda: True)
    (tmp_path / "flux-fill").mkdir()
    (tmp_path / "flux-fill" / "model_index.json").write_text("{}")  # only the non-commercial Fill
    on = Settings(models_dir=tmp_path, commercial_only=True)
    choice = R.auto_choice("inpaint", on)
    assert choice.name == "lite"
    gap = R.commercial_gap("inpaint", on)
    assert gap is not None and gap["model_id"] == "flux2_klein_4b"
    assert "상업용 모델" in gap["message"] and "내려받으세요" in gap["message"]
    assert R.commercial_gap("inpaint", on.with_(commercial_only=False)) is None


def test_catalogue_has_licence_and_commercial_flag_for_every_model() -> None:
    from studio.presets import Presets

    models = Presets(REPO_ROOT / "presets").models
    ids = {m.id for m in models}
    for needed in ("flux2_klein_4b", "qwen_image_edit_2511", "ollama_qwen25_7b", "realesrgan_x4plus"):
        assert needed in ids
    for m in models:
        assert m.licence and isinstance(m.commercial_use, bool)
    purposes = {m.purpose for m in models}
    assert {"inpaint", "text2image", "face", "pose", "matting", "video", "upscale", "llm"} <= purposes
    # every engine the registry can load names catalogued models
    from studio.engines.registry import SPECS

    for spec in SPECS:
        assert set(spec.model_ids) <= ids, spec.name


def test_vision_and_upscaler_follow_the_switch(tmp_path: Path) -> None:
    from studio.errors import InputError
    from studio.render.stock_post import allowed_for, find_upscaler
    from studio.vision.toolkit import VisionKit

    up = tmp_path / "upscalers"
    up.mkdir()
    (up / "4x-unknown.pth").write_bytes(b"x" * 10)
    on = Settings(models_dir=tmp_path, commercial_only=True)
    assert find_upscaler(tmp_path, allowed_for(on)) is None
    (up / "RealESRGAN_x4plus.pth").write_bytes(b"x" * 10)
    assert find_upscaler(tmp_path, allowed_for(on)).name == "RealESRGAN_x4plus.pth"
    assert find_upscaler(tmp_path, allowed_for(on.with_(commercial_only=False))).name == "4x-unknown.pth"

    kit = VisionKit.from_settings(on)
    assert kit.commercial_only
    with pytest.raises(InputError) as info:
        kit.cutout(_photo(), prefer="bria-rmbg")
    assert "비상업" in info.value.message("ko")


def test_models_tab_switch_summary_and_flip(tmp_path: Path) -> None:
    from studio.commercial import set_commercial_only, task_models
    from studio.ui.tabs.models import commercial_summary as summary
    from studio.services import build_services

    models = tmp_path / "models"
    models.mkdir()
    (models / "flux-fill").mkdir()
    (models / "flux-fill" / "model_index.json").write_text("{}")
    s = Settings(models_dir=models, outputs_dir=tmp_path / "out", presets_dir=REPO_ROOT / "presets",
                 ollama_host="http://127.0.0.1:9")
    services = build_services(s)
    text = summary(services)
    assert "켜짐" in text and "FLUX.1 Fill [dev]" in text  # says what turning it off would allow
    assert "광고 사진" in text and "내려받으세요" in text  # no commercial inpaint model yet: offer the download
    assert all(row.commercial for row in task_models(services))
    set_commercial_only(services, False)
    assert services.settings.commercial_only is False and services.engines.settings.commercial_only is False
    assert "꺼짐" in summary(services)
    set_commercial_only(services, True)
    assert services.vision.commercial_only


# ---- prompts within the Qwen encoders' limits ------------------------------------------------------
def test_klein_prompt_fits_qwen3_budget_including_chat_template(klein_models: Path) -> None:
    from studio.engines.commercial import KleinEngine
    from studio.text.qwen_prompts import KLEIN_MAX_TOKENS, QwenCounter, fit_qwen_prompt

    eng = KleinEngine(klein_models, device="cpu")
    long = "a red linen dress, " + ", ".join(f"sunlit wooden table number {i}" for i in range(60))
    prompt, notices = eng.fit_prompt(long)
    tok = eng.pipeline.tokenizer
    wrapped = tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                      add_generation_prompt=True, enable_thinking=False)
    n = len(tok(wrapped, add_special_tokens=False)["input_ids"])
    assert n <= KLEIN_MAX_TOKENS < len(tok(long)["input_ids"])  # the pipeline will not cut it
    assert prompt.startswith("a red linen dress")  # the most important part is kept
    assert [x.key for x in notices] == ["prompt.qwen_trimmed"] and "토큰" in notices[0].text("ko")
    assert eng.fit_prompt("a red dress") == ("a red dress", [])
    # without the tokenizer: the UTF-8 byte count is an upper bound of the byte-level BPE count
    est = QwenCounter(None, "klein")
    assert est.count(prompt) >= n
    assert fit_qwen_prompt(long, est).tokens <= KLEIN_MAX_TOKENS


def test_qwen_edit_counter_budget_is_512_prompt_tokens() -> None:
    from studio.text.qwen_prompts import QWEN_EDIT_MAX_TOKENS, QwenCounter, fit_qwen_prompt

    c = QwenCounter(None, "qwen-edit")
    fit = fit_qwen_prompt("a woman holding a bottle, " + "studio light, " * 200, c)
    assert fit.tokens <= QWEN_EDIT_MAX_TOKENS == 512 and fit.counter == "bytes"
    assert c.count("가방") == 6  # Hangul: 3 UTF-8 bytes each, never undercounted


def test_qwen_edit_person_plus_product_equals_diffusers_pipeline(tmp_path: Path, monkeypatch) -> None:
    """Qwen-Image-Edit-2511 reference edit (person + product) on the tiny set: engine == pipeline.
    The pipeline's VAE reference area (a module constant, 1024x1024) is shrunk for the CPU; both
    sides use the same constant, so the comparison is unaffected."""
    import torch

    from studio.engines.commercial import QwenEditEngine
    from studio.engines.tiny_commercial import save_qwen_edit

    folder = save_qwen_edit(tmp_path)
    import diffusers.pipelines.qwenimage.pipeline_qwenimage_edit_plus as plus

    monkeypatch.setattr(plus, "VAE_IMAGE_SIZE", SIZE * SIZE)
    person, product = _photo(), _photo(9)
    pipe = _pipe(folder, "QwenImageEditPlusPipeline")
    want = pipe(image=[person, product], prompt="she holds the bottle", negative_prompt=" ", true_cfg_scale=4.0,
                height=SIZE, width=SIZE, num_inference_steps=2, generator=torch.Generator("cpu").manual_seed(3),
                max_sequence_length=512).images[0]
    eng = QwenEditEngine(tmp_path, device="cpu", paste_back=False)
    job = InpaintJob(image=person, mask=_mask(), prompt="she holds the bottle", width=SIZE, height=SIZE, seed=3,
                     steps=2, guidance=1.0, extras={"references": [product]})
    got = eng.inpaint(job)
    assert np.abs(np.asarray(got[0], dtype=int) - np.asarray(want.convert("RGB"), dtype=int)).max() == 0
    assert job.extras["model"]["label"] == "Qwen-Image-Edit-2511" and job.extras["model"]["commercial"]
    # with paste-back (the default) the person's kept pixels stay byte-identical
    eng2 = QwenEditEngine(tmp_path, device="cpu")
    out = np.asarray(eng2.inpaint(job)[0])
    keep = np.asarray(_mask()) == 0
    assert np.array_equal(out[keep], np.asarray(person)[keep])
    # more than 3 pictures in all is refused before any compute
    job.extras["references"] = [product] * 3
    with pytest.raises(StudioError):
        eng2.inpaint(job)


def test_qwen_edit_masked_inpaint_equals_diffusers_pipeline(tmp_path: Path, monkeypatch) -> None:
    """Qwen-Image-Edit-2511 masked repaint (no references) on the tiny set: engine == pipeline.
    `QwenImageEditInpaintPipeline` always works at a 1024x1024 area (`calculate_dimensions(1024 * 1024,
    ...)` inside __call__); for the CPU that module function is shrunk to the test size on both sides."""
    import torch

    from studio.engines.commercial import QwenEditEngine
    from studio.engines.tiny_commercial import save_qwen_edit

    folder = save_qwen_edit(tmp_path)
    import diffusers.pipelines.qwenimage.pipeline_qwenimage_edit_inpaint as inp

    monkeypatch.setattr(inp, "calculate_dimensions", lambda area, ratio: (SIZE, SIZE, None))
    photo, mask = _photo(), _mask()
    pipe = _pipe(folder, "QwenImageEditInpaintPipeline")
    want = pipe(image=photo, mask_image=mask, prompt="a sunny cafe", negative_prompt=" ", true_cfg_scale=4.0,
                height=SIZE, width=SIZE, strength=1.0, num_inference_steps=2,
                generator=torch.Generator("cpu").manual_seed(5), max_sequence_length=512).images[0]
    eng = QwenEditEngine(tmp_path, device="cpu", paste_back=False)
    job = InpaintJob(image=photo, mask=mask, prompt="a sunny cafe", width=SIZE, height=SIZE, seed=5, steps=2,
                     guidance=1.0)
    got = eng.inpaint(job)
    assert np.abs(np.asarray(got[0], dtype=int) - np.asarray(want.convert("RGB"), dtype=int)).max() == 0
    # with paste-back (the default) every kept pixel is the photo's own
    out = np.asarray(QwenEditEngine(tmp_path, device="cpu").inpaint(job)[0])
    keep = np.asarray(mask) == 0
    assert np.array_equal(out[keep], np.asarray(photo)[keep])
