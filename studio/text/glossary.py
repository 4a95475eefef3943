"""Korean -> English ad-word glossary: the prompt builder's fallback when no local LLM answers.

Data lives in ``presets/glossary_ko_en.json`` (categories of ``{korean: english}``, words to
ignore, particles). `Glossary.translate(text)` splits the owner's text into words and looks each
one up in this order:

1. the whole word (``"아이스아메리카노"``);
2. the word with a trailing particle stripped, longest particle first (``"라떼를"`` -> ``"라떼"``);
3. the word with a common adjective/adverb ending stripped (``"~스러운"``, ``"~하게"``, ...);
4. a greedy longest-prefix split into known words of two or more syllables
   (``"바닐라크림라떼"`` -> vanilla cream latte); leftovers that are not particles are reported.

Words the glossary does not know are returned in `unknown` (and left out of the English text),
so the UI can tell the owner which words it could not use. ASCII words pass through unchanged;
numbers and the counter right after a number (``"10회"``, ``"50%"``) are dropped (copy, not
something to draw).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from studio.config import REPO_ROOT

log = logging.getLogger(__name__)

GLOSSARY_FILE = "glossary_ko_en.json"
HANGUL = re.compile(r"[\uac00-\ud7a3\u3131-\u318e]")
_TOKEN = re.compile(r"[\uac00-\ud7a3\u3131-\u318e]+|[A-Za-z][A-Za-z'\-]*|\d+(?:[.,]\d+)?%?|[,.!?;/·]")
# adjective / adverb endings, tried after particles: (ending, replacement to try on the stem)
ENDINGS: tuple[tuple[str, str], ...] = (
    ("스러운", ""), ("스럽게", ""), ("스런", ""), ("적인", ""), ("적으로", ""), ("하게", ""), ("하고", ""),
    ("해서", ""), ("한", ""), ("히", ""), ("게", ""), ("운", ""), ("은", ""), ("인", ""),
)
# a word ending like this is a request or a verb ("찍어주세요", "유명해요"): not drawn, not reported
VERB_ENDINGS: tuple[str, ...] = ("주세요", "해줘", "줘", "세요", "해요", "어요", "아요", "워요", "습니다", "니다", "싶어요",
                                 "해주", "하다", "했어요")
# particles after which the next word starts a new comma-separated phrase
_SEPARATING = {"와", "과", "랑", "이랑", "하고", "및", "을", "를", "에", "에서", "으로", "로", "도", "만", "이나", "나"}


@dataclass
class Translation:
    phrases: list[str] = field(default_factory=list)     # English phrases, in the owner's order
    unknown: list[str] = field(default_factory=list)     # Korean words the glossary does not know

    @property
    def text(self) -> str:
        return ", ".join(self.phrases)


@dataclass(frozen=True)
class Glossary:
    entries: dict[str, str]
    ignore: frozenset[str]
    particles: tuple[str, ...]      # longest first

    @classmethod
    def load(cls, presets_dir: Path | None = None) -> "Glossary":
        path = (presets_dir or REPO_ROOT / "presets") / GLOSSARY_FILE
        if not path.is_file():
            path = REPO_ROOT / "presets" / GLOSSARY_FILE
        return _load(str(path))

    def __len__(self) -> int:
        return len(self.entries)

    # -- single word ----------------------------------------------------------------------
    def _strip_particle(self, word: str) -> tuple[str, str]:
        for p in self.particles:
            if len(word) > len(p) and word.endswith(p):
                return word[: -len(p)], p
        return word, ""

    def lookup(self, word: str) -> tuple[list[str], list[str], str]:
        """(english pieces, unknown korean pieces, stripped particle) for one Hangul word."""
        if word in self.ignore:
            return [], [], ""
        if word in self.entries:
            return [self.entries[word]], [], ""
        stem, particle = self._strip_particle(word)
        if particle:
            if stem in self.ignore:
                return [], [], particle
            if stem in self.entries:
                return [self.entries[stem]], [], particle
            inner, second = self._strip_particle(stem)          # stacked particles: "봄에는"
            if second and (inner in self.entries or inner in self.ignore):
                return ([self.entries[inner]] if inner in self.entries else []), [], particle
        for base in ([stem, word] if particle else [word]):
            for ending, repl in ENDINGS:
                if len(base) > len(ending) and base.endswith(ending):
                    root = base[: -len(ending)] + repl
                    for cand in (root, root + "한"):
                        if cand in self.entries:
                            return [self.entries[cand]], [], particle
        pieces, unknown = self._segment(stem)
        if unknown and word.endswith(VERB_ENDINGS):
            return pieces, [], particle
        return pieces, unknown, particle

    def _segment(self, word: str) -> tuple[list[str], list[str]]:
        """Greedy longest-prefix split into known words of >= 2 syllables."""
        pieces: list[str] = []
        unknown: list[str] = []
        pending = ""
        i = 0
        longest = 10
        while i < len(word):
            match = ""
            for j in range(min(len(word), i + longest), i + 1, -1):
                cand = word[i:j]
                if cand in self.entries or cand in self.ignore:
                    match = cand
                    break
            if match:
                if pending:
                    unknown.append(pending)
                    pending = ""
                if match in self.entries:
                    pieces.append(self.entries[match])
                i += len(match)
                continue
            if word[i:] in self.particles:
                break
            pending += word[i]
            i += 1
        if pending:
            tail, _ = self._strip_particle(pending)
            unknown.append(tail)
        return pieces, unknown

    # -- text -----------------------------------------------------------------------------
    def translate(self, text: str) -> Translation:
        out = Translation()
        current: list[str] = []
        prev_kind = ""
        prev_end = -1

        def flush() -> None:
            if current:
                phrase = " ".join(current)
                phrase = re.sub(r"\b(\w+)( \1\b)+", r"\1", phrase)      # "latte latte" -> "latte"
                if phrase and phrase not in out.phrases:
                    out.phrases.append(phrase)
                current.clear()

        for match in _TOKEN.finditer(text or ""):
            tok = match.group(0)
            if HANGUL.match(tok):
                if prev_kind == "number" and match.start() == prev_end:
                    prev_kind = "counter"          # "10회", "3개": a counter, not a word
                    continue
                english, unknown, particle = self.lookup(tok)
                for u in unknown:
                    if u not in out.unknown:
                        out.unknown.append(u)
                current.extend(english)
                if particle in _SEPARATING:
                    flush()
                prev_kind = "hangul"
            elif tok[0].isalpha():
                current.append(tok)
                prev_kind = "latin"
            elif tok[0].isdigit():
                prev_kind = "number"
            else:
                flush()
                prev_kind = "punct"
            prev_end = match.end()
        flush()
        return out


@lru_cache(maxsize=4)
def _load(path: str) -> Glossary:
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    if raw.get("version") != 1:
        raise ValueError(f"{path}: unsupported glossary version {raw.get('version')!r}")
    entries: dict[str, str] = {}
    for category, items in raw["categories"].items():
        for ko, en in items.items():
            if not HANGUL.search(ko) or HANGUL.search(en) or not en.strip():
                raise ValueError(f"{path}: bad entry in {category}: {ko!r} -> {en!r}")
            entries[ko] = en.strip()
    particles = tuple(sorted(set(raw.get("particles", [])), key=len, reverse=True))
    return Glossary(entries=entries, ignore=frozenset(raw.get("ignore", [])), particles=particles)
