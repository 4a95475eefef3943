"""How the studio is served: which files may leave the PC, login throttling, errors in plain words.

Used by `launch.py serve` and by the tests' `RunningApp`, so both run the same configuration.

- `FileGuard`: the file route may hand out only what the app wrote for the owner to see (images,
  clips, exports) from the outputs folder. The history database, its -wal/-shm files, temp files,
  hidden files, logs and caches are refused however the route is spelled (`/file=`,
  `/gradio_api/file=`, `/file/`, doubled slashes, percent-encodings) and through symlinks: the
  decision is taken on the resolved path. The private folder (database) is also one of Gradio's
  `blocked_paths`, and lives outside the served folder in the first place.
- `LoginLimiter`: failed logins are counted per client; after a few, that client waits a growing
  time and gets HTTP 429 with Retry-After; a global ceiling catches address rotation.
- `StudioBlocks`: a gr.Blocks whose API errors never show Python/Gradio internals (server paths,
  pydantic texts, handler names): anything but our own gr.Error becomes one plain, translated
  message, and the details go to the log.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable
from urllib.parse import unquote

import gradio as gr

from studio.config import Settings
from studio.i18n import t
from studio.ui.gradio_words import gradio_i18n

log = logging.getLogger(__name__)

#: What the file route may hand out from the outputs folder (results, clips, exports, captions).
SERVED_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".gif", ".mp4", ".webm", ".mov", ".txt"})
_FILE_ROUTE = re.compile(r"(?:^|/)file(?:=|/)(.*)$", re.S | re.I)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


@dataclass(frozen=True)
class ServePolicy:
    outputs_dir: Path
    private_dirs: tuple[Path, ...]

    def allows(self, requested: str) -> bool:
        """False when `requested` (as the file route would read it) must not be served.

        True means "not ours to refuse": Gradio's own checks (allowed/blocked paths) still apply.
        """
        requested = requested.split("?", 1)[0]
        if "://" in requested[:12]:
            return True  # URLs: Gradio's own proxy rules
        try:
            absolute = os.path.normcase(os.path.abspath(requested))
            real = os.path.normcase(os.path.realpath(requested))
        except (OSError, ValueError):
            return False
        outputs = os.path.normcase(os.path.realpath(self.outputs_dir))
        for private in self.private_dirs:
            p = os.path.normcase(os.path.realpath(private))
            if _within(real, p) or _within(absolute, p):
                return False
        outputs_abs = os.path.normcase(os.path.abspath(self.outputs_dir))
        if not (_within(real, outputs) or _within(absolute, outputs_abs)):
            return True
        if not _within(real, outputs):
            return False  # a link inside the outputs folder pointing elsewhere
        rel = os.path.relpath(real, outputs)
        parts = Path(rel).parts
        if not parts or any(part.startswith(".") for part in parts):
            return False  # hidden files, temp files (.fitad-tmp-...), the folder itself
        name = parts[-1].lower()
        if name.endswith(("-wal", "-shm", "-journal")) or ".sqlite" in name or name.endswith((".db", ".log")):
            return False
        return Path(name).suffix in SERVED_SUFFIXES


class FileGuard:
    """ASGI middleware: refuse file-route requests the `ServePolicy` does not allow (HTTP 404)."""

    def __init__(self, app: ASGIApp, policy: ServePolicy, lang: str = "ko") -> None:
        self.app = app
        self.policy = policy
        self.lang = lang

    def candidates(self, scope: Scope) -> list[str]:
        raw = scope.get("raw_path") or b""
        texts = {scope.get("path", "")}
        try:
            texts.add(raw.decode("latin-1"))
        except (AttributeError, UnicodeDecodeError):
            pass
        found = []
        for text in texts:
            for _ in range(3):  # percent-encoded spellings, decoded up to three times
                m = _FILE_ROUTE.search(text)
                if m:
                    found.append(m.group(1))
                decoded = unquote(text)
                if decoded == text:
                    break
                text = decoded
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") == "http":
            for requested in self.candidates(scope):
                if not self.policy.allows(requested):
                    log.warning("refused to serve %r", requested)
                    await _plain(send, 404, t("serve.not_found", self.lang))
                    return
        await self.app(scope, receive, send)


async def _plain(send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"detail": message, "error": message}, ensure_ascii=False).encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())] + (headers or [])})
    await send({"type": "http.response.body", "body": body})


@dataclass
class _Bucket:
    failures: int = 0
    locked_until: float = 0.0


@dataclass
class LoginThrottle:
    """Failed-login bookkeeping: `free` failures per client, then a doubling wait (capped)."""

    free: int = 5
    base_delay_s: float = 2.0
    max_delay_s: float = 300.0
    global_free: int = 50          # failures from all clients together before everyone waits
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _global: _Bucket = field(default_factory=_Bucket)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_s(self, client: str) -> float:
        """Seconds this client must still wait before trying again (0: may try now)."""
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get(client)
            waits = [b.locked_until - now for b in (bucket, self._global) if b is not None]
        return max([0.0, *waits])

    def failed(self, client: str) -> None:
        now = self.clock()
        with self._lock:
            if len(self._buckets) > 10_000:  # bounded memory under address rotation
                self._buckets.clear()
            for bucket, free in ((self._buckets.setdefault(client, _Bucket()), self.free),
                                 (self._global, self.global_free)):
                bucket.failures += 1
                over = bucket.failures - free
                if over > 0:
                    delay = min(self.max_delay_s, self.base_delay_s * 2 ** (over - 1))
                    bucket.locked_until = max(bucket.locked_until, now + delay)

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._buckets.pop(client, None)


class LoginLimiter:
    """ASGI middleware: per-client rate limiting of POST /login (HTTP 429 + Retry-After)."""

    def __init__(self, app: ASGIApp, throttle: LoginThrottle, lang: str = "ko") -> None:
        self.app = app
        self.throttle = throttle
        self.lang = lang

    @staticmethod
    def client_key(scope: Scope) -> str:
        peer = (scope.get("client") or ("?", 0))[0]
        if peer in ("127.0.0.1", "::1", "localhost"):
            # behind the share tunnel every request comes from the loopback: the forwarded
            # address tells clients apart (a rotating one still meets the global ceiling)
            for name, value in scope.get("headers") or []:
                if name.lower() == b"x-forwarded-for":
                    return value.decode("latin-1").split(",")[0].strip() or peer
        return peer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = re.sub(r"/{2,}", "/", scope.get("path", ""))
        if scope.get("type") != "http" or scope.get("method") != "POST" or not re.search(r"/login/?$", path):
            await self.app(scope, receive, send)
            return
        client = self.client_key(scope)
        wait = self.throttle.wait_s(client)
        if wait > 0:
            secs = max(1, int(wait + 0.999))
            await _plain(send, 429, t("serve.login_wait", self.lang, secs=secs),
                         [(b"retry-after", str(secs).encode())])
            return
        status: dict[str, int] = {}

        async def watch(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = int(message["status"])
            await send(message)

        await self.app(scope, receive, watch)
        code = status.get("code", 500)
        if code in (400, 401, 403):
            self.throttle.failed(client)
            log.warning("failed login from %s", client)
        elif code < 400:
            self.throttle.succeeded(client)


# --- passwords -----------------------------------------------------------------------------------
_COMMON = frozenset("""password passw0rd password1 123456 1234567 12345678 123456789 1234567890 qwerty
qwerty123 abc123 111111 000000 iloveyou admin admin123 letmein welcome monkey dragon secret owner
sunshine princess football baseball master shadow 1q2w3e4r 1q2w3e4r5t qwer1234 asdf1234 zxcvbnm
gradio fitad studio changeme""".split())
MIN_SHARE_PASSWORD = 12


def password_problems(user: str, password: str) -> list[str]:
    """Why `password` is too weak for a public share link (message keys); [] when it is fine."""
    problems = []
    low = password.lower()
    if len(password) < MIN_SHARE_PASSWORD:
        problems.append("serve.pw_short")
    classes = sum(bool(re.search(p, password)) for p in (r"[a-z]", r"[A-Z]", r"\d", r"[^A-Za-z0-9]"))
    if classes < 2 or len(set(password)) < 6:
        problems.append("serve.pw_simple")
    if low in _COMMON or any(low.startswith(c) and len(low) - len(c) <= 4 for c in _COMMON if len(c) >= 6):
        problems.append("serve.pw_common")
    if user and user.lower() in low:
        problems.append("serve.pw_user")
    return problems


# --- the port ------------------------------------------------------------------------------------
def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def pick_port(host: str, wanted: int, tries: int = 20) -> int | None:
    """`wanted` when free, else the next free port among the following `tries`; None if none."""
    for port in range(wanted, min(65536, wanted + tries + 1)):
        if port_free(host, port):
            return port
    return None


# --- errors --------------------------------------------------------------------------------------
class StudioBlocks(gr.Blocks):
    """gr.Blocks whose failures reach the browser/API caller only as plain, translated words.

    Our handlers already raise gr.Error with a translated message (see `common.guarded`); this
    catches what happens around them in Gradio itself (a payload naming a server file, a value a
    component cannot read, an output it cannot write) before its text, which may hold server
    paths or internal names, is shown.
    """

    studio_lang: str = "ko"

    async def process_api(self, *args: Any, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        try:
            return await super().process_api(*args, **kwargs)
        except gr.Error as exc:
            ours = t("error.title", self.studio_lang)
            if exc.title != ours:  # raised by Gradio itself (e.g. a Dropdown value not in its choices)
                log.warning("Gradio refused a request: %s", exc.message)
                key = "serve.bad_choice" if "not in the list of choices" in str(exc.message) else "serve.bad_request"
                raise gr.Error(t(key, self.studio_lang), title=ours) from exc
            raise
        except Exception as exc:  # the API boundary: the log gets the details, the caller plain words
            if type(exc).__name__ in ("CancelledError",):
                raise
            log.exception("request failed inside Gradio")
            raise gr.Error(t("serve.bad_request", self.studio_lang), title=t("error.title", self.studio_lang)) from exc


def _validation_handler(lang: str) -> Callable[..., Any]:
    async def handler(request: Any, exc: Exception) -> Any:
        from fastapi.responses import JSONResponse

        log.warning("malformed request to %s: %s", getattr(request, "url", "?"), exc)
        msg = t("serve.bad_request", lang)
        return JSONResponse({"detail": msg, "error": msg}, status_code=422)

    return handler


def _http_error_handler(lang: str) -> Callable[..., Any]:
    """Gradio's file route answers "File not allowed: <the path>"; say it in plain words instead.
    Every other HTTP error keeps its status, headers and detail."""

    async def handler(request: Any, exc: Any) -> Any:
        from fastapi.responses import JSONResponse

        detail = getattr(exc, "detail", "")
        if isinstance(detail, str) and ("not allowed" in detail.lower() or os.sep in detail):
            log.warning("HTTP %s for %s: %s", exc.status_code, getattr(request, "url", "?"), detail)
            detail = t("serve.not_found", lang)
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    return handler


def launch_kwargs(settings: Settings, *, throttle: LoginThrottle | None = None) -> dict[str, Any]:
    """The keyword arguments of `demo.launch(...)` shared by `launch.py serve` and the tests."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException
    from starlette.middleware import Middleware

    policy = ServePolicy(outputs_dir=Path(settings.outputs_dir).resolve(),
                         private_dirs=(Path(settings.private_dir).resolve(),))
    middleware = [Middleware(FileGuard, policy=policy, lang=settings.lang),
                  Middleware(LoginLimiter, throttle=throttle or LoginThrottle(), lang=settings.lang)]
    return dict(
        server_name=settings.host,
        server_port=settings.port,
        share=settings.share,
        auth=list(settings.auth) or None,
        auth_message=t("app.title", settings.lang),
        show_error=False,
        allowed_paths=[str(policy.outputs_dir)],
        blocked_paths=[str(p) for p in policy.private_dirs],
        footer_links=[],
        i18n=gradio_i18n(settings.lang),
        inbrowser=settings.open_browser,
        app_kwargs={"middleware": middleware,
                    "exception_handlers": {RequestValidationError: _validation_handler(settings.lang),
                                           HTTPException: _http_error_handler(settings.lang)}},
    )
