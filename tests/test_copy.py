"""Korean particles, template copy, hashtags, and the LLM path (fake Ollama) with its fallbacks."""

from __future__ import annotations

import json

import pytest

from fake_ollama import FakeOllama, free_port
from studio.text.copywriter import (HEADLINE_MAX, TONES, AdCopy, CopyRequest, is_korean_tag, write_copy,
                                    write_copy_detailed)
from studio.text.hangul import attach, clamp_eojeol, fill, final_consonant
from studio.text.llm import LLMClient

MODEL = "qwen2.5:7b-instruct"


@pytest.mark.parametrize(("word", "kind", "expected"), [
    ("커피", "을/를", "커피를"), ("빵", "을/를", "빵을"), ("라떼", "이/가", "라떼가"), ("소금빵", "이/가", "소금빵이"),
    ("카페", "은/는", "카페는"), ("꽃집", "은/는", "꽃집은"), ("케이크", "으로/로", "케이크로"),
    ("떡볶음", "으로/로", "떡볶음으로"), ("서울", "으로/로", "서울로"),  # ㄹ 받침 takes 로
    ("물", "으로/로", "물로"), ("1+1", "이/가", "1+1이"), ("20%", "을/를", "20%를"), ("10", "은/는", "10은"),
    ("5000원", "으로/로", "5000원으로"), ("말", "을", "말을"), ("사과", "과/와", "사과와"),
    ("아메리카노", "이에요/예요", "아메리카노예요"), ("빵", "이에요/예요", "빵이에요"),
])
def test_particles_follow_final_consonant(word: str, kind: str, expected: str) -> None:
    assert attach(word, kind) == expected


def test_fill_and_final_consonant_basics() -> None:
    assert fill("{p:을} {q:으로} 드려요", p="크로플", q="포장") == "크로플을 포장으로 드려요"
    assert fill("{p:를} 골라요", p="라떼") == "라떼를 골라요"  # alias: either form of the pair
    assert final_consonant("각") == 1 and final_consonant("가") == 0
    assert final_consonant("!!!") is None
    assert clamp_eojeol("오늘만 특별한 아메리카노 한 잔의 여유", 12) == "오늘만 특별한"


def _req(**kw) -> CopyRequest:
    base = dict(industry="bakery", shop_name="소금빵연구소", product="소금빵", offer="1+1", tone="friendly",
                target="직장인")
    base.update(kw)
    return CopyRequest(**base)


@pytest.mark.parametrize("tone", TONES)
def test_template_copy_is_valid_grammatical_and_tagged(presets, tone: str) -> None:
    for product in ("소금빵", "바게트", "크루아상"):  # 받침 / no 받침 / ㄹ-less vowel ending
        copy, source = write_copy(_req(tone=tone, product=product, english_tags=True), presets, None, seed=3)
        assert source == "template"
        assert isinstance(copy, AdCopy)
        assert 1 <= len(copy.headline) <= HEADLINE_MAX
        text = " ".join([copy.headline, copy.sub_copy, copy.caption])
        # no unresolved particles or template fields
        assert "{" not in text and "(를)" not in text and "(으)로" not in text
        # particles agree with the product's final consonant wherever the product is followed by one
        wrong = {"소금빵": ["소금빵를", "소금빵가", "소금빵는", "소금빵로"],
                 "바게트": ["바게트을", "바게트이 ", "바게트은", "바게트으로"],
                 "크루아상": ["크루아상를", "크루아상가", "크루아상는", "크루아상로 "]}[product]
        for bad in wrong:
            assert bad not in text, (bad, text)
        tags = copy.hashtags
        assert 10 <= len(tags) <= 20
        assert len(set(t.lower() for t in tags)) == len(tags)
        ko = [t for t in tags if is_korean_tag(t)]
        en = [t for t in tags if t.isascii()]
        assert len(ko) > len(tags) / 2 and 1 <= len(en) <= 6
        assert all("#" not in t and " " not in t for t in tags)
        assert tags[0] == "소금빵연구소"
        industry = presets.industry("bakery")
        assert set(tags) & set(industry.hashtags_ko)


def test_templates_vary_and_do_not_repeat_the_same_three_lines(presets) -> None:
    triples = []
    for _ in range(8):
        copy, _src = write_copy(_req(), presets, None)
        triples.append((copy.headline, copy.sub_copy, copy.cta))
    assert all(a != b for a, b in zip(triples, triples[1:]))
    assert len(set(triples)) == len(triples)
    assert len({t[0] for t in triples}) >= 3
    # a seed makes it reproducible
    a, _ = write_copy(_req(), presets, None, seed=42)
    b, _ = write_copy(_req(), presets, None, seed=42)
    assert a == b


def test_empty_fields_still_give_copy(presets) -> None:
    copy, source = write_copy(CopyRequest(industry="flower", tone="premium"), presets, None, seed=1)
    assert source == "template" and copy.headline and copy.cta
    assert "{" not in copy.caption


def test_llm_copy_is_used_and_cleaned(presets) -> None:
    reply = {"headline": "소금빵 1+1, 오늘 하루만 특별하게 드리는 행사입니다", "sub_copy": "<b>갓 구운</b> 소금빵",
             "cta": "지금 오세요", "hashtags": ["#소금빵", "빵 스타그램", "breadlover", "<script>x</script>"],
             "caption": "오늘도 구웠어요"}
    with FakeOllama(models=[MODEL]) as fake:
        fake.replies.append(json.dumps(reply, ensure_ascii=False))
        res = write_copy_detailed(_req(english_tags=True), presets, LLMClient(fake.url, MODEL), seed=0)
        assert res.source == "llm"
        assert len(res.copy.headline) <= HEADLINE_MAX and res.copy.headline.startswith("소금빵 1+1")
        assert "빵스타그램" in res.copy.hashtags and "scriptxscript" in res.copy.hashtags
        assert 10 <= len(res.copy.hashtags) <= 20
        sent = fake.chat_requests()[0]
        assert "소금빵연구소" in sent["messages"][1]["content"]
        assert sent["format"]["required"]


