"""Issue 22: help of the headless commands, Gradio's own words in Korean, hand-off helpers."""

from __future__ import annotations

import contextlib
import io

import pytest


def _help(*argv: str) -> str:
    import launch

    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        launch.build_parser().parse_args([*argv, "--help"])
    return out.getvalue()


@pytest.mark.parametrize("command", ["ad", "video", "stock", "demo"])
def test_headless_help_hides_server_flags(command: str) -> None:
    text = _help(command)
    for flag in ("--port", "--share", "--auth", "--no-browser"):
        assert flag not in text, f"{command} --help lists {flag}"


def test_server_flags_still_accepted_by_a_headless_command() -> None:
    import launch

    args = launch.build_parser().parse_args(["ad", "--port", "7000", "--mode", "person", "--image", "x.jpg",
                                             "--out", "o"])
    assert args.port == 7000


def test_ad_help_lists_the_valid_values() -> None:
    text = _help("ad")
    for value in ("cafe", "salon", "nail", "studio", "premium", "dreamy", "product", "person", "advanced"):
        assert value in text
    import launch

    with contextlib.redirect_stderr(io.StringIO()), pytest.raises(SystemExit):
        launch.build_parser().parse_args(["ad", "--mode", "person", "--image", "x", "--out", "o",
                                          "--industry", "spaceship"])


def test_serve_help_keeps_the_server_flags() -> None:
    text = _help()
    assert "--share" in text and "--port" in text


def test_gradio_words_are_korean_for_every_locale() -> None:
    from studio.ui.gradio_words import GRADIO_LOCALES, gradio_i18n

    i18n = gradio_i18n("ko")
    data = i18n.translations_dict
    assert set(GRADIO_LOCALES) <= set(data)
    for locale in ("en", "ko", "fr"):
        assert data[locale]["upload_text.drop_image"] == "사진을 여기로 끌어 놓기"
        assert data[locale]["common.error"] != "Error"
    assert gradio_i18n("en") is None


def test_launch_kwargs_carry_the_translations(settings) -> None:
    from studio.ui.server import launch_kwargs

    kw = launch_kwargs(settings)
    assert kw["i18n"] is not None and "ko" in kw["i18n"].translations_dict


def test_result_id_reads_the_gallery_caption() -> None:
    from studio.ui.handoff import result_id

    assert result_id([("a.png", "#12"), ("b.png", "#13")]) == 12
    assert result_id([{"image": {"path": "a.png"}, "caption": "#7"}]) == 7
    assert result_id([]) is None
    assert result_id(None) is None
