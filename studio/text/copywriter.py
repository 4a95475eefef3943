"""Korean ad copy and hashtags: the local LLM when it answers, a template engine otherwise.

`write_copy(req, presets, llm, seed)` never raises for LLM trouble: any LLM error (server down,
model missing, timeout, bad JSON) falls back to the templates and says so in the returned source
("llm" or "template"); `write_copy_detailed` also returns the reason in Korean/English.

Templates are written per tone with `{field:을}`-style particles (see `studio.text.hangul`), so the
particle follows the final consonant of whatever the owner typed. Unseeded calls remember the last
few (headline, sub-copy, CTA) triples and do not hand the same three lines out again.
"""

from __future__ import annotations

import json
import logging
import random
import re
import threading
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from studio.errors import StudioError
from studio.i18n import t
from studio.text.hangul import attach, clamp_eojeol, fields_of, fill

if TYPE_CHECKING:
    from studio.presets import Industry, Presets
    from studio.text.llm import LLMClient

log = logging.getLogger(__name__)

Tone = Literal["friendly", "premium", "playful", "trendy"]
TONES: tuple[str, ...] = ("friendly", "premium", "playful", "trendy")
HEADLINE_MAX = 20
TAGS_MIN, TAGS_MAX = 10, 20
MAX_EN_TAGS = 4


class CopyRequest(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)
    industry: str = "cafe"
    shop_name: str = Field(default="", max_length=40)
    product: str = Field(default="", max_length=60)
    offer: str = Field(default="", max_length=80)
    tone: Tone = "friendly"
    target: str = Field(default="", max_length=60)
    english_tags: bool = False  # hashtags are Korean; English ones only when the owner asks

    @classmethod
    def checked(cls, **fields: Any) -> "CopyRequest":
        """A request from owner input: every text within its limit (InputError naming the field
        otherwise), never a pydantic error text."""
        from studio.text.limits import limit

        for name, key in (("shop_name", "shop"), ("product", "product"), ("offer", "offer"), ("target", "target")):
            if name in fields:
                fields[name] = limit(fields[name], key).strip()
        return cls(**fields)


class AdCopy(BaseModel):
    headline: str = Field(min_length=1, max_length=HEADLINE_MAX)
    sub_copy: str = Field(default="", max_length=120)
    cta: str = Field(default="", max_length=40)
    hashtags: list[str] = Field(min_length=TAGS_MIN, max_length=TAGS_MAX)
    caption: str = Field(default="", max_length=2200)  # Instagram's caption limit

    @field_validator("hashtags")
    @classmethod
    def _clean_tags(cls, v: list[str]) -> list[str]:
        bad = [tag for tag in v if not tag or tag != clean_tag(tag)]
        if bad:
            raise ValueError(f"hashtags must be bare words without '#', spaces or punctuation: {bad}")
        return v

    def hashtag_line(self) -> str:
        return " ".join(f"#{tag}" for tag in self.hashtags)

    def caption_with_hashtags(self) -> str:
        return f"{self.caption.rstrip()}\n\n{self.hashtag_line()}".strip()


class LLMCopy(BaseModel):
    """What the LLM is asked for (lenient; cleaned up into an AdCopy)."""
    headline: str
    sub_copy: str
    cta: str
    hashtags: list[str]
    caption: str


@dataclass(frozen=True)
class CopyResult:
    copy: AdCopy
    source: Literal["llm", "template"]
    note_key: str
    note_fields: dict
    error: StudioError | None = None

    def note(self, lang: str = "ko") -> str:
        fields = dict(self.note_fields)
        if self.error is not None:
            fields["reason"] = self.error.message(lang)
        return t(self.note_key, lang, **fields)


# --- hashtags ----------------------------------------------------------------------------------
_TAG_STRIP = re.compile(r"[^0-9A-Za-z_\uac00-\ud7a3\u3131-\u318e]")


def clean_tag(tag: str) -> str:
    """'#동네 카페!' -> '동네카페' (letters, digits, Hangul and '_' only)."""
    return _TAG_STRIP.sub("", tag)


def is_korean_tag(tag: str) -> bool:
    return any("\uac00" <= ch <= "\ud7a3" for ch in tag)


