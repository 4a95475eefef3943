"""Stock metadata per image, and the CSV files the contributor sites take.

Adobe Stock (helpx.adobe.com/stock/contributor, "CSV requirements"): header row exactly
``Filename,Title,Keywords,Category,Releases``; UTF-8; ≤ 5,000 rows and ≤ 1 MB per file;
Filename ≤ 30 characters with its extension; Title ≤ 70 characters without commas; Keywords
comma-separated in order of importance, at most 50 (an older page says 49, so we keep 49);
Category is Adobe's category number; Releases may stay empty.

Crowdpic (크라우드픽, the Korean contributor site): uploads are made in its web form (title,
description, tags); we found no documented CSV import, so the Korean CSV uses the form's fields
as columns (파일명, 제목, 설명, 키워드) for copying into it. The documented limits we found are the
image ones (JPG/PNG ≥ 1,024 px per side, ≤ 50 MB); the title/keyword caps below are ours.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from typing import Any

from studio.text.glossary import HANGUL


@dataclass(frozen=True)
class Platform:
    id: str
    header: tuple[str, ...]
    title_max: int
    keywords_max: int
    filename_max: int
    title_commas: bool           # commas allowed in the title
    encoding: str = "utf-8"      # "utf-8-sig" writes a BOM (Excel opens Korean right)
    documented: bool = True


PLATFORMS: dict[str, Platform] = {
    "adobe": Platform("adobe", ("Filename", "Title", "Keywords", "Category", "Releases"), title_max=70,
                      keywords_max=49, filename_max=30, title_commas=False),
    "crowdpic": Platform("crowdpic", ("파일명", "제목", "설명", "키워드"), title_max=50, keywords_max=30,
                         filename_max=100, title_commas=True, encoding="utf-8-sig", documented=False),
}

# Adobe Stock category numbers (contributor guide "Choose the right category")
ADOBE_CATEGORY = {"cafe": 4, "restaurant": 7, "bakery": 7, "salon": 12, "fitness": 18, "fashion": 12,
                  "flower": 14, "academy": 12, "nail": 12, "background": 8}
_STOP = {"with", "and", "the", "for", "from", "into", "onto", "over", "under", "style", "light", "view",
         "shot", "tones", "colors", "colour", "color", "composition", "background", "space", "copy", "a", "an",
         "on", "in", "of", "at", "to", "by", "its", "look", "plain", "rule", "thirds", "negative", "depth",
         "field", "shallow", "close", "up", "wide", "top", "down"}


@dataclass
class StockMeta:
    title_en: str
    title_ko: str
    description_ko: str
    keywords_en: list[str] = field(default_factory=list)
    keywords_ko: list[str] = field(default_factory=list)
    category: int = 8

    def to_dict(self) -> dict:
        return {"title_en": self.title_en, "title_ko": self.title_ko, "description_ko": self.description_ko,
                "keywords_en": list(self.keywords_en), "keywords_ko": list(self.keywords_ko),
                "category": self.category}

    @classmethod
    def from_dict(cls, d: dict) -> "StockMeta":
        return cls(d.get("title_en", ""), d.get("title_ko", ""), d.get("description_ko", ""),
                   list(d.get("keywords_en", [])), list(d.get("keywords_ko", [])), int(d.get("category", 8)))


def _clean(word: str) -> str:
    return " ".join(re.sub(r"[\"#,;\n\r\t]+", " ", str(word)).split()).strip(" .")  # a comma would split it


def _uniq(words: list[str], limit: int) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for w in words:
        w = _clean(w)
        if w and w.lower() not in seen:
            seen.add(w.lower())
            out.append(w)
        if len(out) >= limit:
            break
    return out


def clip_title(text: str, limit: int, commas: bool) -> str:
    text = _clean(text) if not commas else " ".join(str(text).split())
    if not commas:
        text = text.replace(",", " ")
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit]
    return (cut.rsplit(" ", 1)[0] if " " in cut else cut).rstrip(" ,.")


def build_meta(prompt: dict, industry: str = "background") -> StockMeta:
    """Metadata for one image from its prompt record (see `StockPrompt.to_dict`)."""
    en = prompt.get("prompt_en", "")
    tags_en = list(prompt.get("tags_en", []))
    words = [w for w in re.findall(r"[A-Za-z][A-Za-z\-]+", en.lower()) if w not in _STOP and len(w) > 2]
    phrases = [p.strip() for p in en.split(",")[:2]]
    keywords_en = _uniq(tags_en + phrases + words, 49)
    keywords_ko = _uniq([w for w in prompt.get("tags_ko", []) if HANGUL.search(str(w))], 30)
    desc = " ".join(str(prompt.get("description_ko", "")).split())
    title_ko = re.split(r"[.。!?]", desc)[0] if desc else (keywords_ko[0] if keywords_ko else "")
    title_en = prompt.get("title_en") or (phrases[0] if phrases else "Stock image")
    return StockMeta(clip_title(title_en, 70, False), clip_title(title_ko, 50, True), desc,
                     keywords_en, keywords_ko, ADOBE_CATEGORY.get(industry, 8))


def platform_row(platform: str, filename: str, meta: StockMeta) -> list[str]:
    p = PLATFORMS[platform]
    if len(filename) > p.filename_max:
        raise ValueError(f"{platform}: file name {filename!r} longer than {p.filename_max}")
    if platform == "adobe":
        return [filename, clip_title(meta.title_en, p.title_max, False),
                ", ".join(_uniq(meta.keywords_en, p.keywords_max)), str(meta.category), ""]
    kws = _uniq(meta.keywords_ko + meta.keywords_en, p.keywords_max)
    return [filename, clip_title(meta.title_ko or meta.title_en, p.title_max, True), meta.description_ko,
            ", ".join(kws)]


def write_csv(platform: str, rows: list[tuple[str, StockMeta]]) -> bytes:
    """The CSV file for a platform: header + one row per (file name, metadata)."""
    p = PLATFORMS[platform]
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerow(p.header)
    for filename, meta in rows:
        writer.writerow(platform_row(platform, filename, meta))
    return buf.getvalue().encode(p.encoding)


# --- metadata from what was drawn (issue 21) ---------------------------------------------------
# Adobe Stock category numbers, from the contributor guide's category list
# (helpx.adobe.com/stock/contributor/help/categories... see the issue-21 report for the source):
# 1 Animals, 2 Buildings and Architecture, 3 Business, 4 Drinks, 5 The Environment, 6 States of Mind,
# 7 Food, 8 Graphic Resources, 9 Hobbies and Leisure, 10 Industry, 11 Landscapes, 12 Lifestyle,
# 13 People, 14 Plants and Flowers, 15 Culture and Religion, 16 Science, 17 Social Issues,
# 18 Sports, 19 Technology, 20 Transport, 21 Travel.
CAT_GRAPHIC_RESOURCES = 8
CONTENT_CATEGORY: dict[str, int] = {
    "coffee": 4, "latte": 4, "americano": 4, "cappuccino": 4, "cafe": 4, "espresso": 4, "tea": 4, "juice": 4,
    "cocktail": 4, "wine": 4, "drink": 4,
    "bread": 7, "cake": 7, "dessert": 7, "croissant": 7, "pasta": 7, "pizza": 7, "food": 7, "salad": 7,
    "flower": 14, "flowers": 14, "bouquet": 14, "plant": 14, "leaf": 14, "blossom": 14, "rose": 14, "tulip": 14,
    "beach": 11, "mountain": 11, "sea": 11, "sky": 11, "landscape": 11, "forest": 11,
    "hanok": 2, "building": 2, "interior": 2, "architecture": 2, "palace": 2,
    "gym": 18, "fitness": 18, "yoga": 18, "workout": 18,
    "salon": 12, "hair": 12, "nail": 12, "cosmetic": 12, "makeup": 12, "fashion": 12,
    "dog": 1, "cat": 1, "bird": 1,
}

# what each lite family / motif is called (English title noun, Korean title noun, keywords)
KIND_WORDS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "marble": ("marble texture", "대리석 질감", ("marble", "stone", "texture", "veined", "surface")),
    "terrazzo": ("terrazzo texture", "테라조 질감", ("terrazzo", "speckled", "chips", "texture", "surface")),
    "watercolor": ("watercolour wash background", "수채화 번짐 배경",
                   ("watercolor", "watercolour", "wash", "paint", "artistic", "paper")),
    "concrete": ("concrete wall texture", "콘크리트 벽 질감", ("concrete", "cement", "wall", "grunge", "texture")),
    "wood": ("wood plank texture", "나무 판자 질감", ("wood", "wooden", "planks", "grain", "timber", "texture")),
    "linen": ("linen fabric texture", "린넨 천 질감", ("linen", "fabric", "textile", "weave", "cloth", "texture")),
    "bokeh": ("bokeh lights background", "보케 빛망울 배경", ("bokeh", "lights", "defocused", "glow", "festive")),
    "gradient": ("soft mesh gradient background", "부드러운 그라데이션 배경",
                 ("gradient", "mesh gradient", "smooth", "blurred", "wallpaper")),
}
MOTIF_WORDS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "dots": ("polka dot pattern", "물방울 무늬 패턴", ("polka dot", "dots", "circles", "retro")),
    "stripes": ("striped pattern", "줄무늬 패턴", ("stripes", "striped", "lines")),
    "chevron": ("chevron pattern", "쉐브론 패턴", ("chevron", "zigzag", "geometric")),
    "waves": ("wavy line pattern", "물결 무늬 패턴", ("waves", "wavy", "lines")),
    "gingham": ("gingham check pattern", "깅엄 체크 패턴", ("gingham", "check", "plaid", "picnic")),
    "hexagon": ("hexagon pattern", "육각형 패턴", ("hexagon", "honeycomb", "geometric")),
    "scales": ("seigaiha wave scale pattern", "청해파 비늘 패턴", ("seigaiha", "scales", "japanese style")),
}
# named colours for titles: (English, Korean, RGB)
COLOUR_NAMES: tuple[tuple[str, str, tuple[int, int, int]], ...] = (
    ("white", "흰색", (245, 245, 242)), ("cream", "크림색", (243, 232, 210)), ("beige", "베이지", (216, 200, 172)),
    ("light grey", "연회색", (200, 200, 200)), ("grey", "회색", (128, 128, 128)), ("charcoal", "먹색", (50, 50, 52)),
    ("black", "검정", (15, 15, 15)), ("brown", "갈색", (120, 75, 45)), ("dark brown", "진갈색", (62, 38, 24)),
    ("tan", "황갈색", (190, 140, 95)), ("gold", "금색", (205, 165, 90)), ("yellow", "노란색", (250, 210, 90)),
    ("orange", "주황색", (240, 140, 60)), ("coral", "코랄", (235, 120, 110)), ("red", "빨간색", (185, 35, 45)),
    ("pink", "분홍색", (240, 180, 200)), ("blush", "연분홍", (248, 220, 228)), ("burgundy", "버건디", (110, 30, 50)),
    ("purple", "보라색", (120, 60, 130)), ("lavender", "라벤더", (215, 200, 240)), ("navy", "남색", (20, 40, 85)),
    ("blue", "파란색", (40, 100, 160)), ("sky blue", "하늘색", (150, 200, 235)), ("teal", "청록색", (35, 140, 135)),
    ("mint", "민트색", (190, 235, 220)), ("green", "초록색", (70, 130, 80)), ("sage", "세이지", (175, 195, 160)),
    ("olive", "올리브색", (110, 115, 60)), ("dark green", "진초록", (25, 60, 45)),
)


def colour_shares(img: Any, floor: float = 0.02) -> list[tuple[str, float]]:
    """How much of the image each named colour covers (English name, share), largest first."""
    import numpy as np

    arr = np.asarray(img.convert("RGB").resize((48, 48)), np.float32).reshape(-1, 3)
    refs = np.array([c[2] for c in COLOUR_NAMES], np.float32)
    d = ((arr[:, None, :] - refs[None]) ** 2).sum(-1)
    counts = np.bincount(d.argmin(1), minlength=len(COLOUR_NAMES)) / len(arr)
    return [(COLOUR_NAMES[int(i)][0], round(float(counts[i]), 3)) for i in np.argsort(-counts)
            if counts[i] >= floor]


def dominant_colours(img: Any, k: int = 3) -> list[tuple[str, str]]:
    """The image's main colours by name (English, Korean), most covered first."""
    import numpy as np

    arr = np.asarray(img.convert("RGB").resize((48, 48)), np.float32).reshape(-1, 3)
    refs = np.array([c[2] for c in COLOUR_NAMES], np.float32)
    d = ((arr[:, None, :] - refs[None]) ** 2).sum(-1)
    counts = np.bincount(d.argmin(1), minlength=len(COLOUR_NAMES))
    order = [int(i) for i in np.argsort(-counts) if counts[i] >= 0.06 * len(arr)]
    return [(COLOUR_NAMES[i][0], COLOUR_NAMES[i][1]) for i in order[:k]] or \
        [(COLOUR_NAMES[int(counts.argmax())][0], COLOUR_NAMES[int(counts.argmax())][1])]


