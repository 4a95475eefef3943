"""Job runner: one GPU lock, progress forwarding, cancel.

Every GPU-bound job runs under `JobRunner.run`, which holds a single lock so two tabs never load
or run models at the same time (the UI also gives every GPU event one `concurrency_id`).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol, TypeVar

from studio.errors import CancelledError

log = logging.getLogger(__name__)
T = TypeVar("T")


class ProgressFn(Protocol):
    def __call__(self, step: int, total: int, desc: str = "") -> None: ...


class CancelToken:
    """Set from the UI's cancel button; checked between steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise CancelledError()


def no_progress(step: int, total: int, desc: str = "") -> None:
    return None


@dataclass
class JobRunner:
    lock: threading.Lock = field(default_factory=threading.Lock)
    _tokens: dict[str, CancelToken] = field(default_factory=dict)
    _tokens_lock: threading.Lock = field(default_factory=threading.Lock)

    def token(self, key: str) -> CancelToken:
        """A fresh cancel token for a UI session/tab key (replaces the previous one)."""
        tok = CancelToken()
        with self._tokens_lock:
            self._tokens[key] = tok
        return tok

    def cancel(self, key: str) -> bool:
        with self._tokens_lock:
            tok = self._tokens.get(key)
        if tok is None:
            return False
        tok.cancel()
        return True

    def run(self, fn: Callable[[], T], *, name: str = "job") -> T:
        start = time.perf_counter()
        with self.lock:
            waited = time.perf_counter() - start
            log.info("job %s started (waited %.2fs for the GPU lock)", name, waited)
            try:
                return fn()
            finally:
                log.info("job %s finished in %.2fs", name, time.perf_counter() - start - waited)
