"""Prompts for a stock batch: random (curated templates), keyword (the owner's words) or LLM.

Every mode returns `StockPrompt`s: the English prompt for the generator plus what the metadata
needs (a Korean description, an English title, Korean and English tags). Prompts within one batch
are deduplicated (case- and space-insensitive); a mode that cannot find enough distinct prompts
varies style, light and composition before it gives up.

- **random**: `presets/stock_templates.json` per industry (subjects) + common styles, lighting
  and composition, each an (English, Korean) pair, picked by a seeded RNG.
- **keyword**: the owner's comma-separated keywords, Korean or English. Korean goes through the
  glossary (`studio.text.glossary`); the words it does not know stay in the Korean tags and are
  reported. Each prompt combines the keywords with a style, light and composition.
- **llm**: the local Ollama model answers JSON ``{"items": [{"korean_description", "english_prompt",
  "tags": [5-7]}]}``. Broken JSON is salvaged (code fences, trailing commas, single quotes, a lone
  object, fields found by pattern); when nothing can be salvaged or the server is down, keyword
  mode takes over for the rest and a notice says so.
"""

from __future__ import annotations

import json
import logging
import random
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from studio.config import REPO_ROOT
from studio.errors import InputError, StudioError
from studio.schema import Notice
from studio.text.glossary import HANGUL, Glossary

log = logging.getLogger(__name__)

MODES: tuple[str, ...] = ("random", "keyword", "llm")
TEMPLATES_FILE = "stock_templates.json"
LLM_CHUNK = 8          # prompts asked of the LLM per call
TAGS_MIN, TAGS_MAX = 5, 7


class _Template(BaseModel):
    id: str
    name_ko: str
    subjects: list[tuple[str, str]] = Field(min_length=1)
    tags_ko: list[str] = Field(min_length=3)
    tags_en: list[str] = Field(min_length=3)


class _Common(BaseModel):
    styles: list[tuple[str, str]] = Field(min_length=1)
    lighting: list[tuple[str, str]] = Field(min_length=1)
    composition: list[tuple[str, str]] = Field(min_length=1)
    colors: list[tuple[str, str]] = Field(min_length=1)


class StockTemplates(BaseModel):
    version: int
    common: _Common
    industries: list[_Template] = Field(min_length=1)

    def industry(self, industry_id: str) -> _Template:
        for item in self.industries:
            if item.id == industry_id:
                return item
        raise InputError("stock.bad_industry", industry=industry_id,
                         names=", ".join(i.id for i in self.industries))


@lru_cache(maxsize=4)
def _load_templates(path: str) -> StockTemplates:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    tpl = StockTemplates.model_validate(data)
    if tpl.version != 1:
        raise ValueError(f"{path}: unsupported version {tpl.version}")
    return tpl


def load_templates(presets_dir: Path | None = None) -> StockTemplates:
    path = (presets_dir or REPO_ROOT / "presets") / TEMPLATES_FILE
    if not path.is_file():
        path = REPO_ROOT / "presets" / TEMPLATES_FILE
    return _load_templates(str(path))


@dataclass
class StockPrompt:
    prompt_en: str
    description_ko: str
    title_en: str
    tags_en: list[str] = field(default_factory=list)
    tags_ko: list[str] = field(default_factory=list)
    source: str = "random"
    # what THIS prompt is about (keyword mode: the keywords it uses, English and the owner's word);
    # the metadata of an AI image comes from these, not from every word the owner typed
    subject_en: list[str] = field(default_factory=list)
    subject_ko: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"prompt_en": self.prompt_en, "description_ko": self.description_ko, "title_en": self.title_en,
                "tags_en": list(self.tags_en), "tags_ko": list(self.tags_ko), "source": self.source,
                "subject_en": list(self.subject_en), "subject_ko": list(self.subject_ko)}

    @classmethod
    def from_dict(cls, d: dict) -> "StockPrompt":
        return cls(d["prompt_en"], d.get("description_ko", ""), d.get("title_en", ""), list(d.get("tags_en", [])),
                   list(d.get("tags_ko", [])), d.get("source", "random"), list(d.get("subject_en", [])),
                   list(d.get("subject_ko", [])))


@dataclass
class PromptPlan:
    prompts: list[StockPrompt]
    notices: list[Notice] = field(default_factory=list)
    mode_used: str = "random"


def norm_key(text: str) -> str:
    return " ".join(re.sub(r"[^\w]+", " ", text.lower()).split())


def dedupe(prompts: list[StockPrompt]) -> list[StockPrompt]:
    """Drop prompts whose English text repeats one earlier in the list (case/space/punctuation)."""
    seen: set[str] = set()
    out: list[StockPrompt] = []
    for p in prompts:
        key = norm_key(p.prompt_en)
        if key and key not in seen:
            seen.add(key)
            out.append(p)
    return out


