"""The real on-disk layouts of the FLUX checkpoints, rebuilt without their weights.

Configs are those the real repos publish (FLUX.1 Fill [dev], FLUX.1 [dev] / [schnell], the VAE,
CLIP-L and T5-XXL text encoders, InstantX Union and Shakker-Labs Union Pro 2.0 ControlNets):
BFL's FluxParams for Fill (in 384, out 64, hidden 3072, 24 heads, 19 + 38 blocks, axes
16/56/56), the InstantX config.json, Pro 2.0's card ("6 double blocks + 0 single blocks, mode
embedding removed"). Weight files are safetensors with the real tensor names, shapes and dtype
(bf16) and no data: the header is written, then the file is extended to its full size with
`truncate` (sparse: no disk used). The tensor tables come from the model classes the repos were
saved with, built on the meta device from those configs; the single-file Fill checkpoint uses
BFL's own key layout (double_blocks.N.img_attn.qkv ... final_layer.adaLN_modulation.1).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

BF16 = 2

FLUX_INDEX = {
    "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
    "text_encoder": ["transformers", "CLIPTextModel"],
    "text_encoder_2": ["transformers", "T5EncoderModel"],
    "tokenizer": ["transformers", "CLIPTokenizer"],
    "tokenizer_2": ["transformers", "T5TokenizerFast"],
    "transformer": ["diffusers", "FluxTransformer2DModel"],
    "vae": ["diffusers", "AutoencoderKL"],
}


def model_index(pipeline: str) -> dict:
    return {"_class_name": pipeline, "_diffusers_version": "0.32.0.dev0", **FLUX_INDEX}


def transformer_config(kind: str) -> dict:
    """FluxTransformer2DModel config.json: Fill (384 in / 64 out), dev (guidance), schnell (none)."""
    base = {"_class_name": "FluxTransformer2DModel", "_diffusers_version": "0.32.0.dev0", "attention_head_dim": 128,
            "axes_dims_rope": [16, 56, 56], "guidance_embeds": kind != "schnell", "in_channels": 64,
            "joint_attention_dim": 4096, "num_attention_heads": 24, "num_layers": 19, "num_single_layers": 38,
            "patch_size": 1, "pooled_projection_dim": 768}
    if kind == "fill":
        base.update(in_channels=384, out_channels=64)
    return base


VAE_CONFIG = {
    "_class_name": "AutoencoderKL", "_diffusers_version": "0.30.0.dev0", "act_fn": "silu",
    "block_out_channels": [128, 256, 512, 512], "down_block_types": ["DownEncoderBlock2D"] * 4,
    "force_upcast": True, "in_channels": 3, "latent_channels": 16, "latents_mean": None, "latents_std": None,
    "layers_per_block": 2, "mid_block_add_attention": True, "norm_num_groups": 32, "out_channels": 3,
    "sample_size": 1024, "scaling_factor": 0.3611, "shift_factor": 0.1159,
    "up_block_types": ["UpDecoderBlock2D"] * 4, "use_post_quant_conv": False, "use_quant_conv": False,
}
CLIP_CONFIG = {
    "_name_or_path": "openai/clip-vit-large-patch14", "architectures": ["CLIPTextModel"], "attention_dropout": 0.0,
    "bos_token_id": 0, "dropout": 0.0, "eos_token_id": 2, "hidden_act": "quick_gelu", "hidden_size": 768,
    "initializer_factor": 1.0, "initializer_range": 0.02, "intermediate_size": 3072, "layer_norm_eps": 1e-05,
    "max_position_embeddings": 77, "model_type": "clip_text_model", "num_attention_heads": 12,
    "num_hidden_layers": 12, "pad_token_id": 1, "projection_dim": 768, "torch_dtype": "bfloat16",
    "vocab_size": 49408,
}
T5_CONFIG = {
    "architectures": ["T5EncoderModel"], "d_ff": 10240, "d_kv": 64, "d_model": 4096, "decoder_start_token_id": 0,
    "dense_act_fn": "gelu_new", "dropout_rate": 0.1, "eos_token_id": 1, "feed_forward_proj": "gated-gelu",
    "initializer_factor": 1.0, "is_encoder_decoder": True, "is_gated_act": True, "layer_norm_epsilon": 1e-06,
    "model_type": "t5", "num_decoder_layers": 24, "num_heads": 64, "num_layers": 24, "output_past": True,
    "pad_token_id": 0, "relative_attention_max_distance": 128, "relative_attention_num_buckets": 32,
    "tie_word_embeddings": False, "torch_dtype": "bfloat16", "use_cache": True, "vocab_size": 32128,
}
SCHEDULER_DEV = {"_class_name": "FlowMatchEulerDiscreteScheduler", "_diffusers_version": "0.30.0.dev0",
                 "base_image_seq_len": 256, "base_shift": 0.5, "max_image_seq_len": 4096, "max_shift": 1.15,
                 "num_train_timesteps": 1000, "shift": 3.0, "use_dynamic_shifting": True}
SCHEDULER_SCHNELL = {"_class_name": "FlowMatchEulerDiscreteScheduler", "_diffusers_version": "0.30.0.dev0",
                     "base_image_seq_len": 256, "base_shift": 0.5, "max_image_seq_len": 4096, "max_shift": 1.15,
                     "num_train_timesteps": 1000, "shift": 1.0, "use_dynamic_shifting": False}
CONTROLNET_INSTANTX = {
    "_class_name": "FluxControlNetModel", "_diffusers_version": "0.30.0.dev0", "attention_head_dim": 128,
    "axes_dims_rope": [16, 56, 56], "guidance_embeds": True, "in_channels": 64, "joint_attention_dim": 4096,
    "num_attention_heads": 24, "num_layers": 5, "num_mode": 10, "num_single_layers": 10, "patch_size": 1,
    "pooled_projection_dim": 768,
}
CONTROLNET_PRO2 = {**CONTROLNET_INSTANTX, "_diffusers_version": "0.33.0.dev0", "num_layers": 6,
                   "num_mode": None, "num_single_layers": 0}
TOKENIZER_FILES = {
    "tokenizer": {"tokenizer_config.json": {"tokenizer_class": "CLIPTokenizer", "model_max_length": 77},
                  "special_tokens_map.json": {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>"},
                  "vocab.json": {"<|startoftext|>": 49406, "<|endoftext|>": 49407}, "merges.txt": "#version: 0.2\n"},
    "tokenizer_2": {"tokenizer_config.json": {"tokenizer_class": "T5Tokenizer", "model_max_length": 512},
                    "special_tokens_map.json": {"eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"},
                    "tokenizer.json": {"version": "1.0"}, "spiece.model": b"\x0a" * 4096},
}


# --------------------------------------------------------------------------------------------
# tensor tables
# --------------------------------------------------------------------------------------------
def _meta_tensors(module: Any) -> dict[str, tuple[int, ...]]:
    """Names and shapes as `save_pretrained` writes them (tied copies once)."""
    seen: dict[int, str] = {}
    out: dict[str, tuple[int, ...]] = {}
    for name, tensor in module.state_dict(keep_vars=True).items():
        key = id(tensor)
        if key in seen:
            continue
        seen[key] = name
        out[name] = tuple(tensor.shape)
    return out


def _ensure() -> None:
    from studio.runtime.compat import ensure_torchvision

    ensure_torchvision()


def diffusers_tensors(cls_name: str, config: dict) -> dict[str, tuple[int, ...]]:
    _ensure()
    import diffusers
    import torch

    cls = getattr(diffusers, cls_name)
    cfg = {k: v for k, v in config.items() if not k.startswith("_")}
    with torch.device("meta"):
        return _meta_tensors(cls(**cfg))


def transformers_tensors(cls_name: str, config: dict) -> dict[str, tuple[int, ...]]:
    _ensure()
    import torch
    import transformers

    config_cls = transformers.CLIPTextConfig if cls_name == "CLIPTextModel" else transformers.T5Config
    cfg = config_cls(**{k: v for k, v in config.items() if k not in ("architectures", "_name_or_path")})
    with torch.device("meta"):
        model = getattr(transformers, cls_name)(cfg)
    tensors = _meta_tensors(model)
    if cls_name == "T5EncoderModel":  # the repo's shards hold the shared embedding once
        tensors.pop("encoder.embed_tokens.weight", None)
    return tensors


def bfl_fill_tensors(hidden: int = 3072, heads: int = 24, depth: int = 19, single: int = 38,
                     in_channels: int = 384, out_channels: int = 64, vec: int = 768, context: int = 4096,
                     mlp_ratio: float = 4.0) -> dict[str, tuple[int, ...]]:
    """flux1-fill-dev.safetensors: BFL's key layout (src/flux/model.py, modules/layers.py)."""
    mlp = int(hidden * mlp_ratio)
    head = hidden // heads
    t: dict[str, tuple[int, ...]] = {}

    def linear(name: str, i: int, o: int) -> None:
        t[f"{name}.weight"] = (o, i)
        t[f"{name}.bias"] = (o,)

    linear("img_in", in_channels, hidden)
    for emb, dim in (("time_in", 256), ("vector_in", vec), ("guidance_in", 256)):
        linear(f"{emb}.in_layer", dim, hidden)
        linear(f"{emb}.out_layer", hidden, hidden)
    linear("txt_in", context, hidden)
    for i in range(depth):
        for s in ("img", "txt"):
            p = f"double_blocks.{i}.{s}"
            linear(f"{p}_mod.lin", hidden, 6 * hidden)
            linear(f"{p}_attn.qkv", hidden, 3 * hidden)
            t[f"{p}_attn.norm.query_norm.scale"] = (head,)
            t[f"{p}_attn.norm.key_norm.scale"] = (head,)
            linear(f"{p}_attn.proj", hidden, hidden)
            linear(f"{p}_mlp.0", hidden, mlp)
            linear(f"{p}_mlp.2", mlp, hidden)
    for i in range(single):
        p = f"single_blocks.{i}"
        linear(f"{p}.linear1", hidden, 3 * hidden + mlp)
        linear(f"{p}.linear2", hidden + mlp, hidden)
        t[f"{p}.norm.query_norm.scale"] = (head,)
        t[f"{p}.norm.key_norm.scale"] = (head,)
        linear(f"{p}.modulation.lin", hidden, 3 * hidden)
    linear("final_layer.linear", hidden, out_channels)
    linear("final_layer.adaLN_modulation.1", hidden, 2 * hidden)
    return t


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------
def nbytes(shape: tuple[int, ...], itemsize: int = BF16) -> int:
    n = itemsize
    for d in shape:
        n *= d
    return n


