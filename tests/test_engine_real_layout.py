"""The loader against the real on-disk layouts (`tests/real_layouts.py`): real model_index.json and
config.json files, safetensors headers with the real tensor names and shapes, no data, no GPU, no
download. `pytest -k real_layout` runs these."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

import real_layouts as R
from studio.errors import WeightsError
from studio.runtime import weights as W

HANGUL = re.compile(r"[가-힣]")


@pytest.fixture(scope="module")
def real_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Everything the catalog fetches, in its folders: Fill (diffusers layout), dev, schnell, both ControlNets."""
    models = tmp_path_factory.mktemp("real") / "models"
    R.write_fill(models)
    R.write_t2i(models, "dev")
    R.write_t2i(models, "schnell")
    R.write_controlnet(models, "pro2")
    R.write_controlnet(models, "instantx")
    return models


@pytest.fixture(scope="module")
def single_file_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """BFL's single-file Fill transformer next to a flux-fill/ folder without transformer/."""
    models = tmp_path_factory.mktemp("single") / "models"
    R.write_fill(models, transformer=False)
    R.write_fill_single_file(models)
    return models


def _header_tensors(folder: Path) -> dict[str, tuple[int, ...]]:
    out: dict[str, tuple[int, ...]] = {}
    for f in sorted(folder.glob("*.safetensors")):
        out.update(R.read_header(f))
    return out


def _meta_module(folder: Path, cls) -> dict[str, tuple[int, ...]]:
    """Build `cls` on the meta device from the folder's config.json, as the loader would."""
    import torch

    from studio.runtime.compat import ensure_torchvision

    ensure_torchvision()
    if hasattr(cls, "load_config"):  # diffusers
        config = cls.load_config(str(folder))
        with torch.device("meta"):
            model = cls.from_config(config)
    else:  # transformers
        config = cls.config_class.from_json_file(str(folder / "config.json"))
        with torch.device("meta"):
            model = cls(config)
    return R._meta_tensors(model)


def _expect(fn, key: str, *must: str) -> WeightsError:
    with pytest.raises(WeightsError) as info:
        fn()
    err = info.value
    assert err.key == key
    ko, en = err.message("ko"), err.message("en")
    assert HANGUL.search(ko) and ko != en
    for part in must:
        assert part in ko
    return err


# ---- accepted layouts -------------------------------------------------------------------------
def test_real_layout_fill_folder_is_accepted(real_models: Path) -> None:
    index = W.validate_fill_folder(real_models)
    assert {k for k in index if not k.startswith("_")} == set(R.FLUX_INDEX)
    assert W.use_fill_single_file(real_models) is None


def test_real_layout_single_file_fill_loads_with_the_rest_from_flux_fill(single_file_models: Path) -> None:
    fill = single_file_models / "flux-fill"
    # the repo's model_index.json still lists the transformer; there is no transformer/ folder
    assert "transformer" in json.loads((fill / "model_index.json").read_text())
    assert not (fill / "transformer").exists()
    index = W.validate_fill_folder(single_file_models)
    assert index["transformer"] == ["diffusers", "FluxTransformer2DModel"]
    assert W.use_fill_single_file(single_file_models) == single_file_models / "flux1-fill-dev.safetensors"
    # what the check demanded before: every component the index lists, transformer/ included
    _expect(lambda: W.validate_pipeline_folder(fill, "FLUX.1 Fill [dev]"), "weights.missing_folder", "transformer")


def test_real_layout_single_file_keys_convert_to_the_fill_transformer(single_file_models: Path) -> None:
    """BFL keys -> diffusers keys (diffusers' own converter) == the module built from our Fill config."""
    import torch
    from diffusers import FluxTransformer2DModel
    from diffusers.loaders.single_file_utils import convert_flux_transformer_checkpoint_to_diffusers

    header = R.read_header(single_file_models / "flux1-fill-dev.safetensors")
    assert "double_blocks.0.img_attn.qkv.weight" in header and header["img_in.weight"] == (3072, 384)
    checkpoint = {k: torch.empty(shape, device="meta", dtype=torch.bfloat16) for k, shape in header.items()}
    converted = convert_flux_transformer_checkpoint_to_diffusers(checkpoint)
    with torch.device("meta"):
        model = FluxTransformer2DModel(**W.FLUX_FILL_TRANSFORMER_CONFIG)
    expected = R._meta_tensors(model)
    assert {k: tuple(v.shape) for k, v in converted.items()} == expected


