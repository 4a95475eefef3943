"""The real `LLMClient` (real `ollama` package, real HTTP) against the fake Ollama server."""

from __future__ import annotations

import json
import time

import pytest
from pydantic import BaseModel, Field

from fake_ollama import FakeOllama, free_port
from studio.errors import StudioError
from studio.text.llm import LLMClient

MODEL = "qwen2.5:7b-instruct"


class Slogan(BaseModel):
    headline: str = Field(max_length=20)
    tags: list[str]


@pytest.fixture
def fake():
    with FakeOllama(models=[MODEL, "llama3.2:3b"]) as server:
        yield server


def _client(fake: FakeOllama, **kw) -> LLMClient:
    return LLMClient(fake.url, MODEL, **kw)


def test_valid_json_is_parsed_and_schema_sent(fake: FakeOllama) -> None:
    fake.replies.append(json.dumps({"headline": "오늘만 라떼 1+1", "tags": ["카페", "라떼"]}, ensure_ascii=False))
    out = _client(fake).chat_json([{"role": "user", "content": "문구"}], Slogan, temperature=0.1)
    assert isinstance(out, Slogan)
    assert out.headline == "오늘만 라떼 1+1"
    req = fake.chat_requests()[-1]
    assert req["format"] == Slogan.model_json_schema()
    assert req["options"]["temperature"] == pytest.approx(0.1)
    assert req["model"] == MODEL
    assert req["stream"] is False


def test_invalid_json_then_retry_succeeds(fake: FakeOllama) -> None:
    fake.replies.extend(["여기 있습니다: {headline: 깨진", json.dumps({"headline": "좋아요", "tags": []})])
    out = _client(fake).chat_json([{"role": "user", "content": "문구"}], Slogan)
    assert out.headline == "좋아요"
    reqs = fake.chat_requests()
    assert len(reqs) == 2
    # the retry shows the model its bad answer and asks again
    assert reqs[1]["messages"][-2] == {"role": "assistant", "content": "여기 있습니다: {headline: 깨진"}
    assert "JSON" in reqs[1]["messages"][-1]["content"]


def test_invalid_twice_raises_bad_output(fake: FakeOllama) -> None:
    too_long = json.dumps({"headline": "가" * 40, "tags": []})
    fake.replies.extend(["not json", too_long])
    with pytest.raises(StudioError) as ei:
        _client(fake).chat_json([{"role": "user", "content": "x"}], Slogan)
    assert ei.value.key == "llm.bad_output"
    assert len(fake.chat_requests()) == 2


def test_timeout_is_reported(fake: FakeOllama) -> None:
    fake.delay = 1.5
    client = _client(fake, read_timeout=0.3)
    start = time.perf_counter()
    with pytest.raises(StudioError) as ei:
        client.chat_json([{"role": "user", "content": "x"}], Slogan)
    assert ei.value.key == "llm.timeout"
    assert time.perf_counter() - start < 1.4  # it gave up instead of waiting for the reply
    assert "초" in ei.value.message("ko")


def test_server_down_says_how_to_start() -> None:
    client = LLMClient(f"http://127.0.0.1:{free_port()}", MODEL, connect_timeout=0.5)
    assert client.available() is False
    with pytest.raises(StudioError) as ei:
        client.chat_json([{"role": "user", "content": "x"}], Slogan)
    assert ei.value.key == "llm.server_down"
    assert "ollama serve" in ei.value.message("ko")
    assert "ollama serve" in ei.value.message("en")
    with pytest.raises(StudioError):
        client.list_models()


def test_missing_model_gives_exact_pull_command(fake: FakeOllama) -> None:
    client = LLMClient(fake.url, "gemma3:4b")
    with pytest.raises(StudioError) as ei:
        client.chat_json([{"role": "user", "content": "x"}], Slogan)
    assert ei.value.key == "llm.model_missing"
    assert "`ollama pull gemma3:4b`" in ei.value.message("ko")
    with pytest.raises(StudioError) as ei2:
        list(client.stream_chat([{"role": "user", "content": "x"}]))
    assert ei2.value.key == "llm.model_missing"


def test_available_models_stream_and_unload(fake: FakeOllama) -> None:
    client = _client(fake)
    assert client.available() is True
    n_tags = sum(1 for p, _ in fake.requests if p == "/api/tags")
    assert client.available() is True  # cached: no second probe
    assert sum(1 for p, _ in fake.requests if p == "/api/tags") == n_tags
    assert client.list_models() == sorted([MODEL, "llama3.2:3b"])

    fake.replies.append("따뜻한 라떼 한 잔, 오늘 어떠세요?")
    pieces = list(client.stream_chat([{"role": "user", "content": "x"}]))
    assert len(pieces) > 1
    assert "".join(pieces) == "따뜻한 라떼 한 잔, 오늘 어떠세요?"

    client.unload()
    assert fake.unloaded == [MODEL]
    body = [b for p, b in fake.requests if p == "/api/generate"][-1]
    assert body["keep_alive"] == 0


def test_from_settings_uses_host_and_model(settings) -> None:
    client = LLMClient.from_settings(settings)
    assert client.host == settings.ollama_host
    assert client.model == settings.ollama_model
