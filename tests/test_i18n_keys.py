"""The one text table: every key the code uses exists in Korean and English, with the same fields,
and no owner-facing text is chosen inline with `if lang == "en"`."""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

import pytest

from studio.config import REPO_ROOT
from studio.i18n import MESSAGES, t

KEY = re.compile(r"^[a-z_]+(\.[a-z0-9_]+)+$")
CALLS = {"t", "Notice", "StudioError", "InputError", "WeightsError", "Ref"}
EXTENSIONS = {"png", "jpg", "jpeg", "json", "txt", "sqlite", "py", "webp", "gif", "mp4", "safetensors", "bin",
              "onnx", "pth", "pt", "yaml", "md", "log", "part", "svg", "bmp", "tiff", "heic", "gguf"}


def sources() -> list[Path]:
    return [p for p in (REPO_ROOT / "studio").rglob("*.py") if p.name not in ("i18n.py", "gradio_words.py")] + [REPO_ROOT / "launch.py"]  # gradio_words: Gradio's keys


def _call_name(node: ast.Call) -> str:
    f = node.func
    return f.id if isinstance(f, ast.Name) else (f.attr if isinstance(f, ast.Attribute) else "")


def used_keys() -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(literal keys, f-string prefixes) passed to t()/Notice()/StudioError()... or written as
    key-shaped string constants in a namespace the table uses."""
    namespaces = {k.split(".")[0] for k in MESSAGES}
    literal: set[tuple[str, str]] = set()
    prefixes: set[tuple[str, str]] = set()
    for path in sources():
        rel = str(path.relative_to(REPO_ROOT))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and _call_name(node) in CALLS and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    literal.add((rel, arg.value))
                elif isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant):
                    prefixes.add((rel, arg.values[0].value))
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and KEY.match(node.value):
                head, tail = node.value.split(".")[0], node.value.split(".")[-1]
                if head in namespaces and tail not in EXTENSIONS:
                    literal.add((rel, node.value))
    return literal, prefixes


def test_every_literal_key_in_the_code_is_in_the_table() -> None:
    literal, _ = used_keys()
    assert len(literal) > 150, "the scan found too few keys: is it still reading the code?"
    missing = sorted((f, k) for f, k in literal if k not in MESSAGES)
    assert not missing, missing


def test_every_fstring_key_prefix_has_keys() -> None:
    _, prefixes = used_keys()
    assert prefixes
    missing = sorted((f, p) for f, p in prefixes if not any(k.startswith(p) for k in MESSAGES))
    assert not missing, missing


def test_every_expansion_of_the_fstring_keys_exists() -> None:
    from studio.config import MEMORY_PLANS
    from studio.presets import ModelEntry
    from studio.text.copywriter import TONES
    from studio.ui.app import TABS
    from studio.ui.tabs.gallery import WORKFLOWS
    from studio.workflows.overlay import CORNERS, EFFECTS

    purposes = ModelEntry.model_fields["purpose"].annotation.__args__
    expected = ([f"tab.{k}" for k, _ in TABS] + [f"tab.{w}" for w in WORKFLOWS]
                + [f"coming.{k}" for k, m in TABS if m is None]
                + [f"models.purpose.{p}" for p in purposes] + [f"overlay.tone.{x}" for x in TONES]
                + [f"overlay.corner.{c}" for c in CORNERS] + [f"overlay.effect.{e}" for e in EFFECTS]
                + [f"memory.plan.{p}" for p in MEMORY_PLANS if p != "auto"] + ["memory.plan.cpu"]
                + [f"overlay.source.{s}" for s in ("llm", "template")])
    assert [k for k in expected if k not in MESSAGES] == []


def _fields(text: str) -> set[str]:
    return {name.split("!")[0].split(":")[0] for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("key", sorted(MESSAGES))
def test_both_languages_are_complete_and_take_the_same_fields(key: str) -> None:
    ko, en = MESSAGES[key]
    assert ko.strip() and en.strip(), key
    assert _fields(ko) == _fields(en), key


def test_korean_is_korean() -> None:
    hangul = re.compile(r"[가-힣]")
    # names, units and brand words may stay as they are in Korean too
    allowed = {k for k, (ko, en) in MESSAGES.items() if ko == en}
    not_korean = [k for k, (ko, _) in MESSAGES.items() if not hangul.search(ko) and k not in allowed]
    assert len(not_korean) < len(MESSAGES) * 0.05, not_korean


def test_no_inline_language_checks_for_owner_text() -> None:
    """Owner-facing words come from the table, never from `x if lang == "en" else y` in code
    (preset data files carry their own name_ko/name_en and are read by one accessor)."""
    pattern = re.compile(r"""lang\s*[!=]=\s*["'](?:en|ko)["']""")
    allowed = {"studio/presets.py", "studio/render/overlay.py"}  # Preset.name(lang): data, not code text
    offenders = [str(p.relative_to(REPO_ROOT)) for p in sources()
                 if pattern.search(p.read_text(encoding="utf-8")) and str(p.relative_to(REPO_ROOT)) not in allowed]
    assert offenders == []


def test_no_per_module_registration() -> None:
    offenders = [str(p) for p in sources() if re.search(r"\bregister\(|MESSAGES\.update|MESSAGES\[", p.read_text())]
    assert offenders == []


def test_the_no_face_key_is_words_in_both_languages() -> None:
    assert t("workflow.no_face", "ko") != "workflow.no_face"
    assert t("workflow.no_face", "en") != "workflow.no_face"
    assert re.search(r"[가-힣]", t("workflow.no_face", "ko"))