def _uniq(words: list[str]) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for w in words:
        w = " ".join(str(w).replace("#", " ").split()).strip(" ,.")
        if w and w.lower() not in seen:
            seen.add(w.lower())
            out.append(w)
    return out


def _title(text: str, limit: int = 70) -> str:
    words = re.sub(r"[,;|\"]+", " ", text).split()
    title = " ".join(words)
    if len(title) > limit:
        title = title[:limit].rsplit(" ", 1)[0]
    return title[:1].upper() + title[1:]


def _fill_unique(make: Any, count: int, attempts: int) -> list[StockPrompt]:
    out: list[StockPrompt] = []
    seen: set[str] = set()
    for i in range(attempts):
        if len(out) >= count:
            break
        p = make(i)
        key = norm_key(p.prompt_en)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


# --- random ---------------------------------------------------------------------------------
def random_prompts(count: int, industry: str, seed: int, templates: StockTemplates) -> list[StockPrompt]:
    tpl = templates.industry(industry)
    common = templates.common
    rng = random.Random(seed)

    def make(_i: int) -> StockPrompt:
        subj = rng.choice(tpl.subjects)
        style = rng.choice(common.styles)
        light = rng.choice(common.lighting)
        comp = rng.choice(common.composition)
        col = rng.choice(common.colors)
        en = f"{subj[0]}, {style[0]}, {light[0]}, {col[0]}, {comp[0]}"
        ko = f"{subj[1]}. {style[1]}, {light[1]}, {col[1]}, {comp[1]}."
        tags_en = _uniq(subj[0].replace(" with ", ",").replace(" on ", ",").replace(" in ", ",").split(",")
                        + tpl.tags_en)
        tags_ko = _uniq(list(tpl.tags_ko))
        subject = _uniq(subj[0].replace(" with ", ",").replace(" on ", ",").replace(" in ", ",").split(","))
        return StockPrompt(en, ko, _title(subj[0]), tags_en, tags_ko, "random", subject, [])

    return _fill_unique(make, count, attempts=count * 20 + 50)


# --- keyword --------------------------------------------------------------------------------
def split_keywords(text: str) -> list[str]:
    return _uniq(re.split(r"[,\n;/·]+", text or ""))


def keyword_prompts(keywords: str, count: int, seed: int, templates: StockTemplates,
                    glossary: Glossary | None = None) -> tuple[list[StockPrompt], list[str]]:
    """Prompts from the owner's keywords; returns them and the Korean words nobody could translate."""
    words = split_keywords(keywords)
    if not words:
        raise InputError("stock.no_keywords")
    glossary = glossary or Glossary.load()
    en_words: list[str] = []
    unknown: list[str] = []
    ko_of: dict[str, str] = {}          # English phrase -> the owner's word it came from
    for w in words:
        if HANGUL.search(w):
            tr = glossary.translate(w)
            en_words.extend(tr.phrases)
            for ph in tr.phrases:
                ko_of.setdefault(ph, w)
            unknown.extend(u for u in tr.unknown if u not in unknown)
        else:
            en_words.append(w)
    en_words = _uniq(en_words)
    if not en_words:
        # nothing translatable: never refuse to start; the words stay in the Korean tags (and are
        # reported) and the batch makes background textures
        en_words = ["background texture"]
    ko_words = [w for w in words if HANGUL.search(w)] or en_words
    common = templates.common
    rng = random.Random(seed)

    from studio.text.lite_words import FAMILY_WORDS
    from studio.text.lite_words import find_word as _find

    # words naming a kind of asset (watercolor, bokeh, pattern, marble...): each leads in turn, so
    # one kind can't crowd out the others (the first kind word of a prompt decides what lite draws)
    kinds = [w for w in en_words if _find(w, FAMILY_WORDS)]
    plain = [w for w in en_words if w not in kinds]

    def make(i: int) -> StockPrompt:
        # rotate which keyword leads and how many join it, then vary the look
        k = len(en_words)
        lead = i % k
        take = 1 + rng.randrange(k)
        chosen = [en_words[(lead + j) % k] for j in range(take)]
        if kinds and plain:
            kind = kinds[i % len(kinds)]
            chosen = [kind] + [w for w in chosen if w not in kinds]
            if len(chosen) == 1:   # keep the owner's subject words in play: they set the mood (colours)
                chosen.append(plain[i % len(plain)])
        style, light, comp = rng.choice(common.styles), rng.choice(common.lighting), rng.choice(common.composition)
        col = rng.choice(common.colors)
        en = f"{', '.join(chosen)}, {style[0]}, {light[0]}, {col[0]}, {comp[0]}"
        used_ko = _uniq([ko_of.get(w, w) for w in chosen])
        ko = f"{', '.join(used_ko)} 주제의 이미지. {style[1]}, {light[1]}, {col[1]}, {comp[1]}."
        return StockPrompt(en, ko, _title(" ".join(chosen)), _uniq(en_words + chosen), _uniq(ko_words),
                           "keyword", list(chosen), used_ko)

    return _fill_unique(make, count, attempts=count * 30 + 50), unknown