def test_real_layout_dev_and_schnell_take_shared_parts_from_flux_fill(real_models: Path) -> None:
    for kind in ("dev", "schnell"):
        folder = real_models / f"flux-{kind}"
        assert sorted(p.name for p in folder.iterdir()) == ["model_index.json", "scheduler", "transformer"]
        index = W.validate_t2i_folder(real_models, folder, f"FLUX.1 [{kind}]")
        assert {k for k in index if not k.startswith("_")} == set(R.FLUX_INDEX)
        for name in W.SHARED_COMPONENTS:
            assert W.shared_source(real_models, folder, name) == real_models / "flux-fill"
        # what the loader demanded before: the shared folders in its own folder
        _expect(lambda: W.validate_pipeline_folder(folder, kind, ("scheduler", "transformer")),
                "weights.missing_folder", f"flux-{kind}")


def test_real_layout_controlnets_are_found_and_accepted(real_models: Path) -> None:
    assert W.find_controlnet_dir(real_models) == real_models / "controlnet-union"
    for sub in ("controlnet-union", "controlnet-union-instantx"):
        W.validate_component(real_models / sub)


# ---- modules equal the checkpoints ------------------------------------------------------------
@pytest.mark.parametrize("component", ["transformer", "vae", "text_encoder", "text_encoder_2"])
def test_real_layout_modules_match_the_checkpoints(real_models: Path, component: str) -> None:
    fill = real_models / "flux-fill"
    index = json.loads((fill / "model_index.json").read_text())
    cls = W._class_for(index, component)  # the class the loader takes from model_index.json
    built = _meta_module(fill / component, cls)  # tied weights (T5's shared embedding) once, as saved
    assert built == _header_tensors(fill / component)


@pytest.mark.parametrize("sub, config", [("controlnet-union", "CONTROLNET_UNION_PRO2_CONFIG"),
                                         ("controlnet-union-instantx", "CONTROLNET_UNION_INSTANTX_CONFIG")])
def test_real_layout_controlnet_configs_build_the_checkpoints(real_models: Path, sub: str, config: str) -> None:
    """weights.py's ControlNet configs (used to build full-size parts) equal the real config.json."""
    import torch
    from diffusers import FluxControlNetModel

    with torch.device("meta"):
        model = FluxControlNetModel(**getattr(W, config))
    assert R._meta_tensors(model) == _header_tensors(real_models / sub)
    real = json.loads((real_models / sub / "config.json").read_text())
    assert {k: v for k, v in getattr(W, config).items()} == {k: real[k] for k in getattr(W, config)}


def test_real_layout_fill_config_is_the_real_one() -> None:
    real = R.transformer_config("fill")
    cfg = W.FLUX_FILL_TRANSFORMER_CONFIG
    assert {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()} == {k: real[k] for k in cfg}
    assert set(real) - set(cfg) <= {"_class_name", "_diffusers_version"}


@pytest.mark.parametrize("name, real", [("CLIP_L_CONFIG", R.CLIP_CONFIG), ("T5_XXL_CONFIG", R.T5_CONFIG),
                                        ("FLUX_VAE_CONFIG", R.VAE_CONFIG)])
def test_real_layout_shared_part_configs_are_the_real_ones(name: str, real: dict) -> None:
    cfg = getattr(W, name)
    assert {k: cfg[k] for k in cfg if k in real} == {k: real[k] for k in cfg if k in real}
    shape_keys = {"hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size",
                  "d_model", "d_ff", "d_kv", "num_layers", "num_heads", "block_out_channels", "latent_channels",
                  "layers_per_block", "scaling_factor", "shift_factor"}
    assert {k for k in real if k in shape_keys} <= set(cfg)


# ---- broken layouts are rejected with the Korean message --------------------------------------
def _aside(path: Path) -> Path:
    moved = path.with_name(path.name + ".aside")
    path.rename(moved)
    return moved


def test_real_layout_missing_t5_shard_is_rejected(real_models: Path) -> None:
    shard = real_models / "flux-fill" / "text_encoder_2" / "model-00002-of-00002.safetensors"
    moved = _aside(shard)
    try:
        _expect(lambda: W.validate_fill_folder(real_models), "weights.missing_file", "model-00002-of-00002")
    finally:
        moved.rename(shard)