def _and(words: list[str], ko: bool = False) -> str:
    if len(words) <= 1:
        return "".join(words)
    return (", ".join(words[:-1]) + (" and " if not ko else "·") + words[-1]) if not ko else "·".join(words)


def meta_from_drawn(drawn: dict, colours: list[tuple[str, str]], tiles: bool) -> StockMeta:
    """Title, keywords and category from what the lite engine drew and what the image shows:
    the kind (family/motif), its main colours, and "seamless" only when the tiling test passed."""
    family, motif = drawn.get("family", "gradient"), drawn.get("motif")
    if family == "pattern" and motif in MOTIF_WORDS:
        noun_en, noun_ko, kw = MOTIF_WORDS[motif]
        kw = kw + ("pattern", "geometric pattern", "repeat")
    else:
        noun_en, noun_ko, kw = KIND_WORDS.get(family, KIND_WORDS["gradient"])
    cols_en = [c[0] for c in colours]
    cols_ko = [c[1] for c in colours]
    lead = "Seamless " if tiles else ""
    title_en = f"{lead}{noun_en} in {_and(cols_en[:2])}"
    title_en = title_en[:1].upper() + title_en[1:]
    title_ko = f"{'·'.join(cols_ko[:2])} {noun_ko}" + (" (심리스, 이어 붙이기 가능)" if tiles else "")
    keywords_en = list(kw) + cols_en + (["seamless", "tileable", "repeating"] if tiles else []) + \
        ["background", "backdrop", "graphic resource", "design element", "abstract", "wallpaper", "copy space",
         "template", "decorative", "surface"]
    ko_extra = ["배경", "배경화면", "그래픽 소스", "디자인 소스"] + (["심리스", "패턴 타일"] if tiles else [])
    keywords_ko = [noun_ko] + cols_ko + ko_extra
    desc = f"{title_ko}. AI 없이 코드로 그린 그래픽 소스입니다."
    return StockMeta(clip_title(title_en, 70, False), clip_title(title_ko, 50, True), desc,
                     _uniq(keywords_en, 49), _uniq(keywords_ko, 30), CAT_GRAPHIC_RESOURCES)


