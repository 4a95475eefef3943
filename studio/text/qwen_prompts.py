"""Prompts within the Qwen text encoders' limits (issue 23): FLUX.2 [klein] (Qwen3-4B) and
Qwen-Image-Edit-2511 (Qwen2.5-VL).

Both tokenizers are byte-level BPE (Qwen2Tokenizer), unlike CLIP and T5:
- klein: `Flux2KleinPipeline._get_qwen3_prompt_embeds` wraps the prompt in the Qwen3 chat template
  (user turn + generation prompt + an empty think block) and tokenizes with
  ``padding="max_length", truncation=True, max_length=512`` (`tokenizer_max_length = 512`): a
  longer prompt is cut silently at the end. The budget is 512 tokens INCLUDING the template.
- Qwen-Image-Edit-2511: the prompt goes inside a fixed system template, after "Picture N:" image
  placeholders; the pipelines' `max_sequence_length` defaults to 512. The prompt's own tokens are
  kept within 512.

Counting: with the engine's real tokenizer (models/<engine>/tokenizer/) when it is there; without
it, a strict upper bound: a byte-level BPE token covers at least one UTF-8 byte, so the byte count
(+ the template's bytes, special tokens as one each) never undercounts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.text.prompts import P_SCENE, P_SUBJECT, Fragment, _fit, clean

log = logging.getLogger(__name__)

KLEIN_MAX_TOKENS = 512          # Flux2KleinPipeline.tokenizer_max_length (diffusers 0.42.1)
QWEN_EDIT_MAX_TOKENS = 512      # QwenImageEdit*Pipeline max_sequence_length default
# the Qwen3 chat template around the user's text (enable_thinking=False): specials count one each
KLEIN_TEMPLATE_SPECIALS = ("<|im_start|>", "<|im_end|>", "<|im_start|>", "<think>", "</think>")
KLEIN_TEMPLATE_TEXT = "user\n\nassistant\n\n\n\n\n"


@dataclass(frozen=True)
class QwenFit:
    prompt: str
    tokens: int
    budget: int
    dropped: tuple[str, ...]
    counter: str  # "tokenizer" | "bytes" (upper bound)


class QwenCounter:
    """Token counts for one engine: its real tokenizer, or the UTF-8 byte upper bound."""

    def __init__(self, tokenizer: Any = None, engine: str = "klein") -> None:
        self.tokenizer = tokenizer
        self.engine = engine
        self.budget = KLEIN_MAX_TOKENS if engine == "klein" else QWEN_EDIT_MAX_TOKENS

    @classmethod
    def from_folder(cls, folder: Path | str, engine: str = "klein") -> "QwenCounter":
        tok_dir = Path(folder) / "tokenizer"
        tokenizer = None
        if tok_dir.is_dir():
            from studio.runtime.compat import ensure_torchvision

            ensure_torchvision()
            try:
                from transformers import AutoTokenizer

                tokenizer = AutoTokenizer.from_pretrained(str(tok_dir))
            except (OSError, ValueError, TypeError, KeyError) as exc:
                log.warning("Qwen tokenizer in %s unreadable (%s); counting bytes", tok_dir, exc)
        return cls(tokenizer, engine)

    @property
    def counter(self) -> str:
        return "tokenizer" if self.tokenizer is not None else "bytes"

    def count(self, text: str) -> int:
        """Tokens the encoder sees for `text` (klein: with its chat template)."""
        tok = self.tokenizer
        if tok is None:
            n = len(text.encode("utf-8"))
            if self.engine == "klein":
                n += len(KLEIN_TEMPLATE_SPECIALS) + len(KLEIN_TEMPLATE_TEXT.encode("utf-8"))
            return n
        if self.engine == "klein" and getattr(tok, "chat_template", None):
            wrapped = tok.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                              add_generation_prompt=True, enable_thinking=False)
            return len(tok(wrapped, add_special_tokens=False)["input_ids"])
        return len(tok(text, add_special_tokens=False)["input_ids"])

    def fits(self, text: str) -> bool:
        return self.count(text) <= self.budget


def fit_qwen_prompt(text: str, counter: QwenCounter) -> QwenFit:
    """Comma-separated parts, earlier = more important; the least important go first until the
    prompt fits (only a too-long first part is cut word by word), as `prompts.fit_prompt` does."""
    if counter.fits(text):  # fits as it is: left untouched
        return QwenFit(text, counter.count(text), counter.budget, (), counter.counter)
    text = clean(text)
    parts = [p for p in text.split(", ") if p]
    frags = [Fragment(p, P_SUBJECT if i == 0 else P_SCENE, i) for i, p in enumerate(parts)]
    fitted, dropped = _fit(frags, counter.fits)
    return QwenFit(fitted, counter.count(fitted), counter.budget, tuple(dropped), counter.counter)
