"""Engines by task: the registry's data, the auto choice per task with its reason, runtime switching."""

from __future__ import annotations

import pytest

from studio.engines.base import TASKS
from studio.engines.registry import REGISTRY, EngineProvider, auto_choice, choose, specs_for
from studio.errors import InputError


def test_every_task_is_registered_and_each_auto_has_a_no_weights_fallback_or_a_reason(settings) -> None:
    assert set(REGISTRY) == set(TASKS)
    for task in TASKS:
        choice = auto_choice(task, settings)
        assert choice.task == task
        assert choice.reason("ko") and choice.reason("en") and choice.reason("ko") != choice.reason("en")
        assert "{" not in choice.reason("ko")


def test_auto_inpaint_is_lite_without_weights_and_says_which_weights_are_missing(settings) -> None:
    choice = auto_choice("inpaint", settings)
    assert choice.name == "lite"
    assert choice.reason_key == "engine.reason.no_weights"
    # the best engine (commercial first, issue 23), named in plain words (issue 22): Qwen-Image-Edit
    assert choice.reason_fields["engine"] == "고화질 AI 그리기(상업용)" and "고화질 AI 그리기(상업용)" in choice.reason("ko")


def test_auto_inpaint_with_weights_but_no_cuda_says_so(settings) -> None:
    (settings.models_dir / "flux-fill").mkdir()
    (settings.models_dir / "flux-fill" / "model_index.json").write_text("{}")
    choice = auto_choice("inpaint", settings.with_(commercial_only=False))  # Fill is non-commercial
    assert choice.name == "lite" and choice.reason_key == "engine.reason.no_cuda"


def test_tiny_is_never_an_auto_choice_but_can_be_forced_per_task(settings) -> None:
    assert all(s.name != "tiny" or not s.auto for task in TASKS for s in specs_for(task))
    forced = settings.with_(engine="tiny", task_engines=(("text2image", "tiny"),))
    assert choose("inpaint", forced).name == "tiny"
    assert choose("text2image", forced).name == "tiny"
    with pytest.raises(InputError) as info:
        choose("text2image", settings.with_(task_engines=(("text2image", "nope"),)))
    assert "nope" in info.value.message("ko") and "flux-schnell" in info.value.message("ko")


def test_owner_switches_an_engine_at_runtime_and_the_old_one_is_closed(settings) -> None:
    provider = EngineProvider(settings)
    lite = provider.get("inpaint")
    assert provider.choice("inpaint").name == "lite" and lite.name == "lite"
    closed = []
    lite.close = lambda: closed.append("lite")  # the lite engine holds nothing; record the call
    choice = provider.select("inpaint", "tiny")
    assert choice.name == "tiny" and choice.reason_key == "engine.reason.selected"
    assert closed == ["lite"] and provider.peek("inpaint", "lite") is None
    assert provider.get("inpaint").name == "tiny"
    back = provider.select("inpaint", "auto")
    assert back.name == "lite" and provider.peek("inpaint", "tiny") is None
    with pytest.raises(InputError):
        provider.select("inpaint", "flux-schnell")  # a text-to-image engine is not an inpainter
