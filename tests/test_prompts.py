"""Prompt building: glossary (particles, unknown words), LLM path and fallback, budgets, trimming."""

from __future__ import annotations

import json
import logging
import string
from pathlib import Path

import pytest
from pydantic import BaseModel

from studio.text.glossary import HANGUL, Glossary
from studio.text.prompts import (
    QUALITY_BOOSTERS,
    PromptExpansion,
    PromptTokenizers,
    build_prompt,
    estimate_tokens,
    fit_prompt,
)


# ---------------------------------------------------------------------------------------------
# tiny real tokenizers written to disk in the diffusers layout
# ---------------------------------------------------------------------------------------------
def write_tiny_flux_tokenizers(root: Path) -> Path:
    """A CLIP BPE with an almost character-level vocab (so words cost many tokens) and a
    character-level T5 unigram, saved as models/flux-fill/tokenizer{,_2}."""
    from studio.runtime.compat import ensure_torchvision

    ensure_torchvision()
    from transformers import T5TokenizerFast

    clip_dir = root / "tokenizer"
    clip_dir.mkdir(parents=True)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in string.ascii_lowercase + string.digits + ",.-'&":
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    merges = ["t h", "th e</w>", "a n", "an d</w>", "i n", "in g</w>", "o f</w>"]
    for m in merges:
        vocab.setdefault(m.replace(" ", ""), len(vocab))
    (clip_dir / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (clip_dir / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    (clip_dir / "tokenizer_config.json").write_text(
        json.dumps({"model_max_length": 77, "tokenizer_class": "CLIPTokenizer"}), encoding="utf-8")
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    pieces += [("\u2581" + c, -2.0) for c in string.ascii_lowercase]
    pieces += [(c, -3.0) for c in string.ascii_lowercase + string.digits + ",.-'&"]
    t5 = T5TokenizerFast(vocab=pieces, extra_ids=0)
    t5.model_max_length = 512
    t5.save_pretrained(root / "tokenizer_2")
    return root


@pytest.fixture(scope="module")
def tiny_tokenizers(tmp_path_factory) -> tuple[Path, PromptTokenizers]:
    root = write_tiny_flux_tokenizers(tmp_path_factory.mktemp("models") / "flux-fill")
    return root, PromptTokenizers.from_folder(root)


# ---------------------------------------------------------------------------------------------
# glossary
# ---------------------------------------------------------------------------------------------
def test_glossary_size_and_clean_entries():
    g = Glossary.load()
    assert len(g) >= 250
    assert not any(HANGUL.search(v) for v in g.entries.values())


@pytest.mark.parametrize("ko, en", [
    ("라떼를", "latte"), ("크로플이", "croffle"), ("소금빵과", "salt butter roll"), ("딸기라떼는", "strawberry latte"),
    ("대리석에서", "marble"), ("봄에는", "spring"), ("아이스아메리카노", "iced americano"), ("바닐라크림라떼", "vanilla cream latte"),
])
def test_glossary_particles_and_compounds(ko, en):
    assert Glossary.load().translate(ko).text == en


def test_glossary_sentence_phrases_and_unknown_words():
    tr = Glossary.load().translate("딸기 라떼와 크로플, 망원동 느낌으로 따뜻하게 찍어주세요! PT 10회")
    assert tr.phrases[:2] == ["strawberry latte", "croffle"]
    assert "warm" in tr.text and "PT" in tr.text
    assert tr.unknown == ["망원동"]
    assert not HANGUL.search(tr.text) and "10" not in tr.text


# ---------------------------------------------------------------------------------------------
# build_prompt: glossary path
# ---------------------------------------------------------------------------------------------
def test_glossary_path_combines_owner_words_and_presets(presets):
    r = build_prompt("cafe", "natural", "딸기라떼를 봄 느낌으로", presets=presets)
    assert r.source == "glossary"
    assert r.prompt_en.startswith("strawberry latte, spring mood")
    assert r.prompt_en == r.clip_prompt and "\n" not in r.prompt_en and not HANGUL.search(r.prompt_en)
    assert presets.industry("cafe").scene_en in r.t5_prompt
    assert "natural lifestyle photography" in r.t5_prompt
    assert r.estimated and r.counter == "estimate"
    assert r.clip_tokens <= 77 - 4 and r.t5_tokens <= 512


def test_empty_korean_prompt_uses_presets_only(presets):
    r = build_prompt("bakery", "warm", "   ", presets=presets, subject="person")
    assert r.unknown_ko == [] and r.source == "glossary"
    assert "wearing a linen baker apron" in r.prompt_en


def test_unknown_words_reported(presets):
    r = build_prompt("cafe", "studio", "망원동 크로플", presets=presets)
    assert r.unknown_ko == ["망원동"]
    assert "croffle" in r.prompt_en


# ---------------------------------------------------------------------------------------------
# LLM path
# ---------------------------------------------------------------------------------------------
class FakeLLM:
    def __init__(self, reply=None, *, up: bool = True, error: Exception | None = None) -> None:
        self.reply, self.up, self.error = reply, up, error
        self.calls: list[tuple[list[dict], type[BaseModel]]] = []

    def available(self) -> bool:
        return self.up

    def chat_json(self, messages, schema, temperature=0.2):
        self.calls.append((messages, schema))
        if self.error is not None:
            raise self.error
        return schema.model_validate(self.reply)


def test_llm_path_translates_and_expands(presets):
    llm = FakeLLM({"subject_en": "a strawberry latte with a croffle", "details_en": ["fresh strawberries", "pink cream"]})
    r = build_prompt("cafe", "studio", "딸기라떼와 크로플", presets=presets, llm=llm)
    assert r.source == "llm" and r.unknown_ko == []
    assert r.prompt_en.startswith("a strawberry latte with a croffle, fresh strawberries, pink cream")
    messages, schema = llm.calls[0]
    assert schema is PromptExpansion
    assert messages[-1]["content"] == "딸기라떼와 크로플"


@pytest.mark.parametrize("llm", [
    FakeLLM(up=False),
    FakeLLM(error=ConnectionError("refused")),
    FakeLLM(error=TimeoutError("slow")),
    FakeLLM({"subject_en": "딸기 라떼", "details_en": []}),          # answered in Korean
    FakeLLM({"wrong": "shape"}),                                       # schema validation error
])
def test_llm_failure_falls_back_to_glossary(presets, llm):
    r = build_prompt("cafe", "studio", "딸기라떼와 크로플", presets=presets, llm=llm)
    assert r.source == "glossary"
    assert r.prompt_en.startswith("strawberry latte, croffle")


# ---------------------------------------------------------------------------------------------
# budgets and trimming, measured with real tokenizers
# ---------------------------------------------------------------------------------------------
def _priority_of(text: str, presets, industry="cafe", style="studio") -> int:
    ind, sty = presets.industry(industry), presets.style(style)
    if text in QUALITY_BOOSTERS:
        return 4
    if text == sty.lighting_en:
        return 3
    if text in [p.strip() for p in sty.prompt_en.split(",")]:
        return 2
    if text == ind.scene_en or text in ind.prompt_fragments_en:
        return 1
    return 0


@pytest.mark.parametrize("clip_max", [77, 160, 260])
def test_trimming_drops_least_important_first(presets, tiny_tokenizers, clip_max):
    _, real = tiny_tokenizers
    tok = PromptTokenizers(clip=real.clip, t5=real.t5, clip_max=clip_max)   # same tokenizer, wider budget
    r = build_prompt("cafe", "studio", "딸기 라떼와 크로플", presets=presets, tokenizers=tok)
    assert r.counter == "tokenizers" and not r.estimated
    assert r.dropped, "the tiny vocab must force trimming"
    prios = [_priority_of(d, presets) for d in r.dropped]
    assert prios == sorted(prios, reverse=True)          # quality first, ..., scene last
    assert prios[0] == 4 and r.dropped[0] == QUALITY_BOOSTERS[-1]
    assert r.prompt_en.startswith("strawberry latte, croffle")
    assert r.clip_tokens <= clip_max
    assert len(tok.clip(r.prompt_en)["input_ids"]) == r.clip_tokens
    # nothing more important than a dropped fragment went while a less important one stayed
    kept = [p.strip() for p in r.prompt_en.split(",")]
    kept_prios = [_priority_of(k, presets) for k in kept]
    assert min(prios) >= max(kept_prios)
    if clip_max > 77:
        assert max(kept_prios) >= 1                       # the wider budget keeps part of the scene
    # and the next fragment would not have fit
    assert r.t5_tokens <= 512 and r.t5_prompt.startswith(r.prompt_en)
    assert len(tok.clip(r.prompt_en + ", " + r.dropped[-1])["input_ids"]) > clip_max


def test_owner_words_cut_only_as_last_resort(presets, tiny_tokenizers):
    _, tok = tiny_tokenizers
    long_ko = " ".join(["딸기 라떼와 크로플", "바닐라 스콘과 마들렌", "초코 쿠키와 티라미수", "녹차 케이크와 마카롱"] * 2)
    r = build_prompt("cafe", "studio", long_ko, presets=presets, tokenizers=tok)
    assert r.prompt_en.startswith("strawberry latte, croffle")
    assert len(tok.clip(r.prompt_en)["input_ids"]) <= 77
    assert all(_priority_of(d, presets) == 0 for d in r.dropped[-2:])          # words went last
    assert presets.industry("cafe").scene_en in r.dropped


def test_no_truncation_warning_with_real_tokenizers(presets, tiny_tokenizers, caplog):
    from transformers import CLIPTokenizer, T5TokenizerFast

    root, tok = tiny_tokenizers
    for industry, style, ko, subject in [("cafe", "studio", "딸기 라떼와 크로플", "product"),
                                         ("salon", "premium", "", "person"),
                                         ("fitness", "pop", "역동적인 헬스 복싱 매트 덤벨 " * 6, "mixed")]:
        r = build_prompt(industry, style, ko, presets=presets, subject=subject, tokenizers=tok)
        fresh_clip = CLIPTokenizer.from_pretrained(root / "tokenizer")      # warns once per instance
        fresh_t5 = T5TokenizerFast.from_pretrained(root / "tokenizer_2")
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="transformers"):
            ids = fresh_clip(r.clip_prompt)["input_ids"]
            t5_ids = fresh_t5(r.t5_prompt)["input_ids"]
            # what diffusers' FluxPipeline does: truncated vs untruncated must agree
            trunc = fresh_clip(r.clip_prompt, padding="max_length", max_length=77, truncation=True)["input_ids"]
        assert not [rec for rec in caplog.records if rec.levelno >= logging.WARNING], caplog.text
        assert len(ids) <= 77 and len(t5_ids) <= 512
        assert [i for i in trunc if i != fresh_clip.pad_token_id][: len(ids)] == [
            i for i in ids if i != fresh_clip.pad_token_id]
        # the check itself can fail: an untrimmed prompt does warn
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="transformers"):
            CLIPTokenizer.from_pretrained(root / "tokenizer")(r.t5_prompt + ", " + r.t5_prompt)
        assert any("longer than the specified maximum" in rec.getMessage() for rec in caplog.records)


def test_missing_tokenizer_folder_uses_estimator(tmp_path):
    tok = PromptTokenizers.from_folder(tmp_path / "nothing")
    assert tok.estimated and tok.counter == "estimate"
    assert estimate_tokens("latte", 2) >= 3
    assert estimate_tokens("a, b", 1) == 4


def test_fit_prompt_refits_an_edited_prompt(tiny_tokenizers):
    _, tok = tiny_tokenizers
    edited = "my strawberry latte, " + ", ".join(f"extra detail number {i}" for i in range(30))
    fitted = fit_prompt(edited, tok)
    assert fitted.prompt.startswith("my strawberry latte")
    assert len(tok.clip(fitted.prompt)["input_ids"]) <= 77
    assert fitted.dropped[0] == "extra detail number 29"
