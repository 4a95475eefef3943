"""Issue 21: an AI engine's stock metadata comes from the prompt actually used to make the image
(not from every word the owner typed); "seamless" only after the tiling test; the category follows
the content; titles unique in both CSVs, which list exactly the exported files. Run on the tiny
FLUX text-to-image engine (the real pipeline code over tiny random weights)."""

from __future__ import annotations

import csv
import io

import pytest
from PIL import Image

from studio.config import Settings
from studio.render import stock_post as post
from studio.text.stock_meta import meta_from_prompt
from studio.workflows import stock as W

pytestmark = pytest.mark.timeout(300)

TYPED_KO = {"카페": "cafe", "라떼아트": "latte art", "벚꽃": "cherry blossoms", "해변": "beach"}


@pytest.fixture
def services(settings: Settings):
    from studio.services import build_services

    sv = build_services(settings)
    yield sv
    sv.store.close()


def test_seamless_and_category_follow_the_prompt_used() -> None:
    prompt = {"prompt_en": "seamless marble texture, soft window light, warm tones", "title_en":
              "Seamless marble texture", "tags_en": ["seamless marble texture", "beach", "latte art"],
              "tags_ko": ["대리석", "해변"], "subject_en": ["seamless marble texture"], "subject_ko": ["대리석"],
              "description_ko": "대리석 주제의 이미지. 부드러운 창가 빛."}
    flat = meta_from_prompt(prompt, tiles=False)
    assert "seamless" not in flat.title_en.lower() and flat.title_en == "Marble texture"
    assert not any("seamless" in k.lower() for k in flat.keywords_en)
    assert flat.keywords_en[0] == "marble texture"
    assert "beach" not in flat.keywords_en and "latte art" not in flat.keywords_en    # typed, not used
    assert flat.keywords_ko == ["대리석"] and flat.title_ko == "대리석 주제의 이미지"
    assert flat.category == 8                                                       # texture: graphic
    tiled = meta_from_prompt(prompt, tiles=True)
    assert tiled.title_en.startswith("Seamless") and "seamless marble texture" in tiled.keywords_en
    # the category comes from what the image shows
    assert meta_from_prompt({"prompt_en": "cherry blossoms, pastel colors", "subject_en": ["cherry blossoms"]},
                            True).category == 14
    assert meta_from_prompt({"prompt_en": "beach, bright", "subject_en": ["beach"]}, True).category == 11
    assert meta_from_prompt({"prompt_en": "latte art, cafe", "subject_en": ["latte art", "cafe"]}, True).category == 4


def _rows(data: bytes, encoding: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode(encoding))))


def test_tiny_engine_batch_metadata_comes_from_each_prompt(services) -> None:
    from studio.engines.tiny import tiny_models_dir

    tiny_models_dir(services.settings)
    req = W.StockRequest(mode="keyword", keywords="카페, 라떼아트, 벚꽃, 해변", count=6, chain=("tiny",), width=64,
                         height=64, min_short=0, gate=False, steps=2, seed=3)
    batch = W.plan_batch(req, services)
    summary = W.run_batch(batch.id, services)
    assert summary.done == 6
    files, csvs = W.export_files(services, batch.id)
    recs = {r.settings["batch_item"]: r for r in W._batch_records(services, batch.id)}  # noqa: SLF001
    assert {r.engine for r in recs.values()} == {"tiny"}
    adobe = _rows(csvs[f"adobe_{batch.short}.csv"], "utf-8")
    crowd = _rows(csvs[f"crowdpic_{batch.short}.csv"], "utf-8-sig")
    names = [n for n, _ in files]
    assert [r[0] for r in adobe[1:]] == names == [r[0] for r in crowd[1:]]           # CSVs match the files
    assert len({r[1].lower() for r in adobe[1:]}) == 6 and len({r[1] for r in crowd[1:]}) == 6   # unique
    categories = set()
    for (name, path), arow, krow in zip(files, adobe[1:], crowd[1:]):
        rec = recs[int(name.split("_")[-1].split(".")[0])]
        used = rec.prompt_en.split(",")[0:4]
        used_en = {en for en in TYPED_KO.values() if en in rec.prompt_en}
        used_ko = {ko for ko, en in TYPED_KO.items() if en in used_en}
        keywords = arow[2].split(", ")
        # the prompt's own subject leads, and no typed word it didn't use is claimed
        assert keywords[0].lower() == used[0].strip().lower(), (keywords, rec.prompt_en)
        for en in set(TYPED_KO.values()) - used_en:
            assert en not in keywords, (en, rec.prompt_en)
        assert used_en <= {k.lower() for k in keywords}
        # Korean: only the owner's words this prompt used, and its title names them
        ko_words = set(rec.settings["meta"]["keywords_ko"])
        assert ko_words & set(TYPED_KO) == used_ko, (ko_words, rec.prompt_en)
        assert all(ko in krow[1] for ko in used_ko) and not any(ko in krow[1] for ko in set(TYPED_KO) - used_ko)
        # "seamless" only when the saved file passes the tiling test; category from the content
        with Image.open(path) as im:
            tiles = post.tiles_seamlessly(im.convert("RGB"))
        assert tiles == rec.settings["tiles"]
        assert ("seamless" in arow[2].lower()) <= tiles
        first = used[0].strip()
        expected = {"cafe": 4, "latte art": 4, "cherry blossoms": 14, "beach": 11}[first]
        assert arow[3] == str(expected), (first, arow[3])
        categories.add(arow[3])
    assert len(categories) >= 2