def category_for(words: list[str], default: int = CAT_GRAPHIC_RESOURCES) -> int:
    """The Adobe category of the first content word that has one (prompt order = importance)."""
    for w in words:
        for token in re.findall(r"[a-z]+", str(w).lower()):
            for form in (token, token[:-1] if token.endswith("s") else token):
                if form in CONTENT_CATEGORY:
                    return CONTENT_CATEGORY[form]
    return default


def meta_from_prompt(prompt: dict, tiles: bool) -> StockMeta:
    """Metadata of an AI engine's image from the prompt actually used to make it: its subject words
    lead (the keywords THIS prompt used, not every word the owner typed), then the prompt's own words;
    "seamless" only when the tiling test passed; the category from the content words."""
    en = str(prompt.get("prompt_en", ""))
    low = en.lower()
    phrases = [p.strip() for p in en.split(",") if p.strip()]
    subject = [str(w) for w in prompt.get("subject_en") or []] or \
        [t for t in prompt.get("tags_en", []) if str(t).lower() in low] or phrases[:1]
    in_prompt = [t for t in prompt.get("tags_en", []) if str(t).lower() in low]
    words = [w for w in re.findall(r"[A-Za-z][A-Za-z\-]+", low) if w not in _STOP and len(w) > 2]
    keywords_en = _uniq(subject + in_prompt + phrases[:1] + words, 49)
    title_en = str(prompt.get("title_en") or (phrases[0] if phrases else "Stock image"))
    if not tiles:
        keywords_en = _uniq([" ".join(re.sub(r"(?i)\b(seamless|tileable)\b", " ", k).split())
                             for k in keywords_en], 49)
        title_en = " ".join(w for w in title_en.split() if w.lower() not in {"seamless", "tileable"}) or "Image"
        title_en = title_en[:1].upper() + title_en[1:]
    ko_subject = [w for w in prompt.get("subject_ko") or [] if HANGUL.search(str(w))]
    keywords_ko = _uniq(ko_subject + [w for w in prompt.get("tags_ko", []) if HANGUL.search(str(w))]
                        if not prompt.get("subject_ko") else ko_subject, 30)
    desc = " ".join(str(prompt.get("description_ko", "")).split())
    title_ko = re.split(r"[.。!?]", desc)[0] if desc else (keywords_ko[0] if keywords_ko else "")
    if not tiles:
        title_ko = title_ko.replace("심리스", "").strip() or title_ko
    return StockMeta(clip_title(title_en, 70, False), clip_title(title_ko, 50, True), desc,
                     keywords_en, keywords_ko, category_for(subject + in_prompt + phrases[:1]))


def unique_title(title: str, used: set[str], extras: list[str], limit: int, commas: bool) -> str:
    """`title`, or it with the first distinguishing extra that makes it new in the batch (then a number)."""
    cand = clip_title(title, limit, commas)
    for extra in [""] + list(extras):
        c = clip_title(f"{title} {extra}".strip(), limit, commas) if extra else cand
        if c.lower() not in used:
            used.add(c.lower())
            return c
    n = 2
    while True:
        suffix = f" {n}"
        c = clip_title(title, limit - len(suffix), commas) + suffix
        if c.lower() not in used:
            used.add(c.lower())
            return c
        n += 1
