"""Tiny random FLUX.2 [klein] and Qwen-Image-Edit sets in the real on-disk layout (tests only).

Same classes and folder layout as the real repos (model_index.json names them:
Flux2KleinPipeline = scheduler FlowMatchEulerDiscreteScheduler, vae AutoencoderKLFlux2,
text_encoder Qwen3ForCausalLM, tokenizer Qwen2TokenizerFast, transformer Flux2Transformer2DModel),
with a few-channel config so a CPU runs them in seconds. The tokenizer is a byte-level BPE with
the Qwen chat tokens and a chat template of the same shape as Qwen3's (user turn, generation
prompt, an empty think block when thinking is off).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n{% endif %}{% endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>", "<|vision_start|>",
            "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]


def _ensure() -> None:
    from studio.runtime.compat import ensure_torchvision

    ensure_torchvision()


def build_qwen_tokenizer(workdir: Path) -> Any:
    """A byte-level BPE Qwen2TokenizerFast (vocab: the 256 byte symbols + the chat tokens)."""
    _ensure()
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen2TokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(tokenizer_object=backend)
    fast.add_special_tokens({"additional_special_tokens": SPECIALS})
    workdir.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(workdir))
    tok = Qwen2TokenizerFast.from_pretrained(str(workdir), pad_token="<|endoftext|>", eos_token="<|im_end|>")
    tok.chat_template = CHAT_TEMPLATE
    return tok


def build_klein_parts(workdir: Path) -> dict[str, Any]:
    """Tiny random klein components (seeded: the same every call)."""
    _ensure()
    import torch
    from diffusers import AutoencoderKLFlux2, FlowMatchEulerDiscreteScheduler, Flux2Transformer2DModel
    from transformers import Qwen3Config, Qwen3ForCausalLM

    tokenizer = build_qwen_tokenizer(workdir / "tok")
    torch.manual_seed(0)
    hidden = 16
    # the pipeline stacks hidden states 9, 18 and 27: the encoder needs 27+ layers (real: 36)
    te_cfg = Qwen3Config(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=32, num_hidden_layers=28,
                         num_attention_heads=2, num_key_value_heads=1, head_dim=8, max_position_embeddings=1024,
                         tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id)
    text_encoder = Qwen3ForCausalLM(te_cfg).eval()
    torch.manual_seed(1)
    vae = AutoencoderKLFlux2(block_out_channels=(8, 16), down_block_types=("DownEncoderBlock2D",) * 2,
                             up_block_types=("UpDecoderBlock2D",) * 2, layers_per_block=1, latent_channels=4,
                             norm_num_groups=4, sample_size=32).eval()
    torch.manual_seed(2)
    transformer = Flux2Transformer2DModel(patch_size=1, in_channels=16, num_layers=1, num_single_layers=1,
                                          attention_head_dim=16, num_attention_heads=2,
                                          joint_attention_dim=3 * hidden, timestep_guidance_channels=32,
                                          axes_dims_rope=(4, 4, 4, 4), guidance_embeds=False).eval()
    # the real klein scheduler_config.json: FlowMatchEulerDiscreteScheduler with dynamic shifting
    scheduler = FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True, time_shift_type="exponential",
                                                base_shift=0.5, max_shift=1.15, base_image_seq_len=256,
                                                max_image_seq_len=4096, shift=3.0)
    return {"scheduler": scheduler, "vae": vae, "text_encoder": text_encoder, "tokenizer": tokenizer,
            "transformer": transformer}


def save_klein(models_dir: Path) -> Path:
    """Write the tiny klein set as models/flux2-klein-4b/ (real layout: model_index.json + components)."""
    _ensure()
    from diffusers import Flux2KleinPipeline

    from studio.engines.commercial import KLEIN_DIR

    folder = models_dir / KLEIN_DIR
    if (folder / "model_index.json").is_file():
        return folder
    parts = build_klein_parts(models_dir / ".tiny-work")
    pipe = Flux2KleinPipeline(**parts, is_distilled=True)
    pipe.save_pretrained(str(folder), safe_serialization=True)
    (folder / "tokenizer" / "chat_template.jinja").write_text(CHAT_TEMPLATE, encoding="utf-8")
    return folder


def index_of(folder: Path) -> dict:
    return json.loads((folder / "model_index.json").read_text(encoding="utf-8"))


def build_qwen_edit_parts(workdir: Path) -> dict[str, Any]:
    """Tiny random Qwen-Image-Edit components: QwenImageTransformer2DModel, AutoencoderKLQwenImage,
    Qwen2_5_VLForConditionalGeneration (with a tiny vision tower), Qwen2Tokenizer and Qwen2VLProcessor."""
    _ensure()
    import torch
    from diffusers import AutoencoderKLQwenImage, FlowMatchEulerDiscreteScheduler, QwenImageTransformer2DModel
    from transformers import (Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2VLImageProcessor,
                              Qwen2VLProcessor, Qwen2VLVideoProcessor)

    tokenizer = build_qwen_tokenizer(workdir / "qtok")
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIALS}
    hidden = 16
    torch.manual_seed(0)
    cfg = Qwen2_5_VLConfig(
        text_config={"hidden_size": hidden, "intermediate_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                     "num_key_value_heads": 1, "vocab_size": len(tokenizer), "max_position_embeddings": 2048,
                     "rope_scaling": {"type": "mrope", "mrope_section": [1, 1, 2]}, "rope_theta": 1000000.0},
        vision_config={"depth": 2, "hidden_size": 16, "intermediate_size": 16, "num_heads": 2, "out_hidden_size": hidden,
                       "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "in_chans": 3,
                       "fullatt_block_indexes": [1], "window_size": 112},
        bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
    )
    text_encoder = Qwen2_5_VLForConditionalGeneration(cfg).eval()
    processor = Qwen2VLProcessor(image_processor=Qwen2VLImageProcessor(min_pixels=28 * 28 * 4, max_pixels=28 * 28 * 16),
                                 tokenizer=tokenizer, video_processor=Qwen2VLVideoProcessor())
    torch.manual_seed(1)
    vae = AutoencoderKLQwenImage(base_dim=8, z_dim=4, dim_mult=[1, 2], num_res_blocks=1,
                                 temperal_downsample=[False], latents_mean=[0.0] * 4, latents_std=[1.0] * 4).eval()
    torch.manual_seed(2)
    transformer = QwenImageTransformer2DModel(patch_size=2, in_channels=16, out_channels=4, num_layers=1,
                                              attention_head_dim=16, num_attention_heads=2, joint_attention_dim=hidden,
                                              guidance_embeds=False, axes_dims_rope=(4, 6, 6), zero_cond_t=True).eval()
    scheduler = FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True, time_shift_type="exponential",
                                                base_shift=0.5, max_shift=0.9, base_image_seq_len=256,
                                                max_image_seq_len=8192, shift=1.0, shift_terminal=0.02)
    return {"scheduler": scheduler, "vae": vae, "text_encoder": text_encoder, "tokenizer": tokenizer,
            "processor": processor, "transformer": transformer}


def save_qwen_edit(models_dir: Path) -> Path:
    """Write the tiny Qwen-Image-Edit set as models/qwen-image-edit-2511/ (QwenImageEditPlusPipeline layout)."""
    _ensure()
    from diffusers import QwenImageEditPlusPipeline

    from studio.engines.commercial import QWEN_EDIT_DIR

    folder = models_dir / QWEN_EDIT_DIR
    if (folder / "model_index.json").is_file():
        return folder
    parts = build_qwen_edit_parts(models_dir / ".tiny-work")
    QwenImageEditPlusPipeline(**parts).save_pretrained(str(folder), safe_serialization=True)
    return folder
