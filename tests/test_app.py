"""The launcher and the app shell: flags, share refusal, HTTP 200 naming the engine, gallery API."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.config import REPO_ROOT, Settings
from studio.store.history import NewRecord
from tests.conftest import free_port

LAUNCH = str(REPO_ROOT / "launch.py")


def _run(args: list[str], timeout: int = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, LAUNCH, *args], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_help_explains_every_flag() -> None:
    out = _run(["--help"])
    assert out.returncode == 0
    for flag in ("--port", "--engine", "--share", "--auth", "--lang", "--models-dir", "--outputs-dir"):
        assert flag in out.stdout
    for engine in ("auto", "flux", "lite", "tiny"):
        assert engine in out.stdout


def test_share_without_auth_refuses(tmp_path: Path) -> None:
    out = _run(["--share", "--outputs-dir", str(tmp_path / "o"), "--models-dir", str(tmp_path / "m")])
    assert out.returncode == 2
    assert "비밀번호" in out.stderr and "--auth" in out.stderr
    assert not (tmp_path / "o").exists(), "nothing may start (not even the store) before the refusal"
    out_en = _run(["--share", "--lang", "en", "--outputs-dir", str(tmp_path / "o")])
    assert out_en.returncode == 2 and "refuses to start without a password" in out_en.stderr


def test_bad_auth_is_refused_with_a_message(tmp_path: Path) -> None:
    out = _run(["--auth", "no-colon", "--outputs-dir", str(tmp_path / "o")])
    assert out.returncode == 2 and "사용자:비밀번호" in out.stderr


def test_launch_answers_200_and_names_the_engine(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, LAUNCH, "--no-browser", "--port", str(port), "--models-dir", str(tmp_path / "m"),
                             "--outputs-dir", str(tmp_path / "o")], cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 90
        body = None
        while time.time() < deadline and body is None:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                    assert r.status == 200
                    body = r.read().decode("utf-8")
            except OSError:
                time.sleep(0.2)
        assert body is not None, "no HTTP 200"
        assert "지금 쓰는 방식: 빠른 배경 합성" in body
        assert "고화질 AI 그리기(상업용)에 필요한 파일이 아직 없어" in body  # ...and says why
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_english_ui_labels(settings: Settings) -> None:
    from tests.conftest import RunningApp

    app = RunningApp(settings.with_(lang="en"))
    try:
        with urllib.request.urlopen(app.url + "config", timeout=10) as r:
            config = json.loads(r.read())
        labels = {c["props"].get("label") for c in config["components"] if c.get("type") == "tabitem"}
        assert {"Person", "Product", "Advanced", "Overlay", "Video", "Stock", "Gallery", "Models"} <= labels
    finally:
        app.close()


def test_korean_tabs_in_order(running_app) -> None:
    with urllib.request.urlopen(running_app.url + "config", timeout=10) as r:
        config = json.loads(r.read())
    labels = [c["props"].get("label") for c in config["components"] if c.get("type") == "tabitem"]
    assert labels == ["인물", "제품", "고급", "오버레이", "영상", "스톡", "갤러리", "모델"]


def test_gallery_lists_opens_and_deletes_through_the_api(running_app) -> None:
    store = running_app.services.store
    img = Image.fromarray(np.full((300, 300, 3), 200, np.uint8))
    rec = store.save_image(img, NewRecord(workflow="product", engine="lite", seed=7, prompt_ko="라떼",
                                          prompt_en="a latte", settings={"sns_size": "ig_square"}))
    client = running_app.client()
    items, _note = client.predict("all", api_name="/gallery_list")
    assert len(items) == 1 and items[0]["caption"].startswith(f"#{rec.id} · 제품 · ")
    items_person, _ = client.predict("person", api_name="/gallery_list")
    assert items_person == []
    client.predict(rec.id, "all", api_name="/gallery_delete")
    assert store.count() == 0
    assert not rec.path.exists()


def test_product_ad_through_the_api_and_bad_upload_message(running_app, tmp_path: Path) -> None:
    """The Product tab's event, driven by gradio_client: a real upload becomes a stored ad; a text
    file named .png comes back as the Korean message, and the history stays empty."""
    from gradio_client import handle_file
    from skimage import data

    cup = tmp_path / "cup.jpg"
    Image.fromarray(data.coffee()).save(cup, quality=92)
    client = running_app.client()
    args = dict(industry_id="cafe", style_id="warm", text_ko="라떼", text_en="", sns_id="ig_square", n=1,
                face_index=0, box_text="90,20,520,380", steps_v=2, guidance_v=30, cn_scale_v=0.7, cn_start_v=0,
                cn_end_v=0.8, feather_v=12, dilate_v=8, seed_v=11, hair_v=True, shadow_v=True,
                reflection_v=False)
    gallery, notes, prompt_en, files = client.predict(handle_file(str(cup)), *args.values(),
                                                      api_name="/product_generate")
    assert len(gallery) == 1 and gallery[0]["caption"].startswith("#")  # the id the hand-off buttons read
    assert "갤러리에도 저장" in notes and prompt_en.strip()
    store = running_app.services.store
    assert store.count("product") == 1
    with Image.open(store.list()[0].path) as im:
        assert im.size == (1080, 1080)

    fake = tmp_path / "menu.png"
    fake.write_text("this is not an image", encoding="utf-8")
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as exc:
        client.predict(handle_file(str(fake)), *args.values(), api_name="/product_generate")
    assert "이미지 파일이 아닙니다" in str(exc.value)
    assert store.count() == 1


def test_models_tab_download_offline_says_so_in_korean(running_app) -> None:
    """The Models tab's download, offline (HF_HUB_OFFLINE=1 in tests): a Korean message naming the
    model and where to copy files, and nothing is written into models/."""
    from gradio_client.exceptions import AppError

    client = running_app.client()
    with pytest.raises(AppError) as exc:
        client.predict("flux_schnell", "", api_name="/models_download")
    assert "오프라인" in str(exc.value) and "flux-schnell" in str(exc.value)
    device_md, vision_md, rows = client.predict(api_name="/models_device")
    assert "메모리 계획" in device_md and "빠른 배경 합성" in device_md
    assert "기본 얼굴 찾기" in vision_md and "기본 오려내기" in vision_md and "`haar`" not in vision_md
    assert not (running_app.services.settings.models_dir / "flux-schnell").exists() or \
        not any((running_app.services.settings.models_dir / "flux-schnell").iterdir())


def test_gallery_reports_the_startup_reconcile(settings: Settings) -> None:
    """A file with no history row, present before start, is reported once in the gallery (not deleted)."""
    from tests.conftest import RunningApp

    day = settings.outputs_dir / "2026-01-02"
    day.mkdir(parents=True)
    orphan = day / "000099_product_seed1.png"
    Image.new("RGB", (300, 300), (10, 20, 30)).save(orphan)
    app = RunningApp(settings)
    try:
        assert len(app.services.startup_report.orphan_files) == 1
        with urllib.request.urlopen(app.url + "config", timeout=10) as r:
            config = r.read().decode("utf-8")
        assert "기록이 없는 파일 1개" in config
        assert orphan.exists()
    finally:
        app.close()