def write_safetensors(path: Path, tensors: dict[str, tuple[int, ...]], dtype: str = "BF16") -> int:
    """Header with data_offsets, then the file extended (sparse) to its full size. Returns the size."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape in tensors.items():
        size = nbytes(shape)
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        fh.write(struct.pack("<Q", len(raw)))
        fh.write(raw)
        fh.truncate(8 + len(raw) + offset)
    return 8 + len(raw) + offset


def read_header(path: Path) -> dict[str, tuple[int, ...]]:
    with path.open("rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(n))
    return {k: tuple(v["shape"]) for k, v in header.items() if k != "__metadata__"}


def write_sharded(folder: Path, stem: str, tensors: dict[str, tuple[int, ...]], shards: int) -> None:
    """`stem-0000i-of-0000N.safetensors` + `stem.safetensors.index.json` (as save_pretrained shards)."""
    names = list(tensors)
    per = -(-len(names) // shards)
    weight_map: dict[str, str] = {}
    total = 0
    for i in range(shards):
        part = names[i * per:(i + 1) * per]
        fname = f"{stem}-{i + 1:05d}-of-{shards:05d}.safetensors"
        write_safetensors(folder / fname, {n: tensors[n] for n in part})
        weight_map.update({n: fname for n in part})
        total += sum(nbytes(tensors[n]) for n in part)
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / f"{stem}.safetensors.index.json").write_text(json.dumps(index), encoding="utf-8")


def _json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    elif isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_text(json.dumps(data, indent=2), encoding="utf-8")


def write_shared_parts(folder: Path) -> None:
    """vae/, text_encoder/ (CLIP-L), text_encoder_2/ (T5-XXL, 2 shards), tokenizer/, tokenizer_2/."""
    _json(folder / "vae" / "config.json", VAE_CONFIG)
    write_safetensors(folder / "vae" / "diffusion_pytorch_model.safetensors",
                      diffusers_tensors("AutoencoderKL", VAE_CONFIG))
    _json(folder / "text_encoder" / "config.json", CLIP_CONFIG)
    write_safetensors(folder / "text_encoder" / "model.safetensors", transformers_tensors("CLIPTextModel", CLIP_CONFIG))
    _json(folder / "text_encoder_2" / "config.json", T5_CONFIG)
    write_sharded(folder / "text_encoder_2", "model", transformers_tensors("T5EncoderModel", T5_CONFIG), 2)
    for sub, files in TOKENIZER_FILES.items():
        for name, body in files.items():
            _json(folder / sub / name, body)


def write_fill(models: Path, *, transformer: bool = True) -> Path:
    """models/flux-fill/ as the catalog fetches it (diffusers layout of black-forest-labs/FLUX.1-Fill-dev)."""
    folder = models / "flux-fill"
    _json(folder / "model_index.json", model_index("FluxFillPipeline"))
    _json(folder / "scheduler" / "scheduler_config.json", SCHEDULER_DEV)
    write_shared_parts(folder)
    if transformer:
        cfg = transformer_config("fill")
        _json(folder / "transformer" / "config.json", cfg)
        write_sharded(folder / "transformer", "diffusion_pytorch_model",
                      diffusers_tensors("FluxTransformer2DModel", cfg), 3)
    return folder


def write_fill_single_file(models: Path) -> Path:
    path = models / "flux1-fill-dev.safetensors"
    write_safetensors(path, bfl_fill_tensors())
    return path


def write_t2i(models: Path, kind: str) -> Path:
    """models/flux-dev/ or flux-schnell/ as the catalog fetches it: model_index.json (listing every
    component, as the repo's does), transformer/ and scheduler/ only."""
    folder = models / f"flux-{kind}"
    _json(folder / "model_index.json", model_index("FluxPipeline"))
    _json(folder / "scheduler" / "scheduler_config.json", SCHEDULER_DEV if kind == "dev" else SCHEDULER_SCHNELL)
    cfg = transformer_config(kind)
    _json(folder / "transformer" / "config.json", cfg)
    write_sharded(folder / "transformer", "diffusion_pytorch_model", diffusers_tensors("FluxTransformer2DModel", cfg), 3)
    return folder


def write_controlnet(models: Path, kind: str) -> Path:
    folder = models / ("controlnet-union" if kind == "pro2" else "controlnet-union-instantx")
    cfg = CONTROLNET_PRO2 if kind == "pro2" else CONTROLNET_INSTANTX
    _json(folder / "config.json", cfg)
    write_safetensors(folder / "diffusion_pytorch_model.safetensors", diffusers_tensors("FluxControlNetModel", cfg))
    return folder


def fetched_bytes(folder: Path, patterns: list[str]) -> int:
    """What a catalog entry's patterns fetch: the logical size of every matching file."""
    files = {p for pattern in patterns for p in folder.glob(pattern) if p.is_file()}
    return sum(p.stat().st_size for p in files)


# --------------------------------------------------------------------------------------------
# issue 23: FLUX.2 [klein] 4B and Qwen-Image-Edit-2511 (configs as the repos publish them; see
# the report of issue 23 for the source of each value)
# --------------------------------------------------------------------------------------------
KLEIN_INDEX = {
    "_class_name": "Flux2KleinPipeline", "_diffusers_version": "0.37.0.dev0", "is_distilled": True,
    "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"], "text_encoder": ["transformers", "Qwen3ForCausalLM"],
    "tokenizer": ["transformers", "Qwen2TokenizerFast"], "transformer": ["diffusers", "Flux2Transformer2DModel"],
    "vae": ["diffusers", "AutoencoderKLFlux2"],
}
# black-forest-labs/FLUX.2-klein-4B transformer/config.json: 5 double + 20 single blocks, 24 x 128 heads,
# joint_attention_dim 7680 (= 3 stacked Qwen3-4B hidden states of 2560), no guidance embedding
KLEIN_TRANSFORMER = {
    "_class_name": "Flux2Transformer2DModel", "_diffusers_version": "0.37.0.dev0", "attention_head_dim": 128,
    "axes_dims_rope": [32, 32, 32, 32], "eps": 1e-06, "guidance_embeds": False, "in_channels": 128,
    "joint_attention_dim": 7680, "mlp_ratio": 3.0, "num_attention_heads": 24, "num_layers": 5,
    "num_single_layers": 20, "out_channels": None, "patch_size": 1, "rope_theta": 2000,
    "timestep_guidance_channels": 256,
}
# AutoencoderKLFlux2 defaults (32 latent channels, 128/256/512/512): 84 M params = 168 MB in bf16
KLEIN_VAE = {"_class_name": "AutoencoderKLFlux2", "_diffusers_version": "0.37.0.dev0", "latent_channels": 32,
             "block_out_channels": [128, 256, 512, 512]}
