"""The local LLM client: Ollama over HTTP through the `ollama` package.

- Structured output: `chat_json(messages, Schema)` sends `format=Schema.model_json_schema()` at a low
  temperature, validates with `Schema.model_validate_json` and retries once on invalid output.
- Timeouts: a short connect timeout (is the server there?) and a long read timeout, because the
  first request after a restart loads the model into memory (a minute or more for a 7B model).
- Errors become `StudioError`s in Korean/English: a missing model names the exact
  `ollama pull <model>` command; a server that is down says to start it with `ollama serve`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any, TypeVar

import httpx
import ollama
from pydantic import BaseModel, ValidationError

from studio.errors import StudioError

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)


RETRY_NOTE = ("방금 답은 JSON 스키마에 맞지 않았습니다({err}). 설명 없이 스키마에 맞는 JSON 객체 하나만 답하세요. / "
              "Your last answer did not match the JSON schema. Reply with one JSON object only.")


class LLMClient:
    """A small, thread-safe wrapper over `ollama.Client` with typed results and friendly errors."""

    def __init__(self, host: str, model: str, *, connect_timeout: float = 3.0, read_timeout: float = 30.0,
                 keep_alive: str | float | None = "10m", probe_timeout: float = 1.5,
                 probe_ttl: float = 5.0) -> None:
        self.host = host
        self.model = model
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.keep_alive = keep_alive
        self.probe_timeout = probe_timeout
        self.probe_ttl = probe_ttl
        self._client = ollama.Client(host=host, timeout=httpx.Timeout(read_timeout, connect=connect_timeout))
        self._probe_lock = threading.Lock()
        self._probe: tuple[float, bool] | None = None

    @classmethod
    def from_settings(cls, settings: Any, **kwargs: Any) -> "LLMClient":
        """The client for `settings`; its timeout is `settings.llm_timeout_s` (default 30 s, env
        FITAD_LLM_TIMEOUT), so a hanging server holds the owner for that long at most."""
        kwargs.setdefault("read_timeout", float(getattr(settings, "llm_timeout_s", 30.0)))
        return cls(settings.ollama_host, settings.ollama_model, **kwargs)

    def with_model(self, model: str) -> "LLMClient":
        """A client for another local model (same host and timeouts)."""
        return LLMClient(self.host, model, connect_timeout=self.connect_timeout, read_timeout=self.read_timeout,
                         keep_alive=self.keep_alive, probe_timeout=self.probe_timeout, probe_ttl=self.probe_ttl)

    # --- health -------------------------------------------------------------------------------
    def available(self) -> bool:
        """Is the server answering? Cheap: one short GET, cached for `probe_ttl` seconds."""
        now = time.monotonic()
        with self._probe_lock:
            if self._probe is not None and now - self._probe[0] < self.probe_ttl:
                return self._probe[1]
        ok = False
        try:
            probe = ollama.Client(host=self.host, timeout=httpx.Timeout(self.probe_timeout))
            try:
                probe.list()
                ok = True
            finally:
                probe.close()
        except (ConnectionError, httpx.HTTPError, ollama.ResponseError) as exc:
            log.info("ollama at %s not available: %s", self.host, exc)
        with self._probe_lock:
            self._probe = (time.monotonic(), ok)
        return ok

    def list_models(self) -> list[str]:
        """Names of the locally pulled models (for a picker)."""
        resp = self._call(self._client.list)
        return sorted(m.model for m in resp.models if m.model)

    # --- chat ---------------------------------------------------------------------------------
    def chat_json(self, messages: list[dict], schema: type[M], *, temperature: float = 0.2) -> M:
        """Structured chat: the reply must validate against `schema` (one retry on invalid output)."""
        convo = [dict(m) for m in messages]
        fmt = schema.model_json_schema()
        last_err = ""
        started = time.monotonic()
        for attempt in range(2):
            if attempt and time.monotonic() - started > self.read_timeout / 2:
                break  # no time left for a retry within the owner's wait
            resp = self._call(self._client.chat, model=self.model, messages=convo, format=fmt,
                              options={"temperature": temperature}, keep_alive=self.keep_alive, stream=False)
            content = (resp.message.content or "").strip()
            try:
                return schema.model_validate_json(content)
            except ValidationError as exc:
                last_err = _short(exc)
                log.warning("LLM output failed validation (attempt %d): %s", attempt + 1, last_err)
                convo = convo + [{"role": "assistant", "content": content[:4000]},
                                 {"role": "user", "content": RETRY_NOTE.format(err=last_err)}]
        raise StudioError("llm.bad_output", err=last_err)

    def stream_chat(self, messages: list[dict], *, temperature: float = 0.7) -> Iterator[str]:
        """Yield the reply piece by piece (for a live copy box)."""
        stream = self._call(self._client.chat, model=self.model, messages=[dict(m) for m in messages],
                            options={"temperature": temperature}, keep_alive=self.keep_alive, stream=True)
        it = iter(stream)
        while True:
            try:
                part = self._call(next, it)
            except StopIteration:
                return
            piece = part.message.content or ""
            if piece:
                yield piece

    def unload(self, model: str | None = None) -> None:
        """Free the model's memory now (keep_alive=0), e.g. before a big image job."""
        self._call(self._client.generate, model=model or self.model, keep_alive=0)

    def close(self) -> None:
        self._client.close()

    # --- errors -------------------------------------------------------------------------------
    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        model = kwargs.get("model") or self.model
        try:
            return fn(*args, **kwargs)
        except StopIteration:
            raise
        except ollama.ResponseError as exc:
            self._forget_probe()
            if exc.status_code == 404:
                raise StudioError("llm.model_missing", model=model) from exc
            log.warning("LLM request failed: %s", _short(exc))
            raise StudioError("llm.failed") from exc
        except httpx.ConnectTimeout as exc:
            self._mark_down()
            raise StudioError("llm.server_down", host=self.host) from exc
        except httpx.TimeoutException as exc:
            raise StudioError("llm.timeout", seconds=self.read_timeout) from exc
        except ConnectionError as exc:  # the ollama package turns httpx.ConnectError into this
            self._mark_down()
            raise StudioError("llm.server_down", host=self.host) from exc
        except httpx.HTTPError as exc:
            log.warning("LLM request failed: %s", _short(exc))
            raise StudioError("llm.failed") from exc

    def _mark_down(self) -> None:
        with self._probe_lock:
            self._probe = (time.monotonic(), False)

    def _forget_probe(self) -> None:
        with self._probe_lock:
            self._probe = None


def _short(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
