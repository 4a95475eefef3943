"""The studio in headless Chromium at 1366×768, in Korean, as an owner uses it: a Person ad, a
Product ad, the gallery and its "use these settings again". Every request must stay on
127.0.0.1, and no developer key or English internal text may show in the Korean UI.

Screenshots of every tab go to $FITAD_SCREENSHOTS (kept for a person to look at) or tmp.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
from PIL import Image

from studio.i18n import MESSAGES

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TABS = ("인물", "제품", "고급", "오버레이", "영상", "스톡", "갤러리", "모델")
SLUGS = ("person", "product", "advanced", "overlay", "video", "stock", "gallery", "models")
DEV_WORDS = re.compile(r"\b(workflow|engine_size|sns_size|prompt_en|prompt_ko|seed: None|None\b|Traceback|"
                       r"Exception|Error:|job\.failed|\w+Error\b)")


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("FITAD_SCREENSHOTS", tmp_path / "shots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def browser_page():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1366, "height": 768}, locale="ko-KR")
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        yield page, requests
        browser.close()


def _visible_text(page) -> str:
    return page.evaluate("() => document.body.innerText")


def assert_owner_words(text: str, where: str) -> None:
    keys = [k for k in MESSAGES if "." in k and re.search(rf"(?<![\w.]){re.escape(k)}(?![\w.])", text)]
    assert not keys, f"{where}: developer keys shown {keys[:5]}"
    m = DEV_WORDS.search(text)
    assert not m, f"{where}: {m.group(0)!r} shown"


def assert_local(requests: list[str]) -> None:
    outside = [u for u in requests if urlparse(u).scheme in ("http", "https", "ws", "wss")
               and urlparse(u).hostname not in ("127.0.0.1",)]
    assert not outside, outside[:5]


def _open(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("#engine-banner", timeout=60_000)


def test_every_tab_in_korean_at_1366x768(running_app, browser_page, shots: Path) -> None:
    page, requests = browser_page
    _open(page, running_app.url)
    for name, slug in zip(TABS, SLUGS):
        page.get_by_role("tab", name=name).click()
        page.wait_for_timeout(700)
        page.screenshot(path=str(shots / f"tab_{slug}.png"))
        assert_owner_words(_visible_text(page), name)
        arr = np.asarray(Image.open(shots / f"tab_{slug}.png").convert("L"), dtype=np.float32)
        assert arr.std() > 10
    assert_local(requests)


@pytest.mark.parametrize("slug", ["person", "product", "advanced"])
def test_generate_is_visible_without_scrolling(running_app, browser_page, slug: str) -> None:
    page, _ = browser_page
    _open(page, running_app.url)
    page.get_by_role("tab", name=TABS[SLUGS.index(slug)]).click()
    gen = page.locator(f"#{slug}-generate")
    gen.wait_for(timeout=20_000)
    box = gen.bounding_box()
    assert box is not None and box["y"] + box["height"] <= 768, box
    cancel = page.locator(f"#{slug}-cancel").bounding_box()
    assert cancel is not None and cancel["width"] * cancel["height"] < box["width"] * box["height"] / 2
    # the primary colour is on Generate, not on Cancel
    assert "primary" in (gen.get_attribute("class") or "")
    assert "primary" not in (page.locator(f"#{slug}-cancel").get_attribute("class") or "")


def test_person_product_and_gallery_like_an_owner(running_app, browser_page, shots: Path, tmp_path: Path) -> None:
    from skimage import data

    page, requests = browser_page
    person = tmp_path / "astronaut.jpg"
    Image.fromarray(data.astronaut()).save(person, quality=92)
    cup = tmp_path / "cup.jpg"
    Image.fromarray(data.coffee()).save(cup, quality=92)
    _open(page, running_app.url)

    # Person ad
    page.locator("#person-upload input[type=file]").set_input_files(str(person))
    page.wait_for_function("document.querySelector('#person-preview img') !== null", timeout=60_000)
    page.locator("#person-prompt-ko textarea, #person-prompt-ko input").first.fill("봄 느낌 카페 창가")
    page.locator("#person-generate").click()
    page.wait_for_function("document.querySelectorAll('#person-results img').length > 0", timeout=180_000)
    assert "갤러리에도 저장" in page.inner_text("#person-notes")
    page.screenshot(path=str(shots / "person_result.png"))
    assert_owner_words(_visible_text(page), "person result")

    # Product ad
    page.get_by_role("tab", name="제품").click()
    page.locator("#product-upload input[type=file]").set_input_files(str(cup))
    page.wait_for_function("document.querySelector('#product-preview img') !== null", timeout=60_000)
    page.locator("#product-expert").get_by_text("전문가 설정").first.click()  # the typed box is an expert control
    page.locator("#product-box textarea, #product-box input").first.fill("90,20,520,380")
    page.locator("#product-generate").click()
    page.wait_for_function("document.querySelectorAll('#product-results img').length > 0", timeout=180_000)
    assert "갤러리에도 저장" in page.inner_text("#product-notes")
    page.screenshot(path=str(shots / "product_result.png"))
    assert_owner_words(_visible_text(page), "product result")
    assert running_app.services.store.count() == 2

    # a bad upload: Korean words, no internals
    fake = tmp_path / "menu.png"
    fake.write_text("not an image", encoding="utf-8")
    page.locator("#product-upload input[type=file]").set_input_files(str(fake))
    page.wait_for_timeout(2500)
    text = _visible_text(page)
    assert "이미지 파일이 아닙니다" in text
    assert_owner_words(text, "bad upload")

    # Gallery: open the newest, read its summary, use its settings again
    page.get_by_role("tab", name="갤러리").click()
    page.get_by_role("button", name="새로 고침").click()
    page.wait_for_function("document.querySelectorAll('#history-gallery img').length >= 2", timeout=30_000)
    page.locator("#history-gallery img").first.click()
    page.wait_for_function("document.querySelector('#gallery-summary').innerText.includes('업종')", timeout=30_000)
    summary = page.inner_text("#gallery-summary")
    assert "제품" in summary and "크기" in summary
    page.screenshot(path=str(shots / "gallery_open.png"))
    assert_owner_words(_visible_text(page), "gallery")
    page.locator("#gallery-reuse").click()
    page.wait_for_function(
        "document.querySelector('#product-box textarea, #product-box input').value === '90,20,520,380'",
        timeout=30_000)
    page.wait_for_timeout(500)
    page.screenshot(path=str(shots / "gallery_reused_into_product.png"))
    assert page.locator("#product-generate").is_visible(), "the Product tab is open"
    assert not page.locator("#history-gallery").is_visible()
    assert_local(requests)