# Qwen3-4B (the text encoder): hidden 2560, 36 layers, 32 heads / 8 KV heads of 128, MLP 9728,
# vocabulary 151936, tied embeddings
QWEN3_4B = {"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "hidden_size": 2560,
            "intermediate_size": 9728, "num_hidden_layers": 36, "num_attention_heads": 32, "num_key_value_heads": 8,
            "head_dim": 128, "vocab_size": 151936, "tie_word_embeddings": True, "rms_norm_eps": 1e-06,
            "max_position_embeddings": 40960, "rope_theta": 1000000}
KLEIN_SCHEDULER = {"_class_name": "FlowMatchEulerDiscreteScheduler", "base_image_seq_len": 256, "base_shift": 0.5,
                   "max_image_seq_len": 4096, "max_shift": 1.15, "num_train_timesteps": 1000, "shift": 3.0,
                   "use_dynamic_shifting": True, "time_shift_type": "exponential"}

QWEN_EDIT_INDEX = {
    "_class_name": "QwenImageEditPlusPipeline", "_diffusers_version": "0.36.0.dev0",
    "processor": ["transformers", "Qwen2VLProcessor"], "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
    "text_encoder": ["transformers", "Qwen2_5_VLForConditionalGeneration"], "tokenizer": ["transformers", "Qwen2Tokenizer"],
    "transformer": ["diffusers", "QwenImageTransformer2DModel"], "vae": ["diffusers", "AutoencoderKLQwenImage"],
}
# Qwen/Qwen-Image-Edit-2511 transformer/config.json (60 layers, 24 x 128 heads, joint dim 3584, zero_cond_t)
QWEN_EDIT_TRANSFORMER = {
    "_class_name": "QwenImageTransformer2DModel", "_diffusers_version": "0.36.0.dev0", "attention_head_dim": 128,
    "axes_dims_rope": [16, 56, 56], "guidance_embeds": False, "in_channels": 64, "joint_attention_dim": 3584,
    "num_attention_heads": 24, "num_layers": 60, "out_channels": 16, "patch_size": 2, "zero_cond_t": True,
}
QWEN_EDIT_SCHEDULER = {
    "_class_name": "FlowMatchEulerDiscreteScheduler", "base_image_seq_len": 256, "base_shift": 0.5,
    "invert_sigmas": False, "max_image_seq_len": 8192, "max_shift": 0.9, "num_train_timesteps": 1000, "shift": 1.0,
    "shift_terminal": 0.02, "stochastic_sampling": False, "time_shift_type": "exponential",
    "use_dynamic_shifting": True, "use_beta_sigmas": False, "use_exponential_sigmas": False,
    "use_karras_sigmas": False,
}
QWEN_EDIT_VAE = {"_class_name": "AutoencoderKLQwenImage", "_diffusers_version": "0.36.0.dev0",
                 "temperal_downsample": [False, True, True], "z_dim": 16}


