"""Seconds from process start to the first HTTP 200, and the peak RSS, with no weights present.

    python benchmarks/startup.py

Targets on the 2-core CI machine: <= 6 s and <= 1 GiB. Ends with one JSON line.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TARGET_S = 6.0
TARGET_RSS_MB = 1024.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_mb(pid: int) -> float:
    """VmHWM of the process (its own peak resident set)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def one_run() -> tuple[float, float, str]:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "launch.py"), "--port", str(port),
             "--models-dir", f"{tmp}/models", "--outputs-dir", f"{tmp}/outputs"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            body = ""
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"studio exited early:\n{proc.stdout.read() if proc.stdout else ''}")
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as r:
                        if r.status == 200:
                            body = r.read().decode("utf-8", "replace")
                            break
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    time.sleep(0.05)
                if time.perf_counter() - t0 > 60:
                    raise RuntimeError("no HTTP 200 within 60 s")
            seconds = time.perf_counter() - t0
            rss = peak_rss_mb(proc.pid)
            return seconds, rss, body
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def main() -> None:
    one_run()  # warm the OS file cache (and .pyc files) once; cold-cache numbers are not comparable
    runs = [one_run() for _ in range(3)]
    secs = statistics.median(r[0] for r in runs)
    rss = max(r[1] for r in runs)
    from studio.i18n import t

    # the banner names the active engine in the owner's words (issue 22): "지금 쓰는 방식: 빠른 배경 합성"
    banner = t("engine.banner", "ko", engine=t("engine.name.lite", "ko"))
    engine_named = all(banner.split(" — ")[0] in r[2] or t("engine.name.lite", "ko") in r[2] for r in runs)
    for i, (s, m, _) in enumerate(runs):
        print(f"run {i + 1}: {s:.2f} s to HTTP 200, peak RSS {m:.0f} MiB")
    print(json.dumps({"bench": "startup", "seconds_to_http_200": round(secs, 2), "target_seconds": TARGET_S,
                      "peak_rss_mb": round(rss, 1), "target_peak_rss_mb": TARGET_RSS_MB,
                      "engine_named_in_page": engine_named,
                      "ok": secs <= TARGET_S and rss <= TARGET_RSS_MB and engine_named}))


if __name__ == "__main__":
    main()
