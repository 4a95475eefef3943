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
