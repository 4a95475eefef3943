"""Find, validate and load model weights under `models/`, sharing the big common parts.

Layout (what the downloader writes, and what `studio.engines.tiny` writes for tests):

    models/flux-fill/            diffusers folder: model_index.json, transformer/, vae/,
                                 text_encoder/, text_encoder_2/, tokenizer/, tokenizer_2/, scheduler/
    models/controlnet-union/     config.json + diffusion_pytorch_model.safetensors
    models/flux-schnell/         diffusers folder (FluxPipeline); flux-dev/ likewise
    models/flux1-fill-dev*.safetensors
                                 optional single-file Fill transformer (the rest still comes from
                                 models/flux-fill/)

Validation happens before anything is loaded: a missing file, a truncated or corrupt
safetensors header, or a git-lfs pointer (a ~130-byte text file that starts with
"version https://git-lfs") raises `WeightsError` naming the file and saying how to fix it.

Text encoders, tokenizers and the VAE are loaded once into the model manager's `ComponentCache`
(`studio.runtime.manager`, keyed by (folder, dtype, device)) and reused by every pipeline that
points at the same folder: the Stock tab's text-to-image pipeline takes them from models/flux-fill/
when it is there (FLUX.1 Fill, dev and schnell ship the same CLIP-L, T5-XXL and VAE), so they are
never loaded twice. There is no module-level cache: the caller passes the manager's.
"""

from __future__ import annotations

import importlib
import json
import logging
import struct
from pathlib import Path
from typing import Any

from studio.errors import WeightsError
from studio.runtime.manager import ComponentCache

log = logging.getLogger(__name__)