@dataclass(frozen=True)
class TrendTags:
    common_ko: tuple[str, ...]
    common_en: tuple[str, ...]
    by_industry: dict[str, tuple[tuple[str, ...], tuple[str, ...]]]

    @classmethod
    def load(cls, presets: "Presets") -> "TrendTags":
        try:
            raw = presets.raw("trend_tags")
        except (FileNotFoundError, json.JSONDecodeError) as exc:
            log.warning("trend_tags preset unusable (%s); using industry tags only", exc)
            return cls((), (), {})
        by: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
        for item in raw.get("items", []):
            by[str(item["id"])] = (tuple(map(clean_tag, item.get("ko", []))), tuple(map(clean_tag, item.get("en", []))))
        return cls(tuple(map(clean_tag, raw.get("common_ko", []))), tuple(map(clean_tag, raw.get("common_en", []))), by)

    def for_industry(self, industry: "Industry") -> tuple[list[str], list[str]]:
        ko_extra, en_extra = self.by_industry.get(industry.id, ((), ()))
        ko = _dedupe(list(industry.hashtags_ko) + list(ko_extra) + list(self.common_ko))
        en = _dedupe(list(industry.hashtags_en) + list(en_extra) + list(self.common_en))
        return ko, en


def _dedupe(tags: list[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for tag in tags:
        tag = clean_tag(tag)
        key = tag.lower()
        if tag and key not in seen:
            seen.add(key)
            out.append(tag)
    return out


def build_hashtags(req: CopyRequest, industry: "Industry", trend: TrendTags, rng: random.Random,
                   first: list[str] | None = None) -> list[str]:
    """10..20 tags: the shop and product first, then industry + trend tags, all Korean; 2-4
    English ones at the end only when `req.english_tags` (the owner asked for them)."""
    ko_pool, en_pool = trend.for_industry(industry)
    own = [clean_tag(x) for x in (req.shop_name, req.product) if clean_tag(x)]
    given = _dedupe(list(first or []))
    given_ko = [x for x in given if is_korean_tag(x) or not x.isascii()]
    given_en = [x for x in given if x not in given_ko][:MAX_EN_TAGS]
    if not req.english_tags:
        given_en, en_pool = [], []
    n_en = min(len(en_pool) + len(given_en), max(len(given_en), rng.randint(2, 3)), MAX_EN_TAGS)
    total = rng.randint(14, 18)
    head = _dedupe(own + given_ko)
    rest_ko = [x for x in ko_pool if x.lower() not in {h.lower() for h in head}]
    # keep the industry's core tags likely, shuffle the trend tail
    core, tail = rest_ko[:6], rest_ko[6:]
    rng.shuffle(core)
    rng.shuffle(tail)
    ko = _dedupe(head + core + tail)[: max(TAGS_MIN - n_en, total - n_en)]
    en_rest = [x for x in en_pool if x.lower() not in {g.lower() for g in given_en}]
    rng.shuffle(en_rest)
    en = _dedupe(given_en + en_rest)[:n_en]
    tags = _dedupe(ko + en)[:TAGS_MAX]
    if len(tags) < TAGS_MIN:  # tiny presets: pad from the common lists
        tags = _dedupe(tags + list(trend.common_ko) + (list(trend.common_en) if req.english_tags else []) + ["소상공인", "동네가게", "오늘의추천",
                                                                                 "이벤트", "추천", "일상", "광고",
                                                                                 "신상", "데일리", "인기"])[:TAGS_MAX]
    return tags


# --- templates ---------------------------------------------------------------------------------
# Fields: shop, product, offer, target, industry. A template is only used when every field it
# names is non-empty; headlines longer than 20 characters after filling are skipped.
HEADLINES: dict[str, list[str]] = {
    "friendly": ["{product}, 오늘 어때요?", "우리 동네 {product}", "{offer} {product}", "{product:으로} 여는 하루",
                 "{shop}의 {product}", "오늘은 {product:이} 딱이에요", "정성 가득 {product}", "{product}, 같이 해요",
                 "{offer}, 오늘만요!", "반가워요, {product}"],
    "premium": ["한 끗 다른 {product}", "{product}의 품격", "깊이가 다른 {product}", "정성으로 빚은 {product}",
                "{shop}, 그 이상의 가치", "{offer} 특별한 초대", "오직 {shop}에서", "당신을 위한 {product}",
                "시간을 담은 {product}"],
    "playful": ["{product}? 여기 있어요!", "지금은 {product} 타임!", "두근두근 {product}", "{offer}! 실화예요",
                "{product} 찜 완료!", "{product:이} 부른다~", "놓치면 아쉬운 {product}", "오늘도 {product} 각!"],
    "trendy": ["요즘 핫한 {product}", "{product}, 여기가 찐", "지금 제일 힙한 {product}", "{offer} 실화?",
               "{product} 오픈런 각", "난리 난 {product}", "{shop} 요즘 핫플", "{product} 인생템 등극"],
}
SUBS: dict[str, list[str]] = {
    "friendly": ["{target:을} 위한 {product:을} 정성껏 준비했어요.", "{shop}에서 {product:을} 편하게 만나 보세요.",
                 "{offer} 혜택으로 {product:을} 더 가볍게 즐겨 보세요.", "{product:이} 생각나는 날엔 {shop:으로} 오세요.",
                 "{target}에게 꼭 맞는 {product:을} 추천해 드려요.", "매일 같은 마음으로 {product:을} 준비합니다.",
                 "{shop}의 {product}, 한 번 맛보면 단골이 돼요."],
    "premium": ["{shop:이} 고른 재료와 손길로 완성한 {product}입니다.", "{target:을} 위해 준비한 특별한 {product}.",
                "{offer}, 이번 기회에 {product:을} 경험해 보세요.", "{product:은} {shop}만의 기준으로 완성됩니다.",
                "작은 차이가 만드는 큰 만족, {shop:이} 약속합니다."],
    "playful": ["{product:을} 보면 그냥 지나칠 수 없죠? {shop:으로} 놀러 오세요!",
                "{offer:이라}니, 지금 안 오면 손해예요!", "{target} 다 모여라! {product:이} 기다려요.",
                "{shop}의 {product}, 한 번 빠지면 못 나와요~", "친구랑 같이 오면 {product:이} 두 배로 즐거워요!"],
    "trendy": ["{target} 사이에서 입소문 난 {product}, 직접 확인해 보세요.", "{shop:은} 지금 {product:으로} 난리 났어요.",
               "{offer} 소식, 저장해 두고 친구에게도 알려 주세요.", "요즘 {product:은} {shop}에서 끝.",
               "피드에서 본 그 {product}, {shop}에 있어요."],
}
CTAS: dict[str, list[str]] = {
    "friendly": ["지금 방문해 보세요", "DM으로 예약하세요", "오늘 들러 주세요", "프로필 링크에서 확인하세요",
                 "전화 주시면 준비해 둘게요"],
    "premium": ["지금 예약하기", "예약은 DM으로 문의하세요", "프로필 링크에서 만나보세요", "한정 수량, 지금 예약하세요"],
    "playful": ["지금 바로 고고!", "얼른 놀러 오세요!", "친구 태그하고 같이 와요!", "저장하고 꼭 와요!"],
    "trendy": ["지금 저장각", "DM 주세요", "프로필 링크 클릭", "오픈런 준비 완료?"],
}
CAPTION_OPENERS: dict[str, list[str]] = {
    "friendly": ["안녕하세요, {shop}입니다 😊", "{shop}에서 소식 전해요 {emoji}", "오늘도 {shop:을} 찾아 주셔서 고마워요 🙌"],
    "premium": ["{shop}입니다.", "{shop:이} 전하는 소식입니다.", "정성을 담아, {shop}."],
    "playful": ["짜잔~ {shop:이에요}! 🎉", "두구두구, {shop} 소식 도착! 🥳", "{shop} 출동! ✨"],
    "trendy": ["📍{shop}", "요즘 핫한 {shop} 소식 🔥", "저장 필수 ✔️ {shop}"],
}
#: One emoji per industry; another industry's emoji never appears in a shop's copy (no ☕ for flowers).
INDUSTRY_EMOJI: dict[str, str] = {"cafe": "☕", "restaurant": "🍽️", "bakery": "🥐", "salon": "💇", "fitness": "💪",
                                  "fashion": "👗", "flower": "💐", "academy": "📚", "nail": "💅"}
_OTHER_EMOJI = {"🍰", "🍞", "🥖", "🍜", "🍲", "🌸", "🌷", "🌹", "🏋️", "✂️", "👠", "📖", "✏️", "🧋", "🍵"}


def fit_emojis(text: str, industry_id: str) -> str:
    """`text` without emojis that belong to another kind of shop (an LLM or a template may add
    ☕ to anything); this industry's own emoji stays."""
    own = INDUSTRY_EMOJI.get(industry_id, "✨")
    foreign = (set(INDUSTRY_EMOJI.values()) | _OTHER_EMOJI) - {own}
    for e in sorted(foreign, key=len, reverse=True):
        text = text.replace(e + " ", "").replace(" " + e, "").replace(e, "")
    return text


CAPTION_OFFER = ["🎁 {offer} 진행 중이에요.", "지금 {offer} 혜택을 드려요.", "이번 주 한정 {offer}!"]
CAPTION_CLOSERS = ["궁금한 점은 DM이나 댓글로 편하게 물어봐 주세요.", "방문 전 예약하시면 더 편하게 이용하실 수 있어요.",
                   "함께하고 싶은 분을 태그해 주세요!", "오늘도 좋은 하루 보내세요."]


class _Recent:
    """Triples handed out recently (unseeded calls avoid repeating them)."""

    def __init__(self, size: int = 12) -> None:
        self._items: deque[tuple[str, str, str]] = deque(maxlen=size)
        self._lock = threading.Lock()

    def seen(self, triple: tuple[str, str, str]) -> bool:
        with self._lock:
            return triple in self._items

    def add(self, triple: tuple[str, str, str]) -> None:
        with self._lock:
            self._items.append(triple)


_RECENT = _Recent()


def _usable(templates: list[str], values: dict[str, str], limit: int | None = None) -> list[str]:
    out = []
    for tpl in templates:
        if any(not values.get(f) for f in fields_of(tpl)):
            continue
        text = fill(tpl, **values)
        if limit is not None and len(text) > limit:
            continue
        out.append(text)
    return out


def template_copy(req: CopyRequest, industry: "Industry", trend: TrendTags, rng: random.Random,
                  avoid_recent: bool = False) -> AdCopy:
    tone = req.tone
    product = req.product or rng.choice(industry.products_ko)
    values = {"shop": req.shop_name, "product": product, "offer": req.offer, "target": req.target,
              "industry": industry.name_ko, "emoji": INDUSTRY_EMOJI.get(industry.id, "✨")}
    heads = _usable(HEADLINES[tone], values, HEADLINE_MAX) or [clamp_eojeol(product, HEADLINE_MAX)]
    subs = _usable(SUBS[tone], values) or [f"{attach(product, '을/를')} 준비했어요."]
    ctas = _usable(CTAS[tone], values)
    triple = (rng.choice(heads), rng.choice(subs), rng.choice(ctas))
    if avoid_recent:
        for _ in range(30):
            if not _RECENT.seen(triple):
                break
            triple = (rng.choice(heads), rng.choice(subs), rng.choice(ctas))
        _RECENT.add(triple)
    headline, sub, cta = triple
    opener = rng.choice(_usable(CAPTION_OPENERS[tone], values) or [""])
    lines = [opener, sub]
    if req.offer:
        lines.append(rng.choice(_usable(CAPTION_OFFER, values)))
    lines.append(rng.choice(CAPTION_CLOSERS))
    lines.append(f"👉 {cta}")
    caption = fit_emojis("\n".join(x for x in lines if x), industry.id)
    return AdCopy(headline=headline, sub_copy=sub, cta=cta, hashtags=build_hashtags(req, industry, trend, rng),
                  caption=caption)


# --- LLM ---------------------------------------------------------------------------------------
TONE_KO = {"friendly": "친근하고 따뜻한 말투(~요)", "premium": "고급스럽고 절제된 말투",
           "playful": "발랄하고 재치 있는 말투", "trendy": "요즘 SNS 유행어를 살짝 섞은 힙한 말투"}


def copy_messages(req: CopyRequest, industry: "Industry", trend: TrendTags) -> list[dict]:
    ko, en = trend.for_industry(industry)
    system = (
        "당신은 한국 소상공인의 인스타그램 광고 문구를 쓰는 카피라이터입니다. 맞춤법과 조사를 정확히 지키고, "
        "과장·허위 표현(최고, 1위, 100% 등 근거 없는 표현)은 쓰지 않습니다. 답은 JSON 객체 하나만 씁니다.\n"
        f"- headline: {HEADLINE_MAX}자 이하, 이모지 없이\n"
        "- sub_copy: 한두 문장, 이모지 없이\n- cta: 짧은 행동 유도 문구, 이모지 없이\n"
        f"- hashtags: {TAGS_MIN}~{TAGS_MAX}개, '#' 없이 띄어쓰기 없는 단어, "
        + ("대부분 한국어에 영어 2~4개, " if req.english_tags else "모두 한국어(영어 태그 없이), ")
        + "아래 후보 태그를 우선 사용\n- caption: 인스타그램 본문 3~6줄, 해시태그는 넣지 않음, 이모지는 "
        + f"이 가게에 어울리는 것만 약간({INDUSTRY_EMOJI.get(industry.id, '✨')} 등; 다른 업종의 이모지는 쓰지 않음)"
    )
    user = (
        f"업종: {industry.name_ko}\n가게 이름: {req.shop_name or '(없음)'}\n"
        f"상품/메뉴: {req.product or ', '.join(industry.products_ko[:3])}\n혜택: {req.offer or '(없음)'}\n"
        f"말투: {TONE_KO[req.tone]}\n타깃 고객: {req.target or '(일반 고객)'}\n"
        f"후보 한국어 태그: {', '.join(ko[:24])}"
        + (f"\n후보 영어 태그: {', '.join(en[:8])}" if req.english_tags else "")
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def _from_llm(raw: LLMCopy, req: CopyRequest, industry: "Industry", trend: TrendTags,
              rng: random.Random) -> AdCopy:
    headline = clamp_eojeol(raw.headline.replace("\n", " ").strip().strip('"'), HEADLINE_MAX)
    if not headline:
        raise ValueError("empty headline")
    tags = build_hashtags(req, industry, trend, rng, first=[clean_tag(x) for x in raw.hashtags])
    own = industry.id
    return AdCopy(headline=fit_emojis(headline, own), sub_copy=fit_emojis(clamp_eojeol(raw.sub_copy.strip(), 120), own),
                  cta=fit_emojis(clamp_eojeol(raw.cta.strip(), 40), own), hashtags=tags,
                  caption=fit_emojis(raw.caption.strip()[:2200], own))


def write_copy_detailed(req: CopyRequest, presets: "Presets", llm: "LLMClient | None",
                        seed: int | None = None) -> CopyResult:
    industry = presets.industry(req.industry)
    trend = TrendTags.load(presets)
    rng = random.Random(seed)
    if llm is not None:
        if not llm.available():
            return CopyResult(template_copy(req, industry, trend, rng, avoid_recent=seed is None), "template",
                              "copy.no_llm", {})
        try:
            raw = llm.chat_json(copy_messages(req, industry, trend), LLMCopy, temperature=0.3)
            return CopyResult(_from_llm(raw, req, industry, trend, rng), "llm", "copy.source.llm",
                              {"model": llm.model})
        except StudioError as exc:
            log.warning("LLM copy failed (%s); using templates", exc.key)
            return CopyResult(template_copy(req, industry, trend, rng, avoid_recent=seed is None), "template",
                              "copy.fallback", {}, exc)
        except ValueError as exc:  # includes pydantic.ValidationError from the clean-up
            # the parser's own text goes to the log; the owner reads what happened in plain words
            log.warning("LLM copy unusable (%s); using templates", exc)
            return CopyResult(template_copy(req, industry, trend, rng, avoid_recent=seed is None), "template",
                              "copy.fallback", {}, StudioError("llm.bad_output"))
    return CopyResult(template_copy(req, industry, trend, rng, avoid_recent=seed is None), "template",
                      "copy.source.template", {})


def write_copy(req: CopyRequest, presets: "Presets", llm: "LLMClient | None",
               seed: int | None = None) -> tuple[AdCopy, str]:
    """(copy, "llm" | "template"). Never raises for LLM trouble."""
    res = write_copy_detailed(req, presets, llm, seed)
    return res.copy, res.source
