"""Hardening probes, each standing for its class: every image input goes through the safe loader
and its limits, memory stays bounded when large uploads arrive together, every text has a limit,
prompt fitting stays near-linear, and every message says what was wrong and what to do in the
owner's language (no exception names, server paths, library texts)."""

from __future__ import annotations

import io
import re
import struct
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.errors import InputError, StudioError
from studio.engines.registry import EngineProvider
from studio.services import Services
from studio.store.history import HistoryStore, NewRecord
from studio.vision.io import DecodeBudget, load_image
from studio.workflows import overlay as ov

LEAKS = re.compile(r"Traceback|Error\b|Exception|/etc/|/tmp/|/work/|\.py\b|pydantic|ValidationError|"
                   r"OverflowError|ValueError|KeyError|TypeError|site-packages|File \"")


def assert_plain(message: str, lang: str = "ko") -> None:
    assert message and not LEAKS.search(message), message
    if lang == "ko":
        assert re.search(r"[가-힣]", message), message


@pytest.fixture
def services(settings, presets):
    store = HistoryStore.open(settings.outputs_dir, settings.db_path)
    svc = Services(settings=settings, presets=presets, store=store, engines=EngineProvider(settings, None))
    yield svc
    store.close()


def _png_header_only(w: int, h: int) -> bytes:
    """A tiny PNG whose header claims w x h (a decompression bomb: 164 KB on disk for 13000²)."""
    raw = zlib.compress(b"\x00" * (w // 8 + 1) * 1, 9)  # far too little data, the header is what matters

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", raw) + chunk(b"IEND", b""))


def bad_files(tmp: Path) -> dict[str, Path]:
    from skimage import data

    files: dict[str, Path] = {}
    buf = io.BytesIO()
    Image.fromarray(data.astronaut()).save(buf, "JPEG", quality=90)
    files["truncated_jpeg"] = tmp / "cut.jpg"
    files["truncated_jpeg"].write_bytes(buf.getvalue()[: len(buf.getvalue()) // 5])
    files["bomb_png"] = tmp / "bomb.png"
    files["bomb_png"].write_bytes(_png_header_only(13000, 13000))
    files["empty"] = tmp / "empty.png"
    files["empty"].write_bytes(b"")
    files["gif_no_frames"] = tmp / "none.gif"
    files["gif_no_frames"].write_bytes(b"GIF89a\x10\x00\x10\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff;")
    files["svg"] = tmp / "logo.svg"
    files["svg"].write_text('<svg xmlns="http://www.w3.org/2000/svg" width="900" height="900"><rect/></svg>')
    files["text_as_png"] = tmp / "menu.png"
    files["text_as_png"].write_text("this is not an image", encoding="utf-8")
    return files


SPEC = dict(headline="오늘만 1+1", sub_copy="갓 구운 빵", cta="지금 오세요", layout="bottom_bar", badge="",
            badge_corner="top_right", accent="#c08552", effect="auto", logo=None, logo_corner="top_left", ai_label=True)


@pytest.mark.parametrize("kind", ["truncated_jpeg", "bomb_png", "empty", "gif_no_frames", "svg", "text_as_png"])
def test_overlay_photo_and_logo_use_the_safe_loader(services, tmp_path: Path, kind: str) -> None:
    path = bad_files(tmp_path)[kind]
    good = tmp_path / "good.png"
    Image.new("RGB", (600, 600), (200, 180, 160)).save(good)
    for call in (
        lambda: ov.preview(services, upload=str(path), record_id=None, size_id="ig_square", **SPEC),
        lambda: ov.export(services, upload=str(path), record_id=None, sizes=["ig_square"], caption="", hashtags="",
                          **SPEC),
        lambda: ov.preview(services, upload=str(good), record_id=None, size_id="ig_square",
                           **{**SPEC, "logo": str(path)}),
    ):
        with pytest.raises(InputError) as exc:
            call()
        assert_plain(exc.value.message("ko"))
        assert_plain(exc.value.message("en"), "en")
    assert services.store.count() == 0


def test_a_13000_square_png_is_refused_before_decoding(services, tmp_path: Path) -> None:
    path = bad_files(tmp_path)["bomb_png"]
    assert path.stat().st_size < 200_000
    with pytest.raises(InputError) as exc:
        ov.source_image(services, str(path), None)
    assert exc.value.key == "image.bomb" and "13000" in exc.value.message("ko")


def test_a_logo_keeps_its_transparency(services, tmp_path: Path) -> None:
    logo = Image.new("RGBA", (120, 60), (0, 0, 0, 0))
    logo.paste((200, 30, 30, 255), (10, 10, 110, 50))
    p = tmp_path / "logo.png"
    logo.save(p)
    got = ov.load_logo(str(p))
    assert got.mode == "RGBA" and got.getpixel((0, 0))[3] == 0 and got.getpixel((50, 30))[3] == 255


def test_decoding_memory_is_bounded_when_large_uploads_arrive_together(tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    Image.new("RGB", (3000, 2000), (10, 200, 30)).save(big)
    budget = DecodeBudget(max_pixels=int(3000 * 2000 * 1.5), wait_s=30)
    errors: list[BaseException] = []

    def load() -> None:
        try:
            load_image(str(big), budget=budget)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not errors
    assert budget.peak <= budget.max_pixels and budget.peak == 3000 * 2000  # one at a time here
    assert budget.in_use == 0


def test_a_load_that_cannot_get_memory_in_time_says_try_again(tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    Image.new("RGB", (1000, 1000)).save(big)
    budget = DecodeBudget(max_pixels=1_000_000, wait_s=0.2)
    with budget.reserve(1_000_000):
        t0 = time.perf_counter()
        with pytest.raises(InputError) as exc:
            load_image(str(big), budget=budget)
        assert time.perf_counter() - t0 < 2
    assert exc.value.key == "input.busy_images"
    assert_plain(exc.value.message("ko"))
    load_image(str(big), budget=budget)  # free again


# --- messages: what was wrong and what to do --------------------------------------------------
def test_box_with_infinity_or_nonsense_says_how_to_write_it() -> None:
    from studio.ui.tabs.ads import parse_box

    for text in ("1,2,3,inf", "nan,1,2,3", "1e400,0,5,5", "1,2,3", "a,b,c,d", "0,0," + "9" * 400 + ",5", "-1,-1,-9,-9"):
        with pytest.raises(InputError) as exc:
            parse_box(text, "ko")
        assert_plain(exc.value.message("ko"))
    assert parse_box("10, 20, 110, 220", "ko") == (10, 20, 110, 220)


@pytest.mark.parametrize("value", [10**20, "10**20", -1, 0, "1.5", "inf", "nan", "abc", 2**63])
def test_history_ids_out_of_range_get_plain_words(services, value) -> None:
    with pytest.raises(StudioError) as exc:
        ov.source_image(services, None, value)
    assert_plain(exc.value.message("ko"))


def test_store_get_with_a_huge_id_is_not_found_not_overflow(services) -> None:
    with pytest.raises(StudioError) as exc:
        services.store.get(10**20)
    assert exc.value.key == "store.not_found"


@pytest.mark.parametrize("colour", ["rgb(", "rgba(1,2)", "rgb(300,0,0)", "#12", "red; background:url(x)", "rgb(nan,1,1)"])
def test_bad_colours_say_pick_again(colour: str) -> None:
    with pytest.raises(InputError) as exc:
        ov.hex_colour(colour)
    assert exc.value.key == "input.bad_colour"
    assert_plain(exc.value.message("ko"))


def test_good_colours() -> None:
    assert ov.hex_colour("rgba(228, 87, 46, 1)") == "#e4572e"
    assert ov.hex_colour("#abc") == "#aabbcc"
    assert ov.hex_colour("") == "#e4572e"


@pytest.mark.parametrize("field,kw", [
    ("가게 이름", dict(shop="가" * 100_000)), ("상품", dict(product="x" * 5000)), ("혜택", dict(offer="%" * 81)),
    ("타깃 고객", dict(target="t" * 61))])
def test_a_huge_shop_name_is_refused_with_its_limit(services, field: str, kw: dict) -> None:
    base = dict(industry="cafe", shop="", product="", offer="", tone="friendly", target="", use_llm=False)
    base.update(kw)
    with pytest.raises(InputError) as exc:
        ov.generate_copy(services, **base)
    msg = exc.value.message("ko")
    assert field in msg and "자 이하로" in msg
    assert_plain(msg)


def test_overlay_texts_have_limits(services) -> None:
    for name, value in (("headline", "가" * 41), ("sub_copy", "x" * 121), ("cta", "y" * 41), ("badge", "z" * 31)):
        with pytest.raises(InputError) as exc:
            ov.make_spec(**{**SPEC, name: value})
        assert_plain(exc.value.message("ko"))
    with pytest.raises(InputError):
        ov.parse_hashtags("#태그 " * 1000)
    img = Image.new("RGB", (600, 600), (90, 90, 90))
    with pytest.raises(InputError):
        ov.export(services, upload=img, record_id=None, sizes=["ig_square"], caption="가" * 2201, hashtags="", **SPEC)


def test_prompt_limits_are_enforced_where_prompts_are_built(presets) -> None:
    from studio.text.prompts import build_prompt, fit_prompt

    with pytest.raises(InputError) as exc:
        build_prompt("cafe", "warm", "봄 " * 100_000, presets=presets)
    assert_plain(exc.value.message("ko"))
    with pytest.raises(InputError):
        fit_prompt("word " * 50_000)


def test_prompt_fitting_is_near_linear() -> None:
    """Counting tokens once per dropped word made a long prompt cost the square of its length.
    Bisection: the number of counts grows with log n; we count the calls, not the seconds."""
    from studio.text.prompts import Fragment, P_SUBJECT, _fit

    def calls_for(n_words: int) -> int:
        calls = [0]

        def fits(text: str) -> bool:
            calls[0] += 1
            return len(text.split()) <= 60

        frags = [Fragment(" ".join(f"w{i}" for i in range(n_words)), P_SUBJECT, 0)]
        text, dropped = _fit(frags, fits)
        assert len(text.split()) == 60 and len(dropped) == n_words - 60
        return calls[0]

    small, big = calls_for(1_000), calls_for(100_000)
    assert big <= small + 12 and big < 40, (small, big)


def test_guarded_shows_plain_words_for_a_bug() -> None:
    import gradio as gr

    from studio.ui.common import guarded

    @guarded("ko")
    def handler() -> None:
        raise OverflowError("Python int too large to convert to SQLite INTEGER /work/x.py")

    with pytest.raises(gr.Error) as exc:
        handler()
    assert_plain(exc.value.message)
    assert "handler" not in exc.value.message and "OverflowError" not in exc.value.message


def test_raw_key_workflow_no_face_is_translated_without_importing_anything() -> None:
    """The bug: the first faceless upload on the Person tab showed `workflow.no_face` raw."""
    import subprocess
    import sys

    code = ("from studio.i18n import t; import sys; "
            "ko, en = t('workflow.no_face', 'ko'), t('workflow.no_face', 'en'); "
            "sys.exit(0 if ko != 'workflow.no_face' and en != 'workflow.no_face' and ko != en else 1)")
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parent.parent).returncode == 0


def test_person_upload_without_a_face_shows_korean_words(settings, tmp_path: Path) -> None:
    """Through the Person tab's own upload handler (the browser's path): no raw key."""
    from gradio_client.exceptions import AppError  # noqa: F401

    from tests.conftest import RunningApp

    wall = tmp_path / "wall.png"
    Image.fromarray(np.tile(np.linspace(60, 200, 512, dtype=np.uint8), (512, 1))).convert("RGB").save(wall)
    app = RunningApp(settings)
    try:
        from gradio_client import handle_file

        _preview, notes, _faces = app.client().predict(handle_file(str(wall)), 0, "", False, api_name="/person_prepare")
        assert "workflow." not in notes and "얼굴" in notes
    finally:
        app.close()


def test_every_image_input_in_every_tab_reaches_the_safe_loader_raw(settings) -> None:
    """The class: no interactive gr.Image anywhere decodes an upload with PIL before our loader."""
    import gradio as gr

    from studio.services import build_services
    from studio.ui.app import build_app
    from studio.ui.common import _raw_preprocess

    services = build_services(settings)
    try:
        demo = build_app(services)
        inputs = [b for b in demo.blocks.values() if isinstance(b, gr.Image) and b.interactive is not False]
        assert len(inputs) >= 6, "person, product, advanced, overlay photo + logo, video..."
        skipped = [b.label for b in inputs if getattr(b.preprocess, "__func__", None) is not _raw_preprocess]
        assert skipped == []
        assert all(b.type == "filepath" for b in inputs)
    finally:
        services.store.close()


def test_overlay_copy_shows_progress_while_the_llm_writes(settings) -> None:
    """The copy button's handler is given a real progress tracker (a named-form handler) and
    tells the owner it is waiting, with the longest wait."""
    import inspect

    import gradio as gr

    from studio.services import build_services
    from studio.ui.app import build_app

    services = build_services(settings)
    try:
        demo = build_app(services)
        fn = next(f for f in demo.fns.values() if f.api_name == "overlay_copy")
        params = inspect.signature(fn.fn).parameters
        assert "shop" in params and isinstance(params["progress"].default, gr.Progress)
        seen: list[str] = []

        class Tracker:
            def __call__(self, value, desc=None, **_kw):
                seen.append(desc)

        out = fn.fn("cafe", "달빛", "라떼", "", "friendly", "", True, False, "qwen2.5:7b-instruct", None, Tracker())
        assert out[0] and any("최대 30초" in (d or "") for d in seen)
    finally:
        services.store.close()
