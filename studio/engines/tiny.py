"""The tiny FLUX set: the real diffusers/transformers classes with tiny random configs.

Built the way diffusers' own tests build them (`torch.manual_seed(0)` before each part, one double
and one single block), saved with `save_pretrained` in the same folder layout as the real weights
(`models/flux-fill/`, `models/controlnet-union/`, `models/flux-schnell/`), and loaded back through
the same loader (`studio.runtime.weights`). Used by the tests and by `--engine tiny`.

- VAE: 4 blocks (vsf = 2**(4-1) = 8, like the real one) with L = 4 latent channels;
- Fill transformer: in_channels = 4L + 4L + 4*vsf**2 = 16 + 16 + 256 = 288 (the real one: 384);
- ControlNet (Union, 10 modes): in_channels = 4L = 16, its zero-initialised output projections
  randomised so that it has an effect;
- CLIP tokenizer from a written vocab.json + merges.txt; the T5 tokenizer is a
  `PreTrainedTokenizerFast` over a `tokenizers` WordLevel model.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from studio.config import Settings
    from studio.engines.flux_fill import FluxFillEngine

log = logging.getLogger(__name__)

TINY_VERSION = 2
LATENT_CHANNELS = 4
VAE_BLOCKS = 4
VAE_SCALE = 2 ** (VAE_BLOCKS - 1)
FILL_IN_CHANNELS = 4 * LATENT_CHANNELS + 4 * LATENT_CHANNELS + 4 * VAE_SCALE**2
CONTROLNET_IN_CHANNELS = 4 * LATENT_CHANNELS
HIDDEN = 32           # text encoders' width = joint_attention_dim = pooled_projection_dim
HEAD_DIM = 16
HEADS = 2
AXES_ROPE = [4, 4, 8]  # sums to HEAD_DIM
MAX_SEQUENCE_LENGTH = 32

_CHARS = list("abcdefghijklmnopqrstuvwxyz0123456789.,!?'-")
_MERGES = ["a n", "t h", "th e</w>", "i n", "o n</w>", "e r", "a t"]
_WORDS = ("a an the of in on with and for at by to from is photo portrait person man woman shop owner cafe "
          "bakery restaurant salon flower florist store product bottle cup coffee cat studio light lighting "
          "soft warm natural background apron uniform shirt jacket dress outfit wearing smiling standing "
          "holding professional advertisement ad clean modern cozy bright white black wood marble table "
          "counter window sunlight bokeh high quality detailed realistic sharp").split()


def _clip_vocab() -> dict[str, int]:
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in _CHARS:
        vocab[c] = len(vocab)
    for c in _CHARS:
        vocab[c + "</w>"] = len(vocab)
    for merge in _MERGES:
        vocab.setdefault(merge.replace(" ", ""), len(vocab))
    return vocab


def _t5_vocab() -> dict[str, int]:
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for word in _WORDS:
        vocab.setdefault(word, len(vocab))
    return vocab


def _ensure() -> None:
    from studio.runtime.compat import ensure_torchvision

    ensure_torchvision()


def build_tokenizers(workdir: Path | None = None) -> tuple[Any, Any]:
    """A CLIPTokenizer read from a written vocab.json + merges.txt, and a WordLevel T5-style tokenizer."""
    _ensure()
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import CLIPTokenizer, PreTrainedTokenizerFast

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(workdir or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "vocab.json").write_text(json.dumps(_clip_vocab()), encoding="utf-8")
        (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(_MERGES) + "\n", encoding="utf-8")
        clip = CLIPTokenizer.from_pretrained(str(folder), model_max_length=77)

    vocab = _t5_vocab()
    backend = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    t5 = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                 model_max_length=512)
    return clip, t5


def build_text_encoders(clip_vocab: int, t5_vocab: int) -> tuple[Any, Any]:
    _ensure()
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    torch.manual_seed(0)
    clip = CLIPTextModel(CLIPTextConfig(
        bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=HIDDEN, intermediate_size=37,
        layer_norm_eps=1e-05, num_attention_heads=4, num_hidden_layers=2, vocab_size=clip_vocab,
        max_position_embeddings=77, hidden_act="gelu", projection_dim=HIDDEN))
    torch.manual_seed(0)
    t5 = T5EncoderModel(T5Config(
        vocab_size=t5_vocab, d_model=HIDDEN, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
        relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
        feed_forward_proj="gated-gelu", is_encoder_decoder=False, use_cache=False))
    return clip.eval(), t5.eval()


def build_vae() -> Any:
    _ensure()
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    return AutoencoderKL(
        sample_size=32, in_channels=3, out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * VAE_BLOCKS, up_block_types=("UpDecoderBlock2D",) * VAE_BLOCKS,
        block_out_channels=(4,) * VAE_BLOCKS, layers_per_block=1, latent_channels=LATENT_CHANNELS,
        norm_num_groups=1, use_quant_conv=False, use_post_quant_conv=False, mid_block_add_attention=False,
        shift_factor=0.0609, scaling_factor=1.5035).eval()


def build_fill_transformer() -> Any:
    _ensure()
    import torch
    from diffusers import FluxTransformer2DModel

    torch.manual_seed(0)
    return FluxTransformer2DModel(
        patch_size=1, in_channels=FILL_IN_CHANNELS, out_channels=4 * LATENT_CHANNELS, num_layers=1,
        num_single_layers=1, attention_head_dim=HEAD_DIM, num_attention_heads=HEADS, joint_attention_dim=HIDDEN,
        pooled_projection_dim=HIDDEN, guidance_embeds=True, axes_dims_rope=AXES_ROPE).eval()


def build_t2i_transformer(guidance_embeds: bool = False) -> Any:
    """FLUX.1 schnell-shaped (no guidance embedding) text-to-image transformer."""
    _ensure()
    import torch
    from diffusers import FluxTransformer2DModel

    torch.manual_seed(0)
    return FluxTransformer2DModel(
        patch_size=1, in_channels=4 * LATENT_CHANNELS, out_channels=4 * LATENT_CHANNELS, num_layers=1,
        num_single_layers=1, attention_head_dim=HEAD_DIM, num_attention_heads=HEADS, joint_attention_dim=HIDDEN,
        pooled_projection_dim=HIDDEN, guidance_embeds=guidance_embeds, axes_dims_rope=AXES_ROPE).eval()


def build_controlnet(num_mode: int | None = 10) -> Any:
    _ensure()
    import torch
    from diffusers import FluxControlNetModel

    torch.manual_seed(0)
    net = FluxControlNetModel(
        patch_size=1, in_channels=CONTROLNET_IN_CHANNELS, num_layers=1, num_single_layers=1,
        attention_head_dim=HEAD_DIM, num_attention_heads=HEADS, joint_attention_dim=HIDDEN,
        pooled_projection_dim=HIDDEN, guidance_embeds=True, axes_dims_rope=AXES_ROPE, num_mode=num_mode)
    # Zero-initialised projections would make a fresh ControlNet a no-op: randomise them.
    with torch.no_grad():
        for layer in [*net.controlnet_blocks, *net.controlnet_single_blocks, net.controlnet_x_embedder]:
            torch.nn.init.normal_(layer.weight, std=0.2)
            torch.nn.init.normal_(layer.bias, std=0.2)
    return net.eval()


def build_scheduler(dynamic: bool = True) -> Any:
    _ensure()
    from diffusers import FlowMatchEulerDiscreteScheduler

    if dynamic:  # FLUX dev / Fill
        return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=True,
                                               base_shift=0.5, max_shift=1.15, base_image_seq_len=256,
                                               max_image_seq_len=4096)
    return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.0, use_dynamic_shifting=False)


def build_tiny_components(controlnet: bool = True) -> dict[str, Any]:
    """The FluxFillPipeline components (plus `controlnet`), in memory."""
    tokenizer, tokenizer_2 = build_tokenizers()
    text_encoder, text_encoder_2 = build_text_encoders(len(tokenizer), len(tokenizer_2))
    return {
        "scheduler": build_scheduler(),
        "vae": build_vae(),
        "text_encoder": text_encoder,
        "tokenizer": tokenizer,
        "text_encoder_2": text_encoder_2,
        "tokenizer_2": tokenizer_2,
        "transformer": build_fill_transformer(),
        "controlnet": build_controlnet() if controlnet else None,
    }


def save_tiny_models(models_dir: Path, *, schnell: bool = True) -> Path:
    """Write the tiny set into `models_dir` in the real layout. Returns `models_dir`."""
    _ensure()
    from diffusers import FluxFillPipeline, FluxPipeline

    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    parts = build_tiny_components()
    controlnet = parts.pop("controlnet")
    FluxFillPipeline(**parts).save_pretrained(str(models_dir / "flux-fill"))
    controlnet.save_pretrained(str(models_dir / "controlnet-union"))
    if schnell:
        # Like the catalog's flux-schnell / flux-dev entries: only its own transformer + scheduler
        # are fetched; the text encoders, tokenizers and VAE are shared from models/flux-fill/.
        # Its model_index.json still lists every component, as the real repo's does.
        folder = models_dir / "flux-schnell"
        FluxPipeline(scheduler=build_scheduler(dynamic=False), vae=None, text_encoder=None, tokenizer=None,
                     text_encoder_2=None, tokenizer_2=None,
                     transformer=build_t2i_transformer()).save_pretrained(str(folder))
        fill_index = json.loads((models_dir / "flux-fill" / "model_index.json").read_text(encoding="utf-8"))
        index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
        for name in ("text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "vae"):
            index[name] = fill_index[name]
        (folder / "model_index.json").write_text(json.dumps(index, indent=2), encoding="utf-8")
    (models_dir / ".tiny-version").write_text(str(TINY_VERSION), encoding="utf-8")
    return models_dir


def versioned_dir(root: Path, version: int, write: Callable[[Path], None], what: str) -> Path:
    """`root` holding a tiny set written by `write(folder)` at `version`: reused when its
    `.tiny-version` matches, else written into a staging folder beside it and swapped in atomically
    (a process that loses the race uses the winner's copy)."""
    marker = root / ".tiny-version"
    if marker.is_file() and marker.read_text(encoding="utf-8").strip() == str(version):
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tiny-staging-", dir=str(root.parent)))
    try:
        write(staging)
        (staging / ".tiny-version").write_text(str(version), encoding="utf-8")
        if root.exists():
            shutil.rmtree(root, ignore_errors=True)
        try:
            os.replace(staging, root)
        except OSError:  # another process won the race: use theirs
            if not marker.is_file():
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    log.info("tiny %s written to %s", what, root)
    return root


def tiny_models_dir(settings: "Settings | None" = None) -> Path:
    """Where the tiny set lives: settings.models_dir/.tiny-cache, written on first use (atomically)."""
    if settings is not None:
        root = Path(settings.models_dir) / ".tiny-cache"
    else:
        root = Path(tempfile.gettempdir()) / "fitad-tiny-cache"
    return versioned_dir(root, TINY_VERSION, save_tiny_models, "FLUX models")


def create_engine(settings: "Settings") -> "FluxFillEngine":
    """`--engine tiny`: the FLUX engine over the tiny set, loaded through the real loader (CPU)."""
    from studio.engines.flux_fill import FluxFillEngine

    engine = FluxFillEngine(tiny_models_dir(settings), device="cpu", max_sequence_length=MAX_SEQUENCE_LENGTH,
                            name="tiny")
    engine.caps = dataclasses.replace(FluxFillEngine.caps, needs_gpu=False, needs_weights=False)
    engine.model_ids = ("tiny",)
    return engine