def test_real_layout_lfs_pointer_is_rejected(real_models: Path) -> None:
    shard = real_models / "flux-fill" / "transformer" / "diffusion_pytorch_model-00001-of-00003.safetensors"
    moved = _aside(shard)
    try:
        shard.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 9983040304\n")
        _expect(lambda: W.validate_fill_folder(real_models), "weights.lfs_pointer", "00001-of-00003")
    finally:
        shard.unlink()
        moved.rename(shard)


def test_real_layout_truncated_vae_is_rejected(real_models: Path) -> None:
    vae = real_models / "flux-fill" / "vae" / "diffusion_pytorch_model.safetensors"
    moved = _aside(vae)
    try:
        size = R.write_safetensors(vae, R.read_header(moved))
        with vae.open("r+b") as fh:
            fh.truncate(size // 2)  # an interrupted download
        _expect(lambda: W.validate_fill_folder(real_models), "weights.corrupt", "vae")
    finally:
        vae.unlink()
        moved.rename(vae)


def test_real_layout_missing_text_encoder_folder_is_rejected(real_models: Path) -> None:
    folder = real_models / "flux-fill" / "text_encoder_2"
    moved = _aside(folder)
    try:
        _expect(lambda: W.validate_fill_folder(real_models), "weights.missing_folder", "text_encoder_2")
        # dev/schnell take it from flux-fill/: without it there, they say where it should be
        _expect(lambda: W.validate_t2i_folder(real_models, real_models / "flux-dev", "FLUX.1 [dev]"),
                "weights.no_shared", "text_encoder_2", "flux-fill")
    finally:
        moved.rename(folder)


def test_real_layout_dev_without_fill_says_what_to_fetch(tmp_path: Path) -> None:
    models = tmp_path / "models"
    R.write_t2i(models, "dev")
    _expect(lambda: W.validate_t2i_folder(models, models / "flux-dev", "FLUX.1 [dev]"), "weights.no_shared",
            "flux-fill")


def test_real_layout_single_file_without_fill_folder_is_rejected(tmp_path: Path) -> None:
    models = tmp_path / "models"
    R.write_fill_single_file(models)
    _expect(lambda: W.validate_fill_folder(models), "weights.missing_folder", "flux-fill")


# ---- catalog and tiny set ----------------------------------------------------------------------
@pytest.mark.parametrize("entry_id", ["flux_fill_dev", "flux_dev", "flux_schnell", "controlnet_union_pro2",
                                      "controlnet_union_instantx"])
def test_real_layout_catalog_disk_gb_is_what_the_patterns_fetch(real_models: Path, entry_id: str) -> None:
    from studio.config import REPO_ROOT
    from studio.presets import Presets

    entry = Presets(REPO_ROOT / "presets").model(entry_id)
    fetched = R.fetched_bytes(real_models / entry.local_dir, entry.files) / 1e9
    assert fetched > 1.0
    assert entry.disk_gb == pytest.approx(fetched, abs=0.05), (entry_id, round(fetched, 2))


def test_real_layout_tiny_set_lists_every_component_like_the_real_repos(tmp_path: Path) -> None:
    from studio.engines.tiny import tiny_models_dir

    models = tmp_path / "models"  # a copy of the shared tiny set (written once per machine): it is mutated below
    shutil.copytree(tiny_models_dir(), models)
    for sub in ("flux-fill", "flux-schnell"):
        index = json.loads((models / sub / "model_index.json").read_text())
        # every component the real repo lists, with its class (diffusers also writes its optional
        # IP-adapter slots, image_encoder / feature_extractor, as [null, null])
        listed = {k for k, v in index.items() if not k.startswith("_") and v[0] is not None}
        assert listed == set(R.FLUX_INDEX), sub
        assert all(index[k][1] == R.FLUX_INDEX[k][1] for k in listed if not k.startswith("tokenizer_2")), sub
    # schnell, like the catalog's entry: only its own parts; the rest is shared from flux-fill/
    assert sorted(p.name for p in (models / "flux-schnell").iterdir()) == ["model_index.json", "scheduler",
                                                                           "transformer"]
    W.validate_t2i_folder(models, models / "flux-schnell", "tiny schnell")
    shutil.rmtree(models / "flux-fill" / "vae")
    _expect(lambda: W.validate_t2i_folder(models, models / "flux-schnell", "tiny schnell"), "weights.no_shared",
            "vae")
