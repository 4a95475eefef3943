"""Serving hardening: which files leave the PC, login throttling, errors in plain words, the port,
strong share passwords. Each test probes a whole class (many spellings), not one URL."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.config import REPO_ROOT, Settings
from studio.store.history import NewRecord
from studio.ui.server import LoginThrottle, ServePolicy, password_problems, pick_port
from tests.conftest import RunningApp, free_port

SQLITE_MAGIC = b"SQLite format 3"


def _get(url: str, data: bytes | None = None, headers: dict | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _raw_get(port: int, target: str) -> tuple[int, bytes]:
    """A GET with the request target sent exactly as given (no client-side normalisation)."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode("latin-1"))
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    return status, body


def spellings(path: str) -> list[str]:
    """Many ways to ask the file route for `path`."""
    q = urllib.parse.quote(path, safe="")
    qq = urllib.parse.quote(q, safe="")
    q_slash = urllib.parse.quote(path, safe="/")
    out = []
    for prefix in ("/gradio_api/file=", "/file=", "//gradio_api//file=", "/gradio_api/file/", "/file/",
                   "/gradio_api/file%3D", "/gradio_api/fil%65="):
        for p in (path, q, qq, q_slash, path.replace("/", "//"), path.replace("/outputs/", "/outputs/./"),
                  path.replace("/outputs/", "/outputs/x/../")):
            target = prefix + (p.lstrip("/") if prefix.endswith("file/") else p)
            out.append(target)
    return out


@pytest.fixture
def app_with_secrets(settings: Settings):
    """A running app with a stored image, plus private files planted where an attacker would look."""
    app = RunningApp(settings)
    store = app.services.store
    rec = store.save_image(Image.fromarray(np.full((300, 300, 3), 120, np.uint8)),
                           NewRecord(workflow="product", engine="lite", seed=1))
    out = Path(app.services.settings.outputs_dir)
    day = rec.path.parent
    # an old-layout database left inside outputs, its sidecars, a log, a temp file, a hidden cache
    planted = {
        "legacy_db": out / "history.sqlite", "wal": out / "history.sqlite-wal", "shm": out / "history.sqlite-shm",
        "log": day / "studio.log", "temp": day / ".fitad-tmp-1-ab-x.png.part", "hidden": out / ".cache" / "c.png",
        "json": day / "000001_product_seed1.json",
    }
    for p in planted.values():
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(SQLITE_MAGIC + b"\0secret")
    links = {}
    for name, target in (("link_db.png", app.services.settings.db_path), ("link_passwd.png", Path("/etc/passwd")),
                         ("link_legacy.png", out / "history.sqlite")):
        link = day / name
        os.symlink(target, link)
        links[name] = link
    yield app, rec, planted, links
    app.close()


def test_database_lives_outside_the_served_folder(settings: Settings) -> None:
    app = RunningApp(settings)
    try:
        db = Path(app.services.settings.db_path)
        out = Path(app.services.settings.outputs_dir)
        assert db.is_file() and out.resolve() not in db.resolve().parents
        assert not list(out.glob("*.sqlite*"))
    finally:
        app.close()


def test_an_old_database_inside_outputs_is_moved_out(settings: Settings) -> None:
    from studio.store.history import HistoryStore

    old = settings.legacy_db_path
    with HistoryStore.open(settings.outputs_dir, old) as s:
        rec = s.save_image(Image.new("RGB", (300, 300), (1, 2, 3)), NewRecord(workflow="person", engine="lite"))
    app = RunningApp(settings)
    try:
        assert not old.exists() and not Path(str(old) + "-wal").exists()
        assert app.services.store.get(rec.id).path == rec.path  # history kept
    finally:
        app.close()


def test_private_files_are_refused_on_every_spelling(app_with_secrets) -> None:
    app, rec, planted, links = app_with_secrets
    targets = [str(app.services.settings.db_path), *(str(p) for p in planted.values()), *(str(p) for p in links.values())]
    tried = 0
    for target in targets:
        for spelling in spellings(target):
            status, body = _raw_get(app.port, spelling)
            tried += 1
            assert status != 200 or SQLITE_MAGIC not in body, (spelling, status)
            assert b"secret" not in body and b"root:" not in body, spelling
            assert target.encode() not in body, f"the server path is echoed for {spelling}"
    assert tried > 300