# --- llm ------------------------------------------------------------------------------------
_SYSTEM = ("You write prompts for a stock-image generator. Answer ONLY JSON of the form "
           '{"items": [{"korean_description": "...", "english_prompt": "...", "tags": ["..."]}]} '
           "with exactly {n} items. korean_description: one Korean sentence describing the image. "
           "english_prompt: a vivid English text-to-image prompt (subject, style, light, composition), "
           "no text or logos in the image. tags: 5 to 7 short English keywords. "
           "Every item must be different from the others and from the ones listed as already used.")


def _llm_messages(keywords: str, industry_ko: str, n: int, used: list[str]) -> list[dict]:
    user = f"업종: {industry_ko}\n키워드: {keywords or '(자유 주제)'}\n개수: {n}"
    if used:
        user += "\nAlready used (do not repeat):\n" + "\n".join(f"- {u}" for u in used[-12:])
    return [{"role": "system", "content": _SYSTEM.replace("{n}", str(n))}, {"role": "user", "content": user}]


_FIELD = {name: re.compile(rf'["\']{name}["\']\s*:\s*["\']((?:[^"\\]|\\.)*)["\']', re.S)
          for name in ("korean_description", "english_prompt")}
_TAGS = re.compile(r'["\']tags["\']\s*:\s*\[([^\]]*)\]', re.S)


def _try_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


def salvage_json(text: str) -> list[dict]:
    """The items in an LLM answer, however broken: a list of dicts (maybe empty)."""
    text = (text or "").strip()
    candidates = [text]
    fence = re.search(r"```(?:json)?\s*(.*?)```", text, re.S)
    if fence:
        candidates.insert(0, fence.group(1).strip())
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start:end + 1])
    for cand in list(candidates):
        fixed = re.sub(r",\s*([}\]])", r"\1", cand)
        if "'" in fixed and '"' not in fixed:
            fixed = fixed.replace("'", '"')
        candidates.append(fixed)
    for cand in candidates:
        data = _try_json(cand)
        if isinstance(data, dict):
            items = data.get("items", [data])
            if isinstance(items, list):
                return [i for i in items if isinstance(i, dict)]
        if isinstance(data, list):
            return [i for i in data if isinstance(i, dict)]
    # last resort: pick the fields out one object at a time
    items: list[dict] = []
    for chunk in re.split(r"(?=\{\s*[\"'])", text):
        found: dict[str, Any] = {}
        for name, rx in _FIELD.items():
            m = rx.search(chunk)
            if m:
                found[name] = m.group(1).encode().decode("unicode_escape", errors="ignore") \
                    if "\\u" in m.group(1) else m.group(1)
        m = _TAGS.search(chunk)
        if m:
            found["tags"] = [t.strip().strip("'\"") for t in m.group(1).split(",") if t.strip().strip("'\"")]
        if found.get("english_prompt"):
            items.append(found)
    return items


def _item_to_prompt(item: dict, fallback_ko: list[str]) -> StockPrompt | None:
    en = " ".join(str(item.get("english_prompt", "")).split())
    if len(en) < 8 or HANGUL.search(en):
        return None
    ko = " ".join(str(item.get("korean_description", "")).split())
    raw_tags = item.get("tags", [])
    tags = _uniq([str(x) for x in raw_tags]) if isinstance(raw_tags, list) else []
    tags_en = [x for x in tags if not HANGUL.search(x)]
    tags_ko = [x for x in tags if HANGUL.search(x)] or list(fallback_ko)
    if len(tags_en) < TAGS_MIN:
        extra = [w for w in re.findall(r"[a-z]{4,}", en.lower()) if w not in {"with", "that", "this", "from"}]
        tags_en = _uniq(tags_en + extra)
    tags_en = tags_en[:TAGS_MAX]
    subject = [t for t in tags_en if t.lower() in en.lower()] or [en.split(",")[0].strip()]
    return StockPrompt(en, ko or en, _title(en.split(",")[0]), tags_en, _uniq(tags_ko), "llm", subject, [])


