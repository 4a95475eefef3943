"""A fake Ollama server on 127.0.0.1 (free port) that speaks enough of the real HTTP API.

    with FakeOllama(models=["qwen2.5:7b-instruct"]) as fake:
        fake.replies.append('{"headline": "..."}')   # next /api/chat or /api/generate answer
        fake.delay = 2.0                              # seconds to wait before answering
        client = LLMClient(fake.url, "qwen2.5:7b-instruct")

Endpoints: POST /api/chat, POST /api/generate (both streaming and not), GET /api/tags,
GET /api/version; an unknown model gets a 404 like the real server. Each request body is logged
in `fake.requests` as (path, json). Replies are strings (the assistant content) or callables
taking the request JSON and returning a string. An empty queue answers `default_reply`.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

Reply = str | Callable[[dict], str]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    fake: "FakeOllama"


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return None

    # --- helpers ---------------------------------------------------------------------------
    def _send_json(self, status: int, payload: dict) -> None:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_ndjson(self, parts: list[dict]) -> None:
        body = b"".join(json.dumps(p, ensure_ascii=False).encode("utf-8") + b"\n" for p in parts)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b"{}"
        return json.loads(raw or b"{}")

    # --- routes ----------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        fake = self.server.fake
        fake.requests.append((self.path, {}))
        if self.path == "/api/tags":
            self._send_json(200, {"models": [
                {"name": m, "model": m, "modified_at": "2025-01-01T00:00:00Z", "size": 4_700_000_000,
                 "digest": "0" * 64, "details": {"format": "gguf", "family": "qwen2",
                                                 "parameter_size": "7.6B", "quantization_level": "Q4_K_M"}}
                for m in fake.models]})
        elif self.path == "/api/version":
            self._send_json(200, {"version": "0.0.0-fake"})
        else:
            self._send_json(404, {"error": "not found"})

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        fake = self.server.fake
        req = self._body()
        fake.requests.append((self.path, req))
        if self.path not in ("/api/chat", "/api/generate"):
            self._send_json(404, {"error": "not found"})
            return
        model = req.get("model", "")
        if model not in fake.models:
            self._send_json(404, {"error": f'model "{model}" not found, try pulling it first'})
            return
        if fake.delay:
            time.sleep(fake.delay)
        chat = self.path == "/api/chat"
        if not chat and not req.get("prompt") and req.get("keep_alive") == 0:
            fake.unloaded.append(model)
            self._send_json(200, {"model": model, "created_at": _now(), "response": "", "done": True,
                                  "done_reason": "unload"})
            return
        text = fake.next_reply(req)
        if req.get("stream", True):
            pieces = [text[i:i + 4] for i in range(0, len(text), 4)] or [""]
            parts = [_part(model, chat, p, done=False) for p in pieces] + [_part(model, chat, "", done=True)]
            self._send_ndjson(parts)
        else:
            self._send_json(200, _part(model, chat, text, done=True))


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _part(model: str, chat: bool, text: str, *, done: bool) -> dict:
    base: dict[str, Any] = {"model": model, "created_at": _now(), "done": done}
    if chat:
        base["message"] = {"role": "assistant", "content": text}
    else:
        base["response"] = text
    if done:
        base.update({"done_reason": "stop", "total_duration": 1000, "eval_count": max(1, len(text) // 3)})
    return base


class FakeOllama:
    def __init__(self, models: list[str] | None = None, *, default_reply: str = "{}") -> None:
        self.models = list(models or ["qwen2.5:7b-instruct"])
        self.replies: deque[Reply] = deque()
        self.default_reply = default_reply
        self.delay = 0.0
        self.requests: list[tuple[str, dict]] = []
        self.unloaded: list[str] = []
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("fake server not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def next_reply(self, req: dict) -> str:
        with self._lock:
            reply = self.replies.popleft() if self.replies else self.default_reply
        return reply(req) if callable(reply) else reply

    def chat_requests(self) -> list[dict]:
        return [body for path, body in self.requests if path == "/api/chat"]

    def start(self) -> "FakeOllama":
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-ollama", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "FakeOllama":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
