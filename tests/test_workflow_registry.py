"""The workflow registry: each workflow is one entry; requests build from keyword form values;
the ad skeleton imports no workflow built on it (no cycle); no module outside the registry picks
a workflow by its name."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from PIL import Image

import studio
from studio.errors import InputError
from studio.schema import AdvancedRequest, PersonRequest, ProductRequest
from studio.workflows import registry

ROOT = Path(studio.__file__).parent


def test_every_workflow_is_one_entry_and_resolves() -> None:
    assert set(registry.REGISTRY) == {"person", "product", "advanced", "overlay", "video", "stock"}
    for spec in registry.SPECS:
        assert isinstance(spec.request_type(), type)
        assert callable(spec.runner())
    with pytest.raises(InputError):
        registry.workflow("nope")


def test_requests_build_from_form_values_and_find_their_workflow() -> None:
    img = Image.new("RGB", (64, 64))
    values = dict(image=img, face_index=2, product_box=(1, 2, 30, 40), alpha=None, include_hair=False,
                  keep_all_people=True, shadow=False, reflection=True, sns_size="kakao_channel")
    person = registry.workflow("person").make_request(**values)
    product = registry.workflow("product").make_request(**values)
    advanced = registry.workflow("advanced").make_request(**values)
    assert type(person) is PersonRequest and person.face_index == 2 and person.keep_all_people
    assert type(product) is ProductRequest and product.product_box == (1, 2, 30, 40) and product.reflection
    assert type(advanced) is AdvancedRequest and advanced.product_box == (1, 2, 30, 40)
    assert [registry.for_request(r).name for r in (person, product, advanced)] == ["person", "product", "advanced"]
    video = registry.workflow("video").make_request(image=img, engine="motion", headline="오픈", shop="카페")
    assert video.overlay.headline == "오픈" and video.end_card.shop_name == "카페"
    assert registry.for_request(video).name == "video"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom) and n.module == "studio.workflows":
            names |= {f"studio.workflows.{a.name}" for a in n.names}
    return names


def test_the_ad_skeleton_imports_no_workflow_built_on_it() -> None:
    names = _imports(ROOT / "workflows" / "common.py")
    assert not names & {"studio.workflows.person", "studio.workflows.product", "studio.workflows.advanced",
                        "studio.workflows.registry"}


def test_no_workflow_is_chosen_by_name_outside_the_registry() -> None:
    pattern = re.compile(r"""(==|!=)\s*["'](person|product|advanced)["']|\{\s*["']person["']\s*:""")
    hits = []
    for path in ROOT.rglob("*.py"):
        if path.name == "registry.py" and path.parent.name == "workflows":
            continue
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line) and "subject" not in line:
                hits.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not hits, hits