def test_results_are_still_served(app_with_secrets) -> None:
    app, rec, _planted, _links = app_with_secrets
    for target in ("/gradio_api/file=" + urllib.parse.quote(str(rec.path), safe="/"),
                   "/gradio_api/file=" + urllib.parse.quote(str(rec.path), safe="")):
        status, body = _raw_get(app.port, target)
        assert status == 200 and body.startswith(b"\x89PNG"), target


def test_policy_decisions(tmp_path: Path) -> None:
    out, private = tmp_path / "outputs", tmp_path / "outputs-data"
    (out / "2026-01-01").mkdir(parents=True)
    private.mkdir()
    policy = ServePolicy(out, (private,))
    assert policy.allows(str(out / "2026-01-01" / "000001_person.png"))
    assert policy.allows(str(out / "2026-01-01" / "000001_person_caption.txt"))
    assert policy.allows("/tmp/gradio/abc/upload.png")  # not ours: Gradio's own rules decide
    for bad in ("history.sqlite", "history.sqlite-wal", "x.db", "2026-01-01/a.log", ".hidden.png",
                "2026-01-01/.fitad-tmp-1-x.png.part", "2026-01-01/meta.json", "2026-01-01/a.py"):
        assert not policy.allows(str(out / bad)), bad
    assert not policy.allows(str(private / "anything.png"))
    assert not policy.allows(str(out / ".." / "outputs-data" / "history.sqlite"))


def test_failed_logins_are_throttled_per_client(settings: Settings) -> None:
    app = RunningApp(settings.with_(auth=(("owner", "maple-7-river-cloud"),)))
    try:
        url = app.url + "login"
        bad = urllib.parse.urlencode({"username": "owner", "password": "nope"}).encode()
        good = urllib.parse.urlencode({"username": "owner", "password": "maple-7-river-cloud"}).encode()
        codes = []
        t0 = time.perf_counter()
        for _ in range(60):
            status, body = _get(url, bad, {"X-Forwarded-For": "203.0.113.5"})
            codes.append(status)
        assert codes[:5] == [400] * 5
        assert codes.count(429) >= 50, codes
        status, body = _get(url, good, {"X-Forwarded-For": "203.0.113.5"})
        assert status == 429 and "초 뒤에 다시" in json.loads(body)["detail"]  # even the right one waits
        # another client is not locked out by the first one's failures
        status, _ = _get(url, good, {"X-Forwarded-For": "198.51.100.7"})
        assert status == 200
        assert time.perf_counter() - t0 < 30
    finally:
        app.close()


def test_throttle_delay_grows_and_resets() -> None:
    now = [0.0]
    th = LoginThrottle(free=2, base_delay_s=1.0, global_free=1000, clock=lambda: now[0])
    waits = []
    for _ in range(6):
        th.failed("a")
        waits.append(th.wait_s("a"))
    assert waits[:2] == [0.0, 0.0] and waits[2:] == [1.0, 2.0, 4.0, 8.0]
    assert th.wait_s("b") == 0.0
    now[0] += 9
    th.succeeded("a")
    assert th.wait_s("a") == 0.0


def test_global_ceiling_catches_rotating_addresses() -> None:
    th = LoginThrottle(free=5, global_free=10, clock=lambda: 0.0)
    for i in range(11):
        th.failed(f"10.0.0.{i}")
    assert th.wait_s("10.9.9.9") > 0


@pytest.mark.parametrize("pw", ["secret", "password123", "123456789012", "aaaaaaaaaaaaaaaa", "owner-owner-owner",
                                "qwerty123!", "Short1!"])
def test_weak_share_passwords_are_named(pw: str) -> None:
    assert password_problems("owner", pw)


@pytest.mark.parametrize("pw", ["maple-7-river-cloud", "Tr4in!Moon#Desk", "bread and 3 tulips"])
def test_good_share_passwords_pass(pw: str) -> None:
    assert password_problems("owner", pw) == []


def _run(args: list[str], timeout: int = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO_ROOT / "launch.py"), *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=timeout)


def test_share_refuses_a_weak_password_and_says_what_a_good_one_is(tmp_path: Path) -> None:
    out = _run(["--share", "--auth", "owner:1234", "--outputs-dir", str(tmp_path / "o")])
    assert out.returncode == 2
    assert "12자 이상" in out.stderr and "maple-7-river-cloud" in out.stderr
    assert not (tmp_path / "o").exists()
    out_en = _run(["--share", "--lang", "en", "--auth", "owner:password", "--outputs-dir", str(tmp_path / "o")])
    assert out_en.returncode == 2 and "stronger password" in out_en.stderr and "commonly used" in out_en.stderr