def test_llm_trouble_falls_back_to_templates(presets) -> None:
    # server down
    copy, source = write_copy(_req(), presets, LLMClient(f"http://127.0.0.1:{free_port()}", MODEL,
                                                         connect_timeout=0.3), seed=1)
    assert source == "template" and copy.headline
    with FakeOllama(models=[MODEL]) as fake:
        # model missing -> template, and the note carries the pull command
        res = write_copy_detailed(_req(), presets, LLMClient(fake.url, "nope:1b"), seed=1)
        assert res.source == "template" and "ollama pull nope:1b" in res.note("ko")
        # garbage twice -> template
        fake.replies.extend(["garbage", "still garbage"])
        res = write_copy_detailed(_req(), presets, LLMClient(fake.url, MODEL), seed=1)
        assert res.source == "template"
        assert res.copy.headline


def test_hashtags_are_korean_unless_english_is_asked_for(presets) -> None:
    for seed in range(5):
        copy, _ = write_copy(_req(), presets, None, seed=seed)
        assert all(not t.isascii() for t in copy.hashtags), copy.hashtags
        assert copy.hashtags[0] == "소금빵연구소"
        asked, _ = write_copy(_req(english_tags=True), presets, None, seed=seed)
        en = [t for t in asked.hashtags if t.isascii()]
        assert 1 <= len(en) <= 4
        first_en = next(i for i, t in enumerate(asked.hashtags) if t.isascii())
        assert all(t.isascii() for t in asked.hashtags[first_en:]), "Korean first, English after"


def test_a_flower_shop_gets_no_coffee_emoji(presets) -> None:
    from studio.text.copywriter import fit_emojis

    for seed in range(30):
        copy, _ = write_copy(CopyRequest(industry="flower", shop_name="꽃담", product="꽃다발", tone="friendly"),
                             presets, None, seed=seed)
        text = " ".join([copy.headline, copy.sub_copy, copy.cta, copy.caption])
        assert "☕" not in text and "🥐" not in text
    assert fit_emojis("꽃다발 ☕ 준비했어요 💐", "flower") == "꽃다발 준비했어요 💐"
    assert fit_emojis("라떼 ☕", "cafe") == "라떼 ☕"


def test_llm_copy_for_a_flower_shop_loses_the_coffee_and_english_tags(presets) -> None:
    reply = {"headline": "봄 꽃다발 ☕", "sub_copy": "향기로운 하루 ☕", "cta": "예약하세요",
             "hashtags": ["꽃집", "flowers", "꽃스타그램"], "caption": "오늘의 꽃 ☕💐"}
    with FakeOllama(models=[MODEL]) as fake:
        fake.replies.append(json.dumps(reply, ensure_ascii=False))
        res = write_copy_detailed(CopyRequest(industry="flower", shop_name="꽃담"), presets,
                                  LLMClient(fake.url, MODEL), seed=0)
        assert res.source == "llm"
        text = " ".join([res.copy.headline, res.copy.sub_copy, res.copy.caption])
        assert "☕" not in text and "💐" in text
        assert "flowers" not in res.copy.hashtags and all(not t.isascii() for t in res.copy.hashtags)
        assert "영어 태그 없이" in fake.chat_requests()[0]["messages"][0]["content"]


def test_a_malformed_llm_reply_never_reaches_the_owner(presets) -> None:
    with FakeOllama(models=[MODEL]) as fake:
        fake.replies.extend(['{"headline": "x", "hashtags": [', '{"headline": ""}'])
        res = write_copy_detailed(_req(), presets, LLMClient(fake.url, MODEL), seed=1)
        assert res.source == "template"
        for lang in ("ko", "en"):
            note = res.note(lang)
            assert "JSON" in note or "형식" in note
            for leak in ("Invalid JSON", "EOF", "validation error", "pydantic", "line 1", "input_value", "{"):
                assert leak not in note, (leak, note)


def test_copy_request_limits_name_the_field(presets) -> None:
    from studio.errors import InputError

    with pytest.raises(InputError) as exc:
        CopyRequest.checked(industry="cafe", shop_name="가" * 100_000)
    assert "가게 이름" in exc.value.message("ko") and "40자" in exc.value.message("ko")
    assert "shop name" in exc.value.message("en")


def test_a_hanging_llm_holds_the_owner_only_for_the_configured_timeout(presets, settings) -> None:
    """Ollama answers /api/tags but hangs on chat: the copy falls back within the timeout
    (settings.llm_timeout_s, 30 s by default; here 0.5 s), with a note saying what happened."""
    import time

    assert settings.llm_timeout_s == 30.0
    with FakeOllama(models=[MODEL]) as fake:
        fake.delay = 5.0
        client = LLMClient.from_settings(settings.with_(ollama_host=fake.url, ollama_model=MODEL, llm_timeout_s=0.5))
        t0 = time.perf_counter()
        res = write_copy_detailed(_req(), presets, client, seed=1)
        took = time.perf_counter() - t0
        assert res.source == "template" and took < 2.5, took
        assert "초 안에 답하지 않았습니다" in res.note("ko")
