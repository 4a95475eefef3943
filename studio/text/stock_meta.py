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
