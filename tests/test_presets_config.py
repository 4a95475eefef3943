"""Presets are validated, versioned data; settings parse the CLI's auth forms."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from studio.config import REPO_ROOT, parse_auth
from studio.errors import InputError
from studio.presets import Presets, PresetError

REQUIRED_INDUSTRIES = {"cafe", "restaurant", "bakery", "salon", "fitness", "fashion", "flower", "academy"}


def test_all_presets_validate(presets: Presets) -> None:
    presets.validate_all()
    assert REQUIRED_INDUSTRIES <= {i.id for i in presets.industries}
    for ind in presets.industries:
        assert ind.name_ko and ind.name_en and ind.palette and ind.prompt_fragments_en


def test_sns_sizes_cover_the_places_owners_post(presets: Presets) -> None:
    sizes = {s.id: (s.width, s.height) for s in presets.sns_sizes}
    assert sizes["ig_square"] == (1080, 1080)
    assert sizes["ig_portrait"] == (1080, 1350)
    assert sizes["ig_story"] == (1080, 1920)
    assert sizes["ig_landscape"] == (1080, 566)
    platforms = {s.platform for s in presets.sns_sizes}
    assert {"naver", "kakao", "baemin", "youtube"} <= platforms
    for s in presets.sns_sizes:
        x0, y0, x1, y1 = s.safe_box()
        assert 0 <= x0 < x1 <= s.width and 0 <= y0 < y1 <= s.height


def test_model_catalog_licences(presets: Presets) -> None:
    fill = presets.model("flux_fill_dev")
    assert not fill.commercial_use and fill.outputs_commercial and fill.gated
    assert presets.model("flux_schnell").licence == "Apache-2.0"
    assert presets.model("flux_schnell").commercial_use
    assert not presets.model("insightface_buffalo_l").commercial_use
    assert not presets.model("openpose_body").commercial_use
    assert presets.model("yunet").commercial_use


def _copy_presets(tmp_path: Path) -> Path:
    dst = tmp_path / "presets"
    shutil.copytree(REPO_ROOT / "presets", dst)
    return dst


def test_newer_version_is_refused(tmp_path: Path) -> None:
    d = _copy_presets(tmp_path)
    raw = json.loads((d / "styles.json").read_text(encoding="utf-8"))
    raw["version"] = 99
    (d / "styles.json").write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(PresetError, match="version 99"):
        Presets(d).styles


def test_invalid_item_names_file_and_item(tmp_path: Path) -> None:
    d = _copy_presets(tmp_path)
    raw = json.loads((d / "industries.json").read_text(encoding="utf-8"))
    raw["items"][1]["palette"] = ["red", "#ffffff"]
    (d / "industries.json").write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(PresetError, match=r"industries\.json: item 1 \(restaurant\)"):
        Presets(d).industries


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    d = _copy_presets(tmp_path)
    raw = json.loads((d / "styles.json").read_text(encoding="utf-8"))
    raw["items"].append(dict(raw["items"][0]))
    (d / "styles.json").write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(PresetError, match="duplicate id"):
        Presets(d).styles


def test_unknown_id_falls_back_to_default(presets: Presets) -> None:
    assert presets.industry("no_such_shop").id == presets.industries[0].id
    assert presets.sns("cafe").id == presets.sns_sizes[0].id


def test_parse_auth_inline_and_file(tmp_path: Path) -> None:
    assert parse_auth("owner:s3cret:with:colons") == (("owner", "s3cret:with:colons"),)
    f = tmp_path / "auth.txt"
    f.write_text("# owners\nkim:pw1\n\nlee:pw2\n", encoding="utf-8")
    assert parse_auth(str(f)) == (("kim", "pw1"), ("lee", "pw2"))
    assert parse_auth(None) == ()
    for bad in ("nopassword", ":pw", "user:"):
        with pytest.raises(InputError) as exc:
            parse_auth(bad)
        assert "사용자:비밀번호" in exc.value.message("ko")