def test_pick_port_skips_a_taken_port() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        got = pick_port("127.0.0.1", taken)
        assert got is not None and got != taken


def test_port_in_use_opens_on_the_next_port_and_says_so(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", free_port()))
        blocker.listen()
        taken = blocker.getsockname()[1]
        proc = subprocess.Popen([sys.executable, str(REPO_ROOT / "launch.py"), "--no-browser", "--port", str(taken),
                                 "--models-dir", str(tmp_path / "m"), "--outputs-dir", str(tmp_path / "o")],
                                cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines: list[str] = []
        try:
            deadline = time.time() + 90
            while time.time() < deadline:
                line = proc.stdout.readline() if proc.stdout else ""
                if not line:
                    break
                lines.append(line)
                if "스튜디오 주소" in line:
                    break
            text = "".join(lines)
            assert f"{taken}번 포트를 이미 다른 프로그램이 쓰고 있어" in text, text
            assert "Traceback" not in text
            new = int(text.split("포트로 엽니다: http://127.0.0.1:")[1].split("/")[0])
            assert new != taken
            body = None
            while time.time() < deadline and body is None:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{new}/", timeout=2) as r:
                        body = r.status
                except OSError:
                    time.sleep(0.3)
            assert body == 200
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def test_browser_opens_unless_told_not_to() -> None:
    import launch

    assert launch.settings_from_args(launch.build_parser().parse_args([])).open_browser is True
    assert launch.settings_from_args(launch.build_parser().parse_args(["--no-browser"])).open_browser is False
    assert launch.settings_from_args(launch.build_parser().parse_args(["serve", "--no-browser"])).open_browser is False


def _call(app, api: str, data: list) -> str:
    """POST /gradio_api/call/<api> then read the event stream; returns the raw SSE text."""
    status, body = _get(app.url + f"gradio_api/call/{api}", json.dumps({"data": data}).encode(),
                        {"Content-Type": "application/json"})
    assert status == 200, body
    event = json.loads(body)["event_id"]
    _, stream = _get(app.url + f"gradio_api/call/{api}/{event}")
    lines = []
    for line in stream.decode("utf-8").splitlines():
        if line.startswith("data: "):
            try:
                line = "data: " + json.dumps(json.loads(line[6:]), ensure_ascii=False)
            except json.JSONDecodeError:
                pass
        lines.append(line)
    return "\n".join(lines)


def test_a_payload_naming_a_server_file_gets_plain_words(running_app) -> None:
    fake = {"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}, "orig_name": "passwd.png"}
    text = _call(running_app, "product_prepare", [fake, 0, "", False])
    assert "event: error" in text
    assert "/etc/passwd" not in text and "Cannot move" not in text and "cache" not in text
    assert "다시 시도하세요" in text and '"title": "Error"' not in text


def test_malformed_requests_get_plain_words(running_app) -> None:
    status, body = _get(running_app.url + "gradio_api/queue/join", b'{"data": 5, "fn_index": "x"}',
                        {"Content-Type": "application/json"})
    assert status == 422
    text = body.decode("utf-8")
    assert "pydantic" not in text and "Input should be" not in text and "loc" not in text
    assert "다시 시도하세요" in text


@pytest.mark.parametrize("api,data", [
    ("product_generate", [None]),                                             # wrong number of values
    ("product_generate", [None, 5, {}, [], None, "ig", "abc", "z", "1,2,3,inf", "x"] + [None] * 10),  # wrong types
    ("overlay_preview", [None, 10**20, "h", "", "", "bottom_bar", "", "top_right", "rgb(", "auto", None,
                         "top_left", True, ["ig_square"]]),                   # an id that is no choice
])
def test_gradio_own_refusals_are_plain_korean(running_app, api: str, data: list) -> None:
    text = _call(running_app, api, data)
    assert "event: error" in text
    for leak in ("Value:", "list of choices", "Wanted inputs", "Traceback", "Error\"", "fn_index"):
        assert leak not in text, (leak, text)
    assert "다시" in text and "확인이 필요합니다" in text
