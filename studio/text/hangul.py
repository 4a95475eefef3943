"""Small Hangul helpers: final consonants (받침), particles (조사) and a tiny template filler.

`attach("커피", "을/를")` -> "커피를"; `attach("빵", "으로/로")` -> "빵으로"; `attach("케이크", "으로/로")`
-> "케이크로"; `attach("라멜", "으로/로")` -> "라멜로" (ㄹ 받침 takes 로).

`fill("{product:을} 드셔 보세요", product="라떼")` -> "라떼를 드셔 보세요".
Words ending in digits, Latin letters or symbols are read aloud the way Koreans say them ("1+1" ends
in 일 -> ㄹ, "20%" ends in 퍼센트 -> no 받침, "cafe" -> no 받침).
"""

from __future__ import annotations

import re

HANGUL_FIRST = 0xAC00
HANGUL_LAST = 0xD7A3
JONG_RIEUL = 8  # index of ㄹ among the 28 final-consonant slots (0 = none)

# How the last digit of a number is read (Sino-Korean): 0 영, 1 일, 2 이, 3 삼, 4 사, 5 오, 6 육, 7 칠, 8 팔, 9 구
_DIGIT_JONG = {"0": 21, "1": 8, "2": 0, "3": 16, "4": 0, "5": 0, "6": 1, "7": 8, "8": 8, "9": 0}
# Round numbers are read by their unit: 10 십(ㅂ), 100 백(ㄱ), 1000 천(ㄴ), 10000+ 만(ㄴ)
_UNIT_JONG = {1: 17, 2: 1, 3: 4}
# Symbols read aloud
_SYMBOL_JONG = {"%": 0, "+": 0, "원": 4, "₩": 4, "$": 0, "%p": 0}
# Latin letter names / word endings (rough but the common cases are right)
_LATIN_LETTER_JONG = {"l": 8, "m": 16, "n": 4, "r": 0}

PARTICLES: dict[str, tuple[str, str]] = {
    # key: (after a final consonant, after a vowel)
    "을/를": ("을", "를"),
    "이/가": ("이", "가"),
    "은/는": ("은", "는"),
    "과/와": ("과", "와"),
    "아/야": ("아", "야"),
    "이랑/랑": ("이랑", "랑"),
    "이에요/예요": ("이에요", "예요"),
    "이라/라": ("이라", "라"),
    "이나/나": ("이나", "나"),
    "으로/로": ("으로", "로"),
}
# short aliases usable in templates: {x:을} {x:를} both mean 을/를
_ALIASES = {}
for _key, (_a, _b) in PARTICLES.items():
    _ALIASES[_key] = _key
    _ALIASES[_a] = _key
    _ALIASES[_b] = _key


def final_consonant(word: str) -> int | None:
    """Index (0..27) of the final consonant of the last pronounced syllable; 0 = none.

    None when the word has nothing we can read (empty or only punctuation).
    """
    text = word.rstrip(" \t\n.,!?~…'\")]}>*·")
    if not text:
        return None
    if text.endswith("%p"):
        return 0
    ch = text[-1]
    code = ord(ch)
    if HANGUL_FIRST <= code <= HANGUL_LAST:
        return (code - HANGUL_FIRST) % 28
    if ch.isdigit():
        digits = re.search(r"(\d+)$", text)
        number = digits.group(1) if digits else ch
        stripped = number.rstrip("0")
        zeros = len(number) - len(stripped)
        if stripped and zeros:
            return 4 if zeros >= 4 else _UNIT_JONG[zeros]  # ...만 / 십, 백, 천
        return _DIGIT_JONG[ch]
    if ch in _SYMBOL_JONG:
        return _SYMBOL_JONG[ch]
    if ch.isascii() and ch.isalpha():
        low = text.lower()
        if low.endswith(("ng", "m", "n", "l")):
            return 21 if low.endswith("ng") else _LATIN_LETTER_JONG[low[-1]]
        if low.endswith(("k", "t", "p", "b", "d", "g")) and len(low) > 1:
            return 1  # "book" -> 북, "shop" -> 숍: stop endings usually keep a 받침
        return 0
    return None


def has_batchim(word: str) -> bool:
    jong = final_consonant(word)
    return bool(jong)


def particle(word: str, kind: str) -> str:
    """The particle for `word`: kind is "을/를", "을", "를", "으로/로" ..."""
    key = _ALIASES.get(kind)
    if key is None:
        raise ValueError(f"unknown particle {kind!r}")
    with_final, without = PARTICLES[key]
    jong = final_consonant(word)
    if jong is None:
        return f"{with_final}({without})" if key != "으로/로" else "(으)로"
    if key == "으로/로":
        # ㄹ 받침 behaves like a vowel here: 서울로, 라멜로
        return without if jong in (0, JONG_RIEUL) else with_final
    return with_final if jong else without


def attach(word: str, kind: str) -> str:
    return f"{word}{particle(word, kind)}"


_FIELD = re.compile(r"\{(\w+)(?::([^{}]+))?\}")


def fill(template: str, **values: str) -> str:
    """Fill `{name}` and `{name:을}` fields; the particle follows the value's final consonant."""

    def _sub(m: re.Match[str]) -> str:
        name, kind = m.group(1), m.group(2)
        if name not in values:
            raise KeyError(name)
        value = str(values[name])
        return attach(value, kind) if kind else value

    return _FIELD.sub(_sub, template)


def fields_of(template: str) -> set[str]:
    return {m.group(1) for m in _FIELD.finditer(template)}


def eojeol(text: str) -> list[str]:
    """Split into 어절 (space-separated words); explicit newlines are kept as "\\n" tokens."""
    out: list[str] = []
    for i, line in enumerate(text.split("\n")):
        if i:
            out.append("\n")
        out.extend(w for w in line.split() if w)
    return out


def clamp_eojeol(text: str, limit: int) -> str:
    """Cut `text` to at most `limit` characters at a word boundary (never mid-word if avoidable)."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    words = text.split(" ")
    out = ""
    for w in words:
        cand = f"{out} {w}" if out else w
        if len(cand) > limit:
            break
        out = cand
    if not out:
        out = text[:limit]
    return out.rstrip(",·-~ ")
