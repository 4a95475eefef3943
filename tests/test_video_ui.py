"""The Video tab: its handler without a browser, the real event through gradio_client, the gallery."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_video import ad_image


def test_handler_makes_a_clip_from_a_history_image_with_text_and_end_card(settings, tmp_path) -> None:
    from studio.render.video import probe
    from studio.services import build_services
    from studio.store.history import NewRecord
    from studio.ui.tabs.video import history_choices, make_clip

    services = build_services(settings)
    try:
        img, _ = ad_image()
        rec = services.store.save_image(img, NewRecord(workflow="product", engine="lite",
                                                       settings={"focus_box": [150, 320, 450, 620]}))
        assert history_choices(services)[0][1] == rec.id
        path, notes = make_clip(services, history_id=rec.id, seconds=2, size="4:5", style="zoom",
                                headline="오늘만 1+1", cta="지금 방문", shop="카페 온기", scale=0.25)
        p = probe(path)
        assert (p.width, p.height) == (270, 338) and p.codec == "h264"
        assert f"#{rec.id + 1}" in notes and "움직임" in notes
        video = services.store.get(rec.id + 1)
        assert video.parent_id == rec.id and video.settings["end_card"] is True
        assert any(x.suffix == ".png" for x in video.extra_paths)  # the poster for the gallery
    finally:
        services.store.close()


def test_video_event_through_the_api_then_the_gallery_lists_the_clip(running_app, tmp_path: Path) -> None:
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    img, _ = ad_image()
    src = tmp_path / "ad.png"
    img.save(src)
    client = running_app.client()
    args = [None, handle_file(str(src)), [], "motion", "parallax", "", True, 5, "1:1", "오늘만 1+1", "", "지금 방문",
            "", "bottom_bar", "", "", None]
    fake = tmp_path / "song.mp3"
    fake.write_text("not music", encoding="utf-8")
    with pytest.raises(AppError) as err:
        client.predict(*args, handle_file(str(fake)), api_name="/video_make")
    assert "오디오" in str(err.value)
    store = running_app.services.store
    assert store.count() == 0

    video, notes = client.predict(*args, None, api_name="/video_make")
    assert store.count("video") == 1
    rec = store.list()[0]
    assert rec.path.suffix == ".mp4" and "저장" in notes
    items, _ = client.predict("video", api_name="/gallery_list")
    assert len(items) == 1 and items[0]["caption"].startswith(f"#{rec.id} · ")
    assert "video" in items[0] and items[0]["video"]["path"].endswith(".mp4")  # the gallery plays the clip


def test_video_tab_in_the_browser_makes_and_plays_a_clip(running_app, tmp_path: Path) -> None:
    """Headless Chromium: the Video tab in Korean, an upload, the clip in the player; screenshots."""
    import os

    from tests.test_browser import ARGS, CHROMIUM

    from playwright.sync_api import sync_playwright

    shots = Path(os.environ.get("FITAD_SCREENSHOTS", tmp_path / "shots"))
    shots.mkdir(parents=True, exist_ok=True)
    img, _ = ad_image()
    src = tmp_path / "ad.png"
    img.save(src)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="ko-KR")
        page.goto(running_app.url)
        page.wait_for_selector("#engine-banner", timeout=60_000)
        page.get_by_role("tab", name="영상").click()
        page.wait_for_selector("#video-make", timeout=30_000)
        assert "Hunyuan" in page.inner_text("#video-engine-note")
        page.locator("#video-upload input[type=file]").set_input_files(str(src))
        page.get_by_label("헤드라인 (20자 이내)").fill("오늘만 1+1")
        page.get_by_label("정사각 1:1").check()
        page.screenshot(path=str(shots / "video_tab.png"), full_page=True)
        page.click("#video-make")
        page.wait_for_selector("#video-player video", timeout=240_000)
        page.wait_for_function("document.querySelector('#video-notes').innerText.includes('저장')", timeout=60_000)
        page.screenshot(path=str(shots / "video_result.png"), full_page=True)
        browser.close()
    assert running_app.services.store.count("video") == 1


def test_ai_mode_without_weights_says_which_model_is_missing(settings, tmp_path) -> None:
    from studio.errors import WeightsError
    from studio.services import build_services
    from studio.ui.tabs.video import make_clip

    services = build_services(settings)
    try:
        img, _ = ad_image()
        src = tmp_path / "ad.png"
        img.save(src)
        with pytest.raises(WeightsError) as err:
            make_clip(services, upload=str(src), mode="ai", prompt_ko="김이 나는 커피", seconds=2, scale=0.25)
        assert "LTX-Video" in err.value.message("ko") or "ltx-video" in err.value.message("ko")
        assert services.store.count() == 0
    finally:
        services.store.close()
