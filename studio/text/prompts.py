"""Owner's Korean words + industry preset + style -> an English FLUX prompt within token budgets.

`build_prompt(industry_id, style_id, prompt_ko, presets=..., subject=..., llm=..., tokenizers=...)`

1. The owner's words become English: by the local LLM when ``llm.available()`` (it translates and
   adds a few visual details, as JSON validated by `PromptExpansion`), otherwise -- or when the
   LLM fails in any way -- by the built-in glossary (`studio.text.glossary`), which also reports
   the Korean words it did not know (`unknown_ko`).
2. Fragments are assembled in priority order, most important first:
   subject + owner's words (0) > industry scene (1) > style (2) > lighting (3) > quality (4).
3. Budgets: CLIP 77 tokens including BOS/EOS, T5 512 including EOS, counted with the real
   tokenizers (`PromptTokenizers.from_folder(models/flux-fill)`). The least important fragment is
   dropped first (within a level, the last one first) until the prompt fits; only when the
   subject and the owner's words alone are too long are their last words cut. So the final
   prompt never triggers a truncation warning.

`prompt_en` (== `clip_prompt`) fits both encoders: show it to the owner, let them edit it, pass
it as the engine prompt (refit an edited prompt with `fit_prompt`). `t5_prompt` is the longer
version within the T5 budget, for engines that pass a separate T5 prompt (diffusers
``prompt_2``); it always starts with the same fragments.

Without tokenizer files a conservative estimator counts instead (`estimated=True`,
``counter="estimate"``): a Latin word counts ceil(len/3) tokens (real BPE gives most English words
one token), each digit and punctuation character one, any other character three (UTF-8 bytes),
plus the special tokens, and 4 tokens of the budget are held back as a margin.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Literal, Protocol

from pydantic import BaseModel, Field

from studio.presets import Presets
from studio.text.glossary import HANGUL, Glossary

log = logging.getLogger(__name__)

CLIP_MAX_TOKENS = 77
T5_MAX_TOKENS = 512
ESTIMATE_MARGIN = 4

P_SUBJECT, P_SCENE, P_STYLE, P_LIGHTING, P_QUALITY = 0, 1, 2, 3, 4
QUALITY_BOOSTERS: tuple[str, ...] = (
    "high detail", "sharp focus", "professional color grading", "photorealistic", "8k",
)
Subject = Literal["person", "product", "mixed"]


# --------------------------------------------------------------------------------------------
# token counting
# --------------------------------------------------------------------------------------------
_EST_PIECE = re.compile(r"[A-Za-z]+|\d|[^\sA-Za-z\d]")


def estimate_tokens(text: str, specials: int) -> int:
    """Conservative token count without a tokenizer (see the module docstring)."""
    n = specials
    for piece in _EST_PIECE.findall(text):
        if piece[0].isascii() and piece[0].isalpha():
            n += max(1, math.ceil(len(piece) / 3))
        elif piece.isascii():
            n += 1
        else:
            n += 3
    return n


@dataclass
class PromptTokenizers:
    """The FLUX text tokenizers (CLIP + T5), or None each to use the estimator."""

    clip: Any = None
    t5: Any = None
    clip_max: int = CLIP_MAX_TOKENS
    t5_max: int = T5_MAX_TOKENS

    @classmethod
    def from_folder(cls, path: str | Path) -> "PromptTokenizers":
        """Load ``tokenizer/`` (CLIPTokenizer) and ``tokenizer_2/`` (T5TokenizerFast) of a diffusers
        folder; a missing or unreadable one falls back to the estimator (logged)."""
        root = Path(path)
        clip = t5 = None
        if (root / "tokenizer").is_dir() or (root / "tokenizer_2").is_dir():
            from studio.runtime.compat import ensure_torchvision

            ensure_torchvision()
            from transformers import CLIPTokenizer, T5TokenizerFast

            if (root / "tokenizer").is_dir():
                try:
                    clip = CLIPTokenizer.from_pretrained(root / "tokenizer")
                except (OSError, ValueError, TypeError) as exc:
                    log.warning("CLIP tokenizer in %s unreadable (%s); estimating", root, exc)
            if (root / "tokenizer_2").is_dir():
                try:
                    t5 = T5TokenizerFast.from_pretrained(root / "tokenizer_2")
                except (OSError, ValueError, TypeError) as exc:
                    log.warning("T5 tokenizer in %s unreadable (%s); estimating", root, exc)
        return cls(clip=clip, t5=t5)

    @property
    def estimated(self) -> bool:
        return self.clip is None or self.t5 is None

    @property
    def counter(self) -> str:
        if self.clip is not None and self.t5 is not None:
            return "tokenizers"
        if self.clip is None and self.t5 is None:
            return "estimate"
        return "clip-tokenizer+t5-estimate" if self.clip is not None else "clip-estimate+t5-tokenizer"

    @staticmethod
    def _count(tok: Any, text: str) -> int:
        # no truncation and verbose=False: measuring must not itself warn
        return len(tok(text, add_special_tokens=True, verbose=False)["input_ids"])

    def count_clip(self, text: str) -> int:
        if self.clip is None:
            return estimate_tokens(text, 2)
        return self._count(self.clip, text)

    def count_t5(self, text: str) -> int:
        if self.t5 is None:
            return estimate_tokens(text, 1)
        return self._count(self.t5, text)

    @property
    def clip_budget(self) -> int:
        return self.clip_max - (ESTIMATE_MARGIN if self.clip is None else 0)

    @property
    def t5_budget(self) -> int:
        return self.t5_max - (ESTIMATE_MARGIN if self.t5 is None else 0)


@lru_cache(maxsize=2)
def load_tokenizers(folder: str) -> PromptTokenizers:
    """Cached `PromptTokenizers.from_folder` (tokenizers load in about a second)."""
    return PromptTokenizers.from_folder(folder)


# --------------------------------------------------------------------------------------------
# fragments and fitting
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fragment:
    text: str
    priority: int          # 0 = most important
    rank: int = 0          # order within the priority level; higher is dropped first


def clean(text: str) -> str:
    """One clean line: no Hangul, no control characters, single spaces, no stray commas."""
    text = HANGUL.sub(" ", text or "")
    text = re.sub(r"[\x00-\x1f\x7f\"`<>{}\[\]|\\]", " ", text)
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\s*,\s*", ", ", text)
    text = re.sub(r"(,\s*)+", ", ", text)
    return text.strip(" ,.;")


def _join(frags: list[Fragment]) -> str:
    return ", ".join(f.text for f in frags if f.text)


def _fewest(n: int, fits_after: Callable[[int], bool]) -> int:
    """The smallest k in 1..n with fits_after(k), by bisection (fits_after(n) is taken as true:
    removing more never makes a prompt longer). O(log n) calls instead of n."""
    lo, hi = 1, n
    while lo < hi:
        mid = (lo + hi) // 2
        if fits_after(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def _fit(frags: list[Fragment], fits: Callable[[str], bool]) -> tuple[str, list[str]]:
    """Drop the least important fragment (highest priority number, then highest rank) until
    `fits`; when only subject fragments remain, cut their last words (least important first).

    The removal order is fixed in advance, so the shortest removal that fits is found by bisection:
    O(log n) token counts of an O(n) text, not one count per dropped word (which made a long
    prompt cost the square of its length).
    """
    kept = [f for f in frags if f.text]
    text = _join(kept)
    if not kept or fits(text):
        return text, []
    order = sorted(range(len(kept)), key=lambda i: (kept[i].priority, kept[i].rank, i), reverse=True)
    whole = [i for i in order if kept[i].priority != P_SUBJECT]

    def without(k: int) -> list[Fragment]:
        gone = set(whole[:k])
        return [f for i, f in enumerate(kept) if i not in gone]

    if whole:
        rest = without(len(whole))
        if fits(_join(rest)):
            k = _fewest(len(whole), lambda k: fits(_join(without(k))))
            return _join(without(k)), [kept[i].text for i in whole[:k]]
    dropped = [kept[i].text for i in whole]
    subjects = [i for i in order if kept[i].priority == P_SUBJECT]  # least important first
    words = {i: kept[i].text.split(" ") for i in subjects}
    steps = [(i, len(words[i]) - j) for i in subjects for j in range(1, len(words[i]) + 1)]

    def after(m: int) -> list[Fragment]:
        cut: dict[int, int] = {}
        for i, left in steps[:m]:
            cut[i] = left  # words of fragment i left after m removals
        out = []
        for i, f in enumerate(kept):
            if f.priority != P_SUBJECT:
                continue
            if i in cut:
                if cut[i] == 0:
                    continue
                f = Fragment(" ".join(words[i][:cut[i]]).rstrip(" ,"), f.priority, f.rank)
            out.append(f)
        return out

    m = _fewest(len(steps), lambda m: fits(_join(after(m))))
    dropped += [words[i][left] for i, left in steps[:m]]
    return _join(after(m)), dropped


@dataclass(frozen=True)
class Fitted:
    prompt: str
    tokens: int            # CLIP tokens for the both-encoder fit, T5 tokens for the T5 fit
    dropped: list[str]


def _dedupe(frags: list[Fragment]) -> list[Fragment]:
    seen: set[str] = set()
    out: list[Fragment] = []
    for f in frags:
        key = f.text.lower()
        if f.text and key not in seen:
            seen.add(key)
            out.append(f)
    return out


# --------------------------------------------------------------------------------------------
# LLM
# --------------------------------------------------------------------------------------------
class LLMLike(Protocol):
    def available(self) -> bool: ...
    def chat_json(self, messages: list[dict], schema: type[BaseModel], temperature: float = 0.2) -> BaseModel: ...


class PromptExpansion(BaseModel):
    """What the LLM returns: the owner's request in English plus a few visual details."""

    subject_en: str = Field(min_length=1, max_length=300,
                            description="the owner's request translated into a concise English noun phrase")
    details_en: list[str] = Field(default_factory=list, max_length=8,
                                  description="up to 4 short English visual details that fit the request")


