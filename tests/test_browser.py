"""The studio in headless Chromium, as an owner sees it: tabs, an upload, a generated ad.

Screenshots go to $FITAD_SCREENSHOTS (kept for a person to look at) or the test's tmp folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("FITAD_SCREENSHOTS", tmp_path / "shots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Chromium is installed by scripts/test.sh (apt-get install chromium)"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        pg = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="ko-KR")
        yield pg
        browser.close()


def _not_blank(path: Path) -> None:
    arr = np.asarray(Image.open(path).convert("L"), dtype=np.float32)
    assert arr.std() > 10, f"{path.name} looks blank"


def test_tabs_render_in_korean(running_app, page, shots: Path) -> None:
    page.goto(running_app.url)
    page.wait_for_selector("#engine-banner", timeout=60_000)
    for name in ("인물", "제품", "고급", "오버레이", "영상", "스톡", "갤러리", "모델"):
        assert page.get_by_role("tab", name=name).count() == 1, name
    assert "지금 쓰는 방식: 빠른 배경 합성" in page.inner_text("#engine-banner")
    page.screenshot(path=str(shots / "person_tab.png"), full_page=True)
    _not_blank(shots / "person_tab.png")
    page.get_by_role("tab", name="모델").click()
    page.wait_for_selector("#model-catalog", timeout=30_000)
    assert "FLUX.1 Fill [dev]" in page.inner_text("#model-catalog")
    page.screenshot(path=str(shots / "models_tab.png"), full_page=True)


def test_product_ad_in_the_browser(running_app, page, shots: Path, tmp_path: Path) -> None:
    from skimage import data

    cup = tmp_path / "cup.jpg"
    Image.fromarray(data.coffee()).save(cup, quality=92)
    page.goto(running_app.url)
    page.wait_for_selector("#engine-banner", timeout=60_000)
    page.get_by_role("tab", name="제품").click()
    page.locator("#product-upload input[type=file]").set_input_files(str(cup))
    # the preview and notes appear after the safe load
    page.wait_for_function("document.querySelector('#product-preview img') !== null", timeout=60_000)
    page.locator("#product-expert").get_by_text("전문가 설정").first.click()  # the typed box is an expert control
    page.locator("#product-box textarea, #product-box input").first.fill("90,20,520,380")
    page.locator("#product-generate").click()
    page.wait_for_function("document.querySelectorAll('#product-results img').length > 0", timeout=120_000)
    assert "갤러리에도 저장" in page.inner_text("#product-notes")
    page.screenshot(path=str(shots / "product_result.png"), full_page=True)
    _not_blank(shots / "product_result.png")
    assert running_app.services.store.count("product") == 1
    # the gallery tab shows it after a refresh
    page.get_by_role("tab", name="갤러리").click()
    page.get_by_role("button", name="새로 고침").click()
    page.wait_for_function("document.querySelectorAll('#history-gallery img').length > 0", timeout=30_000)
    page.screenshot(path=str(shots / "gallery.png"), full_page=True)