def llm_prompts(llm: Any, keywords: str, count: int, seed: int, templates: StockTemplates,
                industry: str = "cafe", glossary: Glossary | None = None) -> PromptPlan:
    """LLM prompts; keyword mode takes over (with a notice) when the LLM fails or runs dry."""
    industry_ko = templates.industry(industry).name_ko if industry else ""
    fallback_ko = split_keywords(keywords)
    got: list[StockPrompt] = []
    notices: list[Notice] = []
    failure = ""
    calls = 0
    max_calls = (count + LLM_CHUNK - 1) // LLM_CHUNK + 2
    while len(got) < count and calls < max_calls:
        calls += 1
        n = min(LLM_CHUNK, count - len(got))
        try:
            text = "".join(llm.stream_chat(_llm_messages(keywords, industry_ko, n, [p.prompt_en for p in got]),
                                           temperature=0.9))
        except StudioError as exc:
            failure = exc.key
            log.warning("stock LLM prompts failed: %s", exc)
            break
        items = salvage_json(text)
        fresh = [p for p in (_item_to_prompt(i, fallback_ko) for i in items) if p is not None]
        before = len(got)
        got = dedupe(got + fresh)[:count]
        if len(got) == before:
            failure = failure or "llm.bad_output"
            log.warning("stock LLM answer gave no usable prompt: %.200s", text)
            break
    if len(got) < count:
        need = count - len(got)
        if keywords.strip():
            more, _unknown = keyword_prompts(keywords, count + need, seed, templates, glossary)
        else:
            more = random_prompts(count + need, industry or "background", seed, templates)
        got = dedupe(got + more)[:count]
        notices.append(Notice("stock.llm_fallback", {"n": need}))
    mode = "llm" if not notices else ("keyword" if not any(p.source == "llm" for p in got) else "llm+keyword")
    return PromptPlan(got, notices, mode)


def build_prompts(mode: str, count: int, *, seed: int = 0, industry: str = "background", keywords: str = "",
                  llm: Any = None, presets_dir: Path | None = None) -> PromptPlan:
    """`count` distinct prompts for a batch in the given mode."""
    if mode not in MODES:
        raise InputError("stock.bad_mode", mode=mode, modes=", ".join(MODES))
    templates = load_templates(presets_dir)
    notices: list[Notice] = []
    if mode == "random":
        prompts = random_prompts(count, industry, seed, templates)
    elif mode == "keyword":
        prompts, unknown = keyword_prompts(keywords, count, seed, templates)
        if unknown:
            notices.append(Notice("stock.unknown_words", {"words": ", ".join(unknown)}))
    else:
        if llm is None:
            prompts, _ = keyword_prompts(keywords, count, seed, templates) if keywords.strip() else (
                random_prompts(count, industry, seed, templates), [])
            return PromptPlan(prompts, [Notice("stock.llm_fallback", {"n": count})], "keyword")
        return llm_prompts(llm, keywords, count, seed, templates, industry)
    if len(prompts) < count:
        notices.append(Notice("stock.few_prompts", {"n": len(prompts), "count": count}))
    return PromptPlan(prompts, notices, mode)


# words the lite engine can honour (kinds, motifs, colours, moods) or that describe any asset
_LITE_GENERIC = {"texture", "pattern", "seamless", "background", "backdrop", "art", "abstract", "design",
                 "graphic", "wallpaper", "surface", "paper", "solid", "korean", "traditional", "illustration",
                 "minimal", "vintage", "modern", "soft", "style", "tone", "color", "colour", "light", "lights"}


def lite_unfit_words(keywords: str, glossary: Glossary | None = None) -> list[str]:
    """The owner's words naming a photo subject the lite engine can't draw (a latte, a beach), in
    the owner's spelling; kinds, motifs, colours and moods it can honour are not listed."""
    from studio.text.lite_words import FAMILY_WORDS, MOTIFS, PALETTE_WORDS

    vocab = set(_LITE_GENERIC)
    for table in (FAMILY_WORDS, MOTIFS, PALETTE_WORDS):
        for words in table.values():
            for w in words:
                vocab.update(w.split())
    vocab -= {"latte", "coffee", "cafe", "beach", "bread", "bakery", "flower", "fruit", "tea", "juice", "sea",
              "wedding", "beauty", "cosmetic", "salon", "clinic", "spa", "medical", "kids", "plant", "leaf",
              "chocolate", "espresso", "lemon", "cherry", "blossom", "rose", "maple", "forest", "ocean", "water"}
    glossary = glossary or Glossary.load()
    out: list[str] = []
    for w in split_keywords(keywords):
        en = " ".join(glossary.translate(w).phrases) if HANGUL.search(w) else w
        tokens = re.findall(r"[a-z]+", en.lower())
        if tokens and any(t not in vocab for t in tokens):
            out.append(w)
    return out
