"""Weights under models/: validation messages (missing, corrupt, git-lfs pointer), the shared
component cache, the tiny set saved and loaded through the real loader, single-file transformer."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.errors import WeightsError

LFS = ("version https://git-lfs.github.com/spec/v1\n"
       "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 23782506688\n")


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from studio.engines.tiny import save_tiny_models

    return save_tiny_models(tmp_path_factory.mktemp("weights") / "models")


@pytest.fixture
def models(saved: Path, tmp_path: Path) -> Path:
    """A private copy the test may break."""
    target = tmp_path / "models"
    shutil.copytree(saved, target)
    return target


def _job(size: int = 64):
    from skimage import data

    from studio.engines.base import InpaintJob

    image = Image.fromarray(data.coffee()).resize((size, size))
    m = np.zeros((size, size), np.uint8)
    m[:, size // 2:] = 255
    return InpaintJob(image=image, mask=Image.fromarray(m, "L"), prompt="coffee cup on a marble table",
                      width=size, height=size, steps=2, control_image=None)


def _engine(models: Path):
    from studio.engines.flux_fill import FluxFillEngine

    return FluxFillEngine(models, device="cpu", max_sequence_length=32)


def _expect(models: Path, key: str, name_part: str) -> WeightsError:
    with pytest.raises(WeightsError) as info:
        _engine(models).inpaint(_job())
    err = info.value
    assert err.key == key
    ko = err.message("ko")
    assert name_part in ko and name_part in err.message("en")
    assert any("\uac00" <= ch <= "\ud7a3" for ch in ko)  # Korean text
    return err


def test_saved_layout_matches_real_weights(saved: Path) -> None:
    index = json.loads((saved / "flux-fill" / "model_index.json").read_text())
    assert index["_class_name"] == "FluxFillPipeline"
    for name in ("transformer", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "scheduler"):
        assert (saved / "flux-fill" / name).is_dir(), name
    cfg = json.loads((saved / "flux-fill" / "transformer" / "config.json").read_text())
    vae = json.loads((saved / "flux-fill" / "vae" / "config.json").read_text())
    lat, vsf = vae["latent_channels"], 2 ** (len(vae["block_out_channels"]) - 1)
    assert cfg["in_channels"] == 4 * lat + 4 * lat + 4 * vsf**2
    assert cfg["num_layers"] == 1 and cfg["num_single_layers"] == 1
    cn = json.loads((saved / "controlnet-union" / "config.json").read_text())
    assert cn["in_channels"] == 4 * lat and cn["num_mode"] == 10
    assert (saved / "controlnet-union" / "diffusion_pytorch_model.safetensors").is_file()


def test_tiny_controlnet_projections_are_not_zero() -> None:
    from studio.engines.tiny import build_controlnet

    net = build_controlnet()
    assert float(net.controlnet_blocks[0].weight.detach().abs().sum()) > 0
    assert float(net.controlnet_x_embedder.weight.detach().abs().sum()) > 0


def test_loads_through_the_same_loader_and_runs(models: Path) -> None:
    eng = _engine(models)
    out = eng.inpaint(_job())
    assert out[0].size == (64, 64) and out[0].mode == "RGB"
    assert eng.pipeline.controlnet is not None
    from transformers import PreTrainedTokenizerFast

    from studio.engines.tiny import _t5_vocab

    tok = eng.pipeline.tokenizer_2
    assert isinstance(tok, PreTrainedTokenizerFast)
    vocab = _t5_vocab()
    assert tok("Coffee cup").input_ids == [vocab["coffee"], vocab["cup"], vocab["</s>"]]


def test_missing_folder(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    _expect(tmp_path / "models", "weights.missing_folder", "flux-fill")


def test_missing_weight_file(models: Path) -> None:
    (models / "flux-fill" / "vae" / "diffusion_pytorch_model.safetensors").unlink()
    err = _expect(models, "weights.missing_file", "diffusion_pytorch_model.safetensors")
    assert "vae" in err.message("ko")


def test_missing_component_folder(models: Path) -> None:
    shutil.rmtree(models / "flux-fill" / "text_encoder_2")
    _expect(models, "weights.missing_folder", "text_encoder_2")


def test_missing_shard_listed_in_index(models: Path) -> None:
    folder = models / "flux-fill" / "transformer"
    (folder / "diffusion_pytorch_model.safetensors").rename(folder / "diffusion_pytorch_model-00001-of-00002.safetensors")
    index = {"metadata": {}, "weight_map": {"a": "diffusion_pytorch_model-00001-of-00002.safetensors",
                                            "b": "diffusion_pytorch_model-00002-of-00002.safetensors"}}
    (folder / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps(index))
    _expect(models, "weights.missing_file", "00002-of-00002")


def test_git_lfs_pointer_weights(models: Path) -> None:
    (models / "flux-fill" / "transformer" / "diffusion_pytorch_model.safetensors").write_text(LFS)
    err = _expect(models, "weights.lfs_pointer", "diffusion_pytorch_model.safetensors")
    assert "git lfs pull" in err.message("ko")


def test_git_lfs_pointer_tokenizer(models: Path) -> None:
    (models / "flux-fill" / "tokenizer_2" / "tokenizer.json").write_text(LFS)
    _expect(models, "weights.lfs_pointer", "tokenizer.json")


def test_corrupt_safetensors_header(models: Path) -> None:
    path = models / "controlnet-union" / "diffusion_pytorch_model.safetensors"
    path.write_bytes(struct.pack("<Q", 10**12) + b"garbage")
    _expect(models, "weights.corrupt", "controlnet-union")


def test_truncated_safetensors(models: Path) -> None:
    path = models / "flux-fill" / "text_encoder" / "model.safetensors"
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    err = _expect(models, "weights.corrupt", "model.safetensors")
    assert "truncated" in err.message("en")


def test_unreadable_header_json(models: Path) -> None:
    path = models / "flux-fill" / "vae" / "diffusion_pytorch_model.safetensors"
    path.write_bytes(struct.pack("<Q", 6) + b"{nope!" + b"\0" * 32)
    _expect(models, "weights.corrupt", "vae")


def test_component_cache_loads_shared_parts_once(saved: Path) -> None:
    import torch

    from studio.runtime.weights import ComponentCache, load_shared_components

    cache = ComponentCache()
    fill = saved / "flux-fill"
    a = load_shared_components(saved, fill, torch.float32, "cpu", cache)
    b = load_shared_components(saved, fill, torch.float32, "cpu", cache)
    assert all(a[k] is b[k] for k in a)
    assert cache.loads == 5 and cache.hits == 5
    c = load_shared_components(saved, fill, torch.float64, "cpu", cache)  # another dtype is another entry
    assert c["text_encoder"] is not a["text_encoder"] and c["tokenizer"] is a["tokenizer"]
    assert cache.evict(a["vae"]) == 1 and len(cache) == 7


def test_single_file_transformer(models: Path) -> None:
    """A single-file Fill checkpoint next to the diffusers folder (the rest still comes from it)."""
    from safetensors.torch import save_file

    from studio.engines.tiny import build_fill_transformer

    ref_out = _engine(models).inpaint(_job())[0]
    folder = models / "flux-fill"
    # diffusers-keyed single file: from_single_file accepts it with the folder's config
    state = {k: v.contiguous() for k, v in build_fill_transformer().state_dict().items()}
    save_file(state, str(models / "flux1-fill-dev-tiny.safetensors"))
    shutil.move(str(folder / "transformer" / "diffusion_pytorch_model.safetensors"), str(models / "moved.bin.bak"))
    # as in the real repo, model_index.json still lists the transformer (its weights are the single file)
    assert json.loads((folder / "model_index.json").read_text())["transformer"][0] == "diffusers"
    out = _engine(models).inpaint(_job())[0]
    assert np.array_equal(np.asarray(out), np.asarray(ref_out))
