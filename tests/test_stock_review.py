"""Issue 21: stock images a reviewer would accept — metadata from what was drawn, unique titles,
"seamless" only after a tiling test, near-plain duplicates caught, rejects refilled, Korean words."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from PIL import Image

from studio.config import Settings
from studio.engines.lite_t2i import render_asset
from studio.render import stock_post as post
from studio.store.batches import BatchStore
from studio.text.stock_meta import colour_shares, dominant_colours, meta_from_drawn
from studio.text.stock_prompts import build_prompts, lite_unfit_words
from studio.workflows import stock as W


@pytest.fixture
def services(settings: Settings):
    from studio.services import build_services

    sv = build_services(settings)
    yield sv
    sv.store.close()


def _meta(prompt: str, seed: int = 1):
    img, plan = render_asset(prompt, 160, 160, seed)
    return meta_from_drawn(img.info["drawn"], dominant_colours(img), post.tiles_seamlessly(img)), plan


def test_titles_and_keywords_differ_between_kinds() -> None:
    dots, p1 = _meta("polka dot pattern coffee")
    marble, p2 = _meta("marble texture coffee")
    bokeh, p3 = _meta("bokeh lights night")
    assert (p1.family, p1.motif, p2.family, p3.family) == ("pattern", "dots", "marble", "bokeh")
    titles = {dots.title_en, marble.title_en, bokeh.title_en}
    assert len(titles) == 3 and len({dots.title_ko, marble.title_ko, bokeh.title_ko}) == 3
    assert "polka dot" in dots.title_en.lower() and "marble" in marble.title_en.lower()
    assert "bokeh" in bokeh.title_en.lower()
    assert dots.keywords_en[:3] != marble.keywords_en[:3] != bokeh.keywords_en[:3]
    assert "marble" not in dots.keywords_en and "polka dot" not in marble.keywords_en
    # a lite asset is a graphic resource, never a photo
    for m in (dots, marble, bokeh):
        assert m.category == 8
        assert not {"photo", "close-up", "golden hour"} & {k.lower() for k in m.keywords_en}


def test_tiling_test_separates_tiles_from_non_tiles() -> None:
    tile, _ = render_asset("gingham pattern", 200, 200, 3)
    grad, _ = render_asset("mesh gradient background", 200, 200, 3)
    assert post.tiles_seamlessly(tile) and post.seam_ratio(tile) < 1.2
    assert not post.tiles_seamlessly(grad)
    # half a tile shifted: the wrap-around seam now cuts through the pattern
    arr = np.asarray(tile)
    cut = Image.fromarray(np.ascontiguousarray(arr[:, : arr.shape[1] * 7 // 13]))
    assert post.seam_ratio(cut) > post.seam_ratio(tile)
    m_tile, _ = _meta("gingham pattern", 3)
    m_grad, _ = _meta("mesh gradient background", 3)
    assert "seamless" in m_tile.keywords_en and m_tile.title_en.startswith("Seamless")
    assert "seamless" not in " ".join(m_grad.keywords_en).lower() and "seamless" not in m_grad.title_en.lower()


def test_a_near_plain_duplicate_is_caught_but_other_colours_pass() -> None:
    rng = np.random.default_rng(0)

    def plain(rgb):
        return Image.fromarray((np.full((256, 256, 3), rgb) + rng.normal(0, 2, (256, 256, 3)))
                               .clip(0, 255).astype(np.uint8))

    a, b, c = plain((230, 215, 190)), plain((232, 214, 192)), plain((200, 225, 240))
    sa, sb, sc = post.signature(a), post.signature(b), post.signature(c)
    assert post.hamming(sa.phash, sb.phash) > 5           # pHash alone misses it
    dup = post.near_duplicate(sb, [sa])
    assert dup is not None and dup["by"] == "colour+structure"
    assert post.near_duplicate(sc, [sa]) is None
    # different drawings of one kind and palette that really differ are kept
    d1, _ = render_asset("polka dot pattern coffee", 256, 256, 1)
    m1, _ = render_asset("marble texture coffee", 256, 256, 1)
    assert post.near_duplicate(post.signature(m1), [post.signature(d1)]) is None
    # signatures survive the history row
    assert post.Signature.from_dict(sa.to_dict()) == sa


def _rows(data: bytes, encoding: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode(encoding))))


def test_lite_batch_metadata_unique_titles_seamless_and_csvs_match(services) -> None:
    req = W.StockRequest(mode="keyword", keywords="패턴, 대리석, 수채화, 보케, 그라데이션, 린넨", count=12,
                         chain=("lite",), width=160, height=160, min_short=0, seed=5)
    batch = W.plan_batch(req, services)
    summary = W.run_batch(batch.id, services)
    assert summary.done == 12
    files, csvs = W.export_files(services, batch.id)
    names = [n for n, _ in files]
    recs = {r.settings["batch_item"]: r for r in W._batch_records(services, batch.id)}  # noqa: SLF001
    adobe = _rows(csvs[f"adobe_{batch.short}.csv"], "utf-8")
    crowd = _rows(csvs[f"crowdpic_{batch.short}.csv"], "utf-8-sig")
    assert [r[0] for r in adobe[1:]] == names == [r[0] for r in crowd[1:]]      # CSVs match the files
    assert len({r[1].lower() for r in adobe[1:]}) == 12                          # no English title repeats
    assert len({r[1] for r in crowd[1:]}) == 12                                  # nor a Korean one
    kinds = set()
    for (name, path), row in zip(files, adobe[1:]):
        rec = recs[int(name.split("_")[-1].split(".")[0])]
        with Image.open(path) as im:
            tiles = post.tiles_seamlessly(im.convert("RGB"))
        kinds.add((rec.settings["drawn"]["family"], rec.settings["drawn"].get("motif")))
        assert ("seamless" in row[2].lower().split(", ")) == tiles == rec.settings["tiles"], (name, row)
        assert row[3] == "8"
    assert len(kinds) >= 3


def test_lite_renders_at_the_target_size_without_upscaling(services) -> None:
    req = W.StockRequest(mode="keyword", keywords="pattern", count=1, chain=("lite",), width=128, height=96,
                         min_short=300, seed=2)
    batch = W.plan_batch(req, services)
    W.run_batch(batch.id, services)
    rec = W._batch_records(services, batch.id)[0]  # noqa: SLF001
    assert rec.settings["upscale"] == "none" and min(rec.settings["size"]) == 300
    assert rec.settings["size"] == [400, 300]


def test_rejected_items_are_replaced_by_new_prompts(services, monkeypatch) -> None:
    real = W.produce_item
    calls: list[int] = []

    def flaky(chain, item, request, upscaler=None, cancel=None):
        calls.append(item.idx)
        if item.idx in (0, 2):
            return W.Produced(item.idx, False, engine="lite", reason="uniform")
        return real(chain, item, request, upscaler, cancel)

    monkeypatch.setattr(W, "produce_item", flaky)
    req = W.StockRequest(mode="keyword", keywords="pattern, marble, linen", count=4, chain=("lite",),
                         width=128, height=128, min_short=0, seed=9)
    batch = W.plan_batch(req, services)
    summary = W.run_batch(batch.id, services)
    assert summary.done == 4 and summary.total == 4
    with BatchStore(services.store.db_path) as bs:
        items = bs.items(batch.id)
    assert len(items) == 6 and [i.state for i in items].count("rejected") == 2
    new = [i for i in items if i.prompt.get("refill")]
    old_prompts = {i.prompt["prompt_en"] for i in items if not i.prompt.get("refill")}
    assert len(new) == 2 and all(i.prompt["prompt_en"] not in old_prompts for i in new)   # NEW prompts


def test_refill_stops_and_says_why(services, monkeypatch) -> None:
    monkeypatch.setattr(W, "produce_item", lambda chain, item, request, upscaler=None, cancel=None:
                        W.Produced(item.idx, False, engine="lite", reason="blurred"))
    req = W.StockRequest(mode="keyword", keywords="pattern", count=2, chain=("lite",), width=96, height=96,
                         min_short=0)
    batch = W.plan_batch(req, services)
    summary = W.run_batch(batch.id, services)
    assert summary.done == 0
    assert "stock.refill_exhausted" in [n.key for n in summary.notices]


def test_korean_stock_words_are_handled() -> None:
    plan = build_prompts("keyword", 10, seed=1, keywords="수채화, 보케, 한옥, 질감, 아트")
    joined = " ".join(p.prompt_en for p in plan.prompts)
    for word in ("watercolor", "bokeh", "hanok", "texture", "art"):
        assert word in joined
    assert not plan.notices                                            # nothing dropped
    # unknown words never refuse a batch: kept in the Korean tags and reported
    plan = build_prompts("keyword", 3, seed=1, keywords="꾸덕꾸덕")
    assert len(plan.prompts) == 3 and plan.prompts[0].tags_ko == ["꾸덕꾸덕"]
    assert [n.key for n in plan.notices] == ["stock.unknown_words"]


def test_lite_says_before_the_batch_what_it_cannot_draw(services) -> None:
    assert lite_unfit_words("수채화, 보케, 질감, 패턴, 파스텔") == []
    assert lite_unfit_words("라떼아트, 해변, 대리석") == ["라떼아트", "해변"]
    req = W.StockRequest(mode="keyword", keywords="라떼아트, 해변, 대리석", count=2, chain=("lite",),
                         width=96, height=96, min_short=0)
    batch = W.plan_batch(req, services)
    assert batch.notices[0]["key"] == "stock.lite_cannot_draw"
    assert "해변" in batch.notices[0]["fields"]["words"]
    from studio.i18n import t

    assert "AI 엔진" in t("stock.lite_cannot_draw", "ko", **batch.notices[0]["fields"])


def test_ray_connection_errors_get_plain_messages() -> None:
    from studio.workflows.stock_ray import connect_error

    assert connect_error("1.2.3.4:6379", RuntimeError("InvalidAuthToken: token mismatch")).key == "stock.ray_auth"
    assert connect_error("1.2.3.4:6379", ConnectionRefusedError("refused")).key == "stock.ray_refused"
    assert connect_error("x", ConnectionError("Could not find any running Ray instance")).key == "stock.ray_refused"
    assert connect_error("x", ValueError("odd")).key == "stock.ray_failed"


def test_same_kind_in_the_same_colours_is_caught_and_palettes_vary_per_item() -> None:
    from studio.engines.lite_t2i import mood_palette

    def draw(seed: int):
        img, plan = render_asset("marble texture coffee", 192, 192, seed)
        d = img.info["drawn"]
        return post.signature(img, f"{d['family']}:{d['motif'] or '-'}:{d['style']}", colour_shares(img)), d

    drawn = {s: draw(s) for s in range(40)}
    # two light marbles in the same palette (seeds 8 apart walk to the same one), veins elsewhere
    a = next(s for s in range(8) if drawn[s][1]["style"] == "light" and drawn[s + 8][1]["style"] == "light")
    sa, sb = drawn[a][0], drawn[a + 8][0]
    assert post.hamming(sa.phash, sb.phash) > 5                                  # pHash alone misses it
    dup = post.near_duplicate(sb, [sa])
    assert dup is not None and dup["by"] == "same kind and colours"               # a reviewer's "similar"
    # a dark stone of the same batch is another picture: kept
    dark = next(s for s in range(40) if drawn[s][1]["style"] == "dark")
    assert post.near_duplicate(drawn[dark][0], [sa]) is None
    # another kind in the same colours is not "the same": kept
    assert post.near_duplicate(post.Signature(sa.phash ^ 0xFFFF_FFFF, sa.hist, bytes(1024), "bokeh:-:night",
                                              sa.mean, sa.names, sa.shares), [sa]) is None
    # one mood ("cafe"), several palettes across consecutive items
    pals = {tuple(np.round(mood_palette("coffee", s)[0], 3)) for s in range(8)}
    assert len(pals) == 8


def test_a_dead_cluster_address_is_told_in_seconds_not_minutes() -> None:
    import socket
    import time

    from studio.errors import StudioError
    from studio.workflows.stock_ray import connect, probe

    with socket.socket() as s:          # a port nobody listens on (bound, then closed)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.perf_counter()
    with pytest.raises(StudioError) as err:
        connect(f"127.0.0.1:{port}")
    assert err.value.key == "stock.ray_refused" and time.perf_counter() - t0 < 5
    with socket.socket() as srv:        # a port that answers passes the knock
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        probe(f"127.0.0.1:{srv.getsockname()[1]}")
        probe("auto")
