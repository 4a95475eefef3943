"""The English prompt for a request: the owner's edited prompt, else LLM/glossary via text.prompts."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

from studio.engines.base import Engine
from studio.schema import AdRequest
from studio.services import Services

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PromptChoice:
    prompt_en: str
    source: str  # "owner" | "llm" | "glossary"


def tokenizer_folder(services: Services, engine: Engine) -> Path | None:
    """Where the active engine's CLIP/T5 tokenizers live, to measure token budgets exactly."""
    folder = getattr(engine, "weights_dir", None) or services.settings.models_dir / "flux-fill"
    folder = Path(folder)
    return folder if (folder / "tokenizer").is_dir() else None


def llm_if_running(services: Services):
    try:
        llm = services.llm
        return llm if llm.available() else None
    except Exception as exc:  # an LLM that can't even be built must not stop an ad
        log.warning("LLM client unavailable: %s", exc)
        return None


def prompt_for(req: AdRequest, services: Services, engine: Engine, subject: str) -> PromptChoice:
    from studio.text.prompts import build_prompt, fit_prompt

    folder = tokenizer_folder(services, engine)
    tokenizers = _tokenizers_cache(folder) if folder else None
    if req.prompt_en and req.prompt_en.strip():
        # the owner's words, trimmed only if they overflow the CLIP budget (no truncation warning)
        return PromptChoice(fit_prompt(req.prompt_en, tokenizers).prompt, "owner")
    res = build_prompt(req.industry, req.style, req.prompt_ko, presets=services.presets, subject=subject,
                       llm=llm_if_running(services), tokenizers=tokenizers)
    return PromptChoice(res.prompt_en, res.source)


@functools.lru_cache(maxsize=4)
def _tokenizers_cache(folder: Path):
    from studio.text.prompts import PromptTokenizers

    return PromptTokenizers.from_folder(folder)