def _qwen3_tensors(config: dict) -> dict[str, tuple[int, ...]]:
    _ensure()
    import torch
    import transformers

    cfg = transformers.Qwen3Config(**{k: v for k, v in config.items() if k != "architectures"})
    with torch.device("meta"):
        tensors = _meta_tensors(transformers.Qwen3ForCausalLM(cfg))
    tensors.pop("lm_head.weight", None)  # tied to the embedding: stored once
    return tensors


def write_klein(models: Path, *, transformer: bool = True) -> Path:
    """models/flux2-klein-4b/ as the catalogue fetches it (diffusers layout of black-forest-labs/FLUX.2-klein-4B)."""
    folder = models / "flux2-klein-4b"
    _json(folder / "model_index.json", KLEIN_INDEX)
    _json(folder / "scheduler" / "scheduler_config.json", KLEIN_SCHEDULER)
    _json(folder / "vae" / "config.json", KLEIN_VAE)
    write_safetensors(folder / "vae" / "diffusion_pytorch_model.safetensors",
                      diffusers_tensors("AutoencoderKLFlux2", KLEIN_VAE))
    _json(folder / "text_encoder" / "config.json", QWEN3_4B)
    write_sharded(folder / "text_encoder", "model", _qwen3_tensors(QWEN3_4B), 2)
    _json(folder / "tokenizer" / "tokenizer_config.json",
          {"tokenizer_class": "Qwen2Tokenizer", "model_max_length": 131072, "pad_token": "<|endoftext|>"})
    if transformer:
        _json(folder / "transformer" / "config.json", KLEIN_TRANSFORMER)
        write_safetensors(folder / "transformer" / "diffusion_pytorch_model.safetensors",
                          diffusers_tensors("Flux2Transformer2DModel", KLEIN_TRANSFORMER))
    return folder


def write_qwen_edit_transformer(models: Path) -> Path:
    """models/qwen-image-edit-2511/ with model_index.json, scheduler/ and the 60-layer transformer
    (5 shards, as the repo's); the 16.6 GB text encoder is left to `fetched_bytes` arithmetic."""
    folder = models / "qwen-image-edit-2511"
    _json(folder / "model_index.json", QWEN_EDIT_INDEX)
    _json(folder / "scheduler" / "scheduler_config.json", QWEN_EDIT_SCHEDULER)
    _json(folder / "transformer" / "config.json", QWEN_EDIT_TRANSFORMER)
    write_sharded(folder / "transformer", "diffusion_pytorch_model",
                  diffusers_tensors("QwenImageTransformer2DModel", QWEN_EDIT_TRANSFORMER), 5)
    _json(folder / "vae" / "config.json", QWEN_EDIT_VAE)
    write_safetensors(folder / "vae" / "diffusion_pytorch_model.safetensors",
                      diffusers_tensors("AutoencoderKLQwenImage", QWEN_EDIT_VAE))
    return folder