FLUX_FILL_DIR = "flux-fill"
CONTROLNET_DIR = "controlnet-union"
CONTROLNET_DIRS: tuple[str, ...] = ("controlnet-union", "controlnet-union-instantx")
FLUX_SCHNELL_DIR = "flux-schnell"
FLUX_DEV_DIR = "flux-dev"
FILL_SINGLE_FILE_GLOB = "flux1-fill-dev*.safetensors"
FILL_MODEL = "FLUX.1 Fill [dev]"
SHARED_COMPONENTS: tuple[str, ...] = ("text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "vae")
LFS_PREFIX = b"version https://git-lfs"
MAX_HEADER_BYTES = 100 * 1024 * 1024
WEIGHT_SUFFIXES: tuple[str, ...] = (".safetensors", ".bin", ".pth", ".pt", ".ckpt", ".gguf")

# Published configs of the full-size parts (a downloaded config.json always wins). Used to load a
# single-file Fill checkpoint offline and by the GPU benchmark to build full-size random models.
FLUX_FILL_TRANSFORMER_CONFIG: dict[str, Any] = {
    "patch_size": 1, "in_channels": 384, "out_channels": 64, "num_layers": 19, "num_single_layers": 38,
    "attention_head_dim": 128, "num_attention_heads": 24, "joint_attention_dim": 4096,
    "pooled_projection_dim": 768, "guidance_embeds": True, "axes_dims_rope": [16, 56, 56],
}
CONTROLNET_UNION_PRO2_CONFIG: dict[str, Any] = {
    "patch_size": 1, "in_channels": 64, "num_layers": 6, "num_single_layers": 0, "attention_head_dim": 128,
    "num_attention_heads": 24, "joint_attention_dim": 4096, "pooled_projection_dim": 768,
    "guidance_embeds": True, "axes_dims_rope": [16, 56, 56], "num_mode": None,
}
CONTROLNET_UNION_INSTANTX_CONFIG: dict[str, Any] = {
    **CONTROLNET_UNION_PRO2_CONFIG, "num_layers": 5, "num_single_layers": 10, "num_mode": 10,
}

# CLIP-L, T5-XXL and VAE: the published config.json of black-forest-labs/FLUX.1-dev (= FLUX.1-Fill-dev)
# text_encoder/, text_encoder_2/ and vae/ (metadata keys dropped). The GPU benchmark builds
# full-size random parts from them; tests/test_engine_real_layout.py checks them.
CLIP_L_CONFIG: dict[str, Any] = {
    "attention_dropout": 0.0, "bos_token_id": 0, "dropout": 0.0, "eos_token_id": 2, "hidden_act": "quick_gelu",
    "hidden_size": 768, "initializer_factor": 1.0, "initializer_range": 0.02, "intermediate_size": 3072,
    "layer_norm_eps": 1e-05, "max_position_embeddings": 77, "num_attention_heads": 12, "num_hidden_layers": 12,
    "pad_token_id": 1, "projection_dim": 768, "vocab_size": 49408,
}
T5_XXL_CONFIG: dict[str, Any] = {
    "classifier_dropout": 0.0, "d_ff": 10240, "d_kv": 64, "d_model": 4096, "decoder_start_token_id": 0,
    "dense_act_fn": "gelu_new", "dropout_rate": 0.1, "eos_token_id": 1, "feed_forward_proj": "gated-gelu",
    "initializer_factor": 1.0, "is_encoder_decoder": True, "is_gated_act": True, "layer_norm_epsilon": 1e-06,
    "num_decoder_layers": 24, "num_heads": 64, "num_layers": 24, "output_past": True, "pad_token_id": 0,
    "relative_attention_max_distance": 128, "relative_attention_num_buckets": 32, "tie_word_embeddings": False,
    "use_cache": True, "vocab_size": 32128,
}
FLUX_VAE_CONFIG: dict[str, Any] = {
    "act_fn": "silu", "block_out_channels": [128, 256, 512, 512], "down_block_types": ["DownEncoderBlock2D"] * 4,
    "force_upcast": True, "in_channels": 3, "latent_channels": 16, "latents_mean": None, "latents_std": None,
    "layers_per_block": 2, "mid_block_add_attention": True, "norm_num_groups": 32, "out_channels": 3,
    "sample_size": 1024, "scaling_factor": 0.3611, "shift_factor": 0.1159, "up_block_types": ["UpDecoderBlock2D"] * 4,
    "use_post_quant_conv": False, "use_quant_conv": False,
}


# --------------------------------------------------------------------------------------------
# Validation (no torch needed)
# --------------------------------------------------------------------------------------------
def is_lfs_pointer(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(len(LFS_PREFIX)) == LFS_PREFIX
    except OSError:
        return False


def validate_weight_file(path: Path, model: str = "") -> None:
    """A weights file exists, is not a git-lfs pointer and (for safetensors) has a sane header."""
    model = model or path.parent.name
    if not path.is_file():
        raise WeightsError("weights.missing_file", path=str(path), model=model)
    if is_lfs_pointer(path):
        raise WeightsError("weights.lfs_pointer", path=str(path), model=model)
    if path.suffix != ".safetensors":
        return
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise WeightsError("weights.corrupt", path=str(path), model=model, why=f"only {size} bytes")
        (n,) = struct.unpack("<Q", head)
        if n == 0 or n > MAX_HEADER_BYTES or n > size - 8:
            raise WeightsError("weights.corrupt", path=str(path), model=model, why="bad safetensors header")
        raw = fh.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise WeightsError("weights.corrupt", path=str(path), model=model, why="unreadable safetensors header") from None
    if not isinstance(header, dict):
        raise WeightsError("weights.corrupt", path=str(path), model=model, why="bad safetensors header")
    end = max((int(v["data_offsets"][1]) for k, v in header.items()
               if k != "__metadata__" and isinstance(v, dict) and "data_offsets" in v), default=0)
    if 8 + n + end > size:
        raise WeightsError("weights.corrupt", path=str(path), model=model,
                           why=f"truncated: {size} of {8 + n + end} bytes")


def _read_json(path: Path, model: str) -> dict:
    if not path.is_file():
        raise WeightsError("weights.missing_file", path=str(path), model=model)
    if is_lfs_pointer(path):
        raise WeightsError("weights.lfs_pointer", path=str(path), model=model)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WeightsError("weights.bad_index", path=str(path), model=model, why=str(exc)[:80]) from None
    if not isinstance(data, dict):
        raise WeightsError("weights.bad_index", path=str(path), model=model, why="not a JSON object")
    return data


def validate_component(folder: Path, model: str = "") -> None:
    """One component subfolder (transformer/, vae/, text_encoder/, tokenizer/...) or a model folder."""
    model = model or folder.parent.name
    if not folder.is_dir():
        raise WeightsError("weights.missing_folder", path=str(folder), model=model)
    files = [p for p in folder.iterdir() if p.is_file()]
    for p in files:  # git-lfs pointers hide in tokenizers (tokenizer.json, spiece.model) too
        if p.stat().st_size < 1024 and is_lfs_pointer(p):
            raise WeightsError("weights.lfs_pointer", path=str(p), model=model)
    indexes = [p for p in files if p.name.endswith(".safetensors.index.json") or p.name.endswith(".bin.index.json")]
    for index in indexes:
        shards = sorted(set(_read_json(index, model).get("weight_map", {}).values()))
        for shard in shards:
            validate_weight_file(folder / shard, model)
    if not indexes:
        weights = [p for p in files if p.suffix in WEIGHT_SUFFIXES]
        for p in weights:
            validate_weight_file(p, model)
        if not weights and _expects_weights(folder):
            expected = "model.safetensors" if folder.name.startswith("text_encoder") else "diffusion_pytorch_model.safetensors"
            raise WeightsError("weights.missing_file", path=str(folder / expected), model=model)
    for p in files:
        if p.suffix == ".json":
            _read_json(p, model)


def _expects_weights(folder: Path) -> bool:
    """Model folders (a config.json, not a tokenizer or scheduler) must hold weights."""
    return (folder / "config.json").is_file() and not folder.name.startswith(("tokenizer", "scheduler"))


def validate_pipeline_folder(folder: Path, model: str = "", required: tuple[str, ...] = (),
                             skip: tuple[str, ...] = ()) -> dict:
    """A diffusers pipeline folder: model_index.json and every component it lists (except `skip`:
    components that come from elsewhere, e.g. a single-file transformer or the shared text
    encoders of models/flux-fill/). Returns the index."""
    model = model or folder.name
    if not folder.is_dir():
        raise WeightsError("weights.missing_folder", path=str(folder), model=model)
    index = _read_json(folder / "model_index.json", model)
    for name, value in index.items():
        if name.startswith("_") or name in skip or not isinstance(value, list) or value[0] is None:
            continue
        validate_component(folder / name, model)
    for name in required:
        value = index.get(name)
        if not (isinstance(value, list) and value[0] is not None):
            raise WeightsError("weights.missing_folder", path=str(folder / name), model=model)
    return index


def validate_fill_folder(models_dir: Path) -> dict:
    """models/flux-fill/ for the Fill engine. With a single-file transformer
    (models/flux1-fill-dev*.safetensors) and no flux-fill/transformer/, the transformer is not
    demanded there: the real repo's model_index.json still lists it."""
    fill = models_dir / FLUX_FILL_DIR
    single = use_fill_single_file(models_dir)
    skip = ("transformer",) if single is not None else ()
    required = ("scheduler", *SHARED_COMPONENTS) + (() if skip else ("transformer",))
    index = validate_pipeline_folder(fill, FILL_MODEL, required, skip=skip)
    if single is not None and skip:
        validate_weight_file(single, FILL_MODEL)
    return index


def validate_t2i_folder(models_dir: Path, folder: Path, model: str) -> dict:
    """models/flux-schnell/ or flux-dev/: its own transformer and scheduler; the text encoders,
    tokenizers and VAE may be absent there (the catalog fetches only the parts that are not
    shared) and then come from models/flux-fill/."""
    absent = tuple(n for n in SHARED_COMPONENTS if not (folder / n).is_dir())
    index = validate_pipeline_folder(folder, model, ("scheduler", "transformer"), skip=absent)
    fill = models_dir / FLUX_FILL_DIR
    for name in absent:
        if not has_component(fill, name):
            raise WeightsError("weights.no_shared", component=name, path=str(folder))
        validate_component(fill / name, FILL_MODEL)
    return index


def has_weights(folder: Path) -> bool:
    """A component folder holding weight files (not just a config.json)."""
    return folder.is_dir() and any(p.is_file() and (p.suffix in WEIGHT_SUFFIXES or p.name.endswith(".index.json"))
                                   for p in folder.iterdir())


def use_fill_single_file(models_dir: Path) -> Path | None:
    """The single-file Fill transformer to load, when there is one and flux-fill/transformer/ has no weights."""
    single = fill_single_file(models_dir)
    if single is None or has_weights(models_dir / FLUX_FILL_DIR / "transformer"):
        return None
    return single


def has_component(folder: Path, name: str) -> bool:
    try:
        index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return (folder / name).is_dir()
    value = index.get(name)
    return isinstance(value, list) and value[0] is not None and (folder / name).is_dir()


def fill_single_file(models_dir: Path) -> Path | None:
    files = sorted(models_dir.glob(FILL_SINGLE_FILE_GLOB))
    return files[0] if files else None


def find_controlnet_dir(models_dir: Path) -> Path | None:
    for name in CONTROLNET_DIRS:
        folder = models_dir / name
        if (folder / "config.json").is_file():
            return folder
    return None


# --------------------------------------------------------------------------------------------
# Loading (imports torch / diffusers / transformers lazily)
# --------------------------------------------------------------------------------------------
def _class_for(index: dict, name: str) -> Any:
    """The class model_index.json names for a component, e.g. ["transformers", "T5EncoderModel"]."""
    library, class_name = index[name]
    return getattr(importlib.import_module(library), class_name)


def _load(cls: Any, folder: Path, model: str, **kwargs: Any) -> Any:
    try:
        return cls.from_pretrained(str(folder), local_files_only=True, **kwargs)
    except (OSError, ValueError, RuntimeError, KeyError, EnvironmentError) as exc:
        raise WeightsError("weights.load_failed", path=str(folder), model=model, why=str(exc)[:200]) from exc


def load_component(folder: Path, name: str, dtype: Any, device: Any, cache: ComponentCache,
                   model: str = "", holder: str = "") -> Any:
    """Load one shared component (`text_encoder`, `tokenizer_2`, `vae`...) of a pipeline folder."""
    from studio.runtime.compat import ensure_torchvision

    ensure_torchvision()
    model = model or folder.name
    index = _read_json(folder / "model_index.json", model)
    cls = _class_for(index, name)
    sub = folder / name
    is_tokenizer = name.startswith("tokenizer")

    def loader() -> Any:
        validate_component(sub, model)
        if is_tokenizer:
            return _load(cls, sub, model)
        obj = _load(cls, sub, model, torch_dtype=dtype)
        obj.requires_grad_(False)
        obj.eval()
        if str(device) != "cpu":
            obj.to(device)
        return obj

    return cache.get(sub, None if is_tokenizer else dtype, "any" if is_tokenizer else device, loader, holder)


def shared_source(models_dir: Path, own: Path, name: str) -> Path:
    """Where a shared component comes from: models/flux-fill/ if it has it, else the pipeline's own folder."""
    fill = models_dir / FLUX_FILL_DIR
    for folder in (fill, own):
        if has_component(folder, name):
            return folder
    raise WeightsError("weights.no_shared", component=name, path=str(own))


def load_shared_components(models_dir: Path, own: Path, dtype: Any, device: Any, cache: ComponentCache,
                           holder: str = "") -> dict[str, Any]:
    return {name: load_component(shared_source(models_dir, own, name), name, dtype, device, cache, holder=holder)
            for name in SHARED_COMPONENTS}


def load_scheduler(folder: Path, model: str = "") -> Any:
    from studio.runtime.compat import ensure_torchvision

    ensure_torchvision()
    model = model or folder.name
    index = _read_json(folder / "model_index.json", model)
    cls = _class_for(index, "scheduler")
    _read_json(folder / "scheduler" / "scheduler_config.json", model)
    try:
        return cls.from_pretrained(str(folder), subfolder="scheduler", local_files_only=True)
    except (OSError, ValueError) as exc:
        raise WeightsError("weights.load_failed", path=str(folder / "scheduler"), model=model, why=str(exc)[:200]) from exc


def load_transformer(folder: Path, dtype: Any, quantization_config: Any = None, model: str = "",
                     single_file: Path | None = None) -> Any:
    """The (Fill or text-to-image) transformer: from `folder/transformer/`, or a single file."""
    from studio.runtime.compat import ensure_torchvision

    ensure_torchvision()
    from diffusers import FluxTransformer2DModel

    model = model or folder.name
    kwargs: dict[str, Any] = {"torch_dtype": dtype}
    if quantization_config is not None:
        kwargs["quantization_config"] = quantization_config
    if single_file is not None:
        validate_weight_file(single_file, model)
        config_dir = folder if (folder / "transformer" / "config.json").is_file() else _write_fill_config(single_file.parent)
        try:
            return FluxTransformer2DModel.from_single_file(str(single_file), config=str(config_dir),
                                                           subfolder="transformer", local_files_only=True, **kwargs)
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            raise WeightsError("weights.load_failed", path=str(single_file), model=model, why=str(exc)[:200]) from exc
    validate_component(folder / "transformer", model)
    return _load(FluxTransformer2DModel, folder / "transformer", model, **kwargs)


def _write_fill_config(models_dir: Path) -> Path:
    """A config folder for single-file loading offline (diffusers would fetch it from the Hub)."""
    target = models_dir / ".configs" / FLUX_FILL_DIR
    cfg = target / "transformer" / "config.json"
    if not cfg.is_file():
        cfg.parent.mkdir(parents=True, exist_ok=True)
        body = {"_class_name": "FluxTransformer2DModel", **FLUX_FILL_TRANSFORMER_CONFIG}
        cfg.write_text(json.dumps(body, indent=2), encoding="utf-8")
    return target


def load_controlnet(folder: Path, dtype: Any, model: str = "") -> Any:
    from studio.runtime.compat import ensure_torchvision

    ensure_torchvision()
    from diffusers import FluxControlNetModel

    model = model or folder.name
    validate_component(folder, model)
    _read_json(folder / "config.json", model)
    return _load(FluxControlNetModel, folder, model, torch_dtype=dtype)