def _llm_messages(prompt_ko: str, industry: Any, style: Any, subject: str) -> list[dict]:
    system = (
        "You write image prompts for FLUX, for small-shop advertising photos in Korea. "
        "Translate the shop owner's Korean request into concise English. Keep every product or menu "
        "item they name. Then add at most 4 short visual details (a few words each) that suit the "
        f"industry '{industry.name_en}', the style '{style.name_en}' and a {subject} photo. "
        "No text, logos, brand names or watermarks; no people unless the owner asks. "
        'Answer only with JSON: {"subject_en": "...", "details_en": ["...", "..."]}.'
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": prompt_ko.strip()}]


def _expand_with_llm(llm: Any, prompt_ko: str, industry: Any, style: Any, subject: str) -> list[str] | None:
    """English owner fragments from the LLM, or None (logged) when it is unavailable or fails."""
    try:
        if not llm.available():
            log.info("prompt: LLM unavailable, using the glossary")
            return None
        reply = llm.chat_json(_llm_messages(prompt_ko, industry, style, subject), schema=PromptExpansion,
                              temperature=0.2)
        reply = reply if isinstance(reply, PromptExpansion) else PromptExpansion.model_validate(
            reply.model_dump() if isinstance(reply, BaseModel) else reply)
    except Exception as exc:  # any LLM failure (network, timeout, bad JSON) falls back, never breaks
        log.warning("prompt: LLM failed (%s: %s); using the glossary", type(exc).__name__, exc)
        return None
    parts = [reply.subject_en] + list(reply.details_en[:6])
    if any(HANGUL.search(p) for p in parts):
        log.warning("prompt: LLM answered with Korean text; using the glossary")
        return None
    out = [clean(" ".join(p.split()[:16])) for p in parts]
    out = [p for p in out if p]
    if not out:
        log.warning("prompt: LLM answer was empty; using the glossary")
        return None
    return out


# --------------------------------------------------------------------------------------------
# API
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PromptResult:
    prompt_en: str                 # fits CLIP (77) and T5 (512): show, edit, pass as the prompt
    clip_prompt: str               # == prompt_en
    t5_prompt: str                 # longer version within the T5 budget (diffusers prompt_2)
    source: Literal["llm", "glossary"]
    dropped: list[str]             # fragments (or last-resort words) trimmed from prompt_en
    clip_tokens: int
    t5_tokens: int
    unknown_ko: list[str]          # owner's words the glossary could not translate
    estimated: bool = False        # True: counted with the estimator, not the real tokenizers
    counter: str = "tokenizers"
    dropped_t5: list[str] = field(default_factory=list)


def _subject_fragment(subject: str, industry: Any) -> str:
    if subject == "person":
        return f"portrait photo of a shop owner wearing {industry.person_outfit_en}"
    if subject == "mixed":
        return f"photo of a shop owner wearing {industry.person_outfit_en}, presenting the product"
    return "professional advertising product photo"


def assemble_fragments(owner: list[str], industry: Any, style: Any, subject: str) -> list[Fragment]:
    frags = [Fragment(clean(t), P_SUBJECT, i) for i, t in enumerate(owner)]
    frags.append(Fragment(clean(_subject_fragment(subject, industry)), P_SUBJECT, len(owner)))
    frags.append(Fragment(clean(industry.scene_en), P_SCENE, 0))
    frags += [Fragment(clean(t), P_SCENE, i + 1) for i, t in enumerate(industry.prompt_fragments_en)]
    frags += [Fragment(clean(t), P_STYLE, i) for i, t in enumerate(style.prompt_en.split(","))]
    if style.lighting_en:
        frags.append(Fragment(clean(style.lighting_en), P_LIGHTING, 0))
    frags += [Fragment(t, P_QUALITY, i) for i, t in enumerate(QUALITY_BOOSTERS)]
    return _dedupe(frags)


def fit_fragments(frags: list[Fragment], tokenizers: PromptTokenizers) -> tuple[Fitted, Fitted]:
    """(fit for both encoders, fit for T5 alone) of one fragment list."""
    tok = tokenizers

    def fits_t5(text: str) -> bool:
        return tok.count_t5(text) <= tok.t5_budget

    def fits_both(text: str) -> bool:
        return tok.count_clip(text) <= tok.clip_budget and fits_t5(text)

    both, dropped = _fit(frags, fits_both)
    t5_text, t5_dropped = _fit(frags, fits_t5)
    return (Fitted(both, tok.count_clip(both), dropped),
            Fitted(t5_text, tok.count_t5(t5_text), t5_dropped))


def fit_prompt(text: str, tokenizers: PromptTokenizers | None = None) -> Fitted:
    """Refit an owner-edited prompt: comma-separated parts, earlier = more important."""
    from studio.text.limits import limit

    text = limit(text, "prompt_en")
    tok = tokenizers or PromptTokenizers()
    parts = [p for p in clean(text).split(", ") if p]
    frags = [Fragment(p, P_SUBJECT if i == 0 else P_SCENE, i) for i, p in enumerate(parts)]
    clip_fit, _ = fit_fragments(frags, tok)
    return clip_fit


def build_prompt(industry_id: str, style_id: str, prompt_ko: str, *, presets: Presets,
                 subject: Subject = "product", llm: Any = None,
                 tokenizers: PromptTokenizers | None = None) -> PromptResult:
    industry = presets.industry(industry_id)
    style = presets.style(style_id)
    from studio.text.limits import limit

    tok = tokenizers or PromptTokenizers()
    text = limit(prompt_ko, "prompt_ko").strip()
    owner: list[str] | None = None
    source: Literal["llm", "glossary"] = "glossary"
    unknown: list[str] = []
    if text and llm is not None:
        owner = _expand_with_llm(llm, text, industry, style, subject)
        if owner is not None:
            source = "llm"
    if owner is None:
        tr = Glossary.load(presets.directory).translate(text)
        owner, unknown = tr.phrases, tr.unknown
    frags = assemble_fragments(owner, industry, style, subject)
    clip_fit, t5_fit = fit_fragments(frags, tok)
    if clip_fit.dropped:
        log.info("prompt: trimmed to fit CLIP (%d tokens): dropped %s", clip_fit.tokens, clip_fit.dropped)
    return PromptResult(prompt_en=clip_fit.prompt, clip_prompt=clip_fit.prompt, t5_prompt=t5_fit.prompt,
                        source=source, dropped=clip_fit.dropped, clip_tokens=clip_fit.tokens,
                        t5_tokens=tok.count_t5(t5_fit.prompt), unknown_ko=unknown, estimated=tok.estimated,
                        counter=tok.counter, dropped_t5=t5_fit.dropped)
