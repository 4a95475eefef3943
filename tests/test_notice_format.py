"""One notice format in history: the notices of an ad, a clip and a stock batch read back from their
history rows as `Notice.as_record` dicts (key + fields), and back into `Notice` objects."""

from __future__ import annotations

import numpy as np
from PIL import Image
from skimage import data

from studio.config import Settings
from studio.schema import GenerationOptions, Notice, ProductRequest


def _format(row_notices: list) -> list[Notice]:
    assert isinstance(row_notices, list)
    for raw in row_notices:
        assert set(raw) == {"key", "fields"}, raw        # one format, no texts or extra keys
        assert isinstance(raw["key"], str) and isinstance(raw["fields"], dict)
    out = [Notice.from_record(raw) for raw in row_notices]
    assert [n.as_record() for n in out] == row_notices   # lossless both ways
    for n in out:
        assert n.text("ko") != n.key                      # a real message key
    return out


def test_ad_clip_and_stock_notices_read_back_in_one_format(settings: Settings) -> None:
    from studio.services import build_services
    from studio.vision.io import load_image
    from studio.workflows import stock
    from studio.workflows.registry import workflow

    svc = build_services(settings)
    try:
        img = load_image(data.coffee()).image
        ad = workflow("product").runner()(
            ProductRequest(image=img, industry="cafe", style="warm", sns_size="kakao_channel",
                           product_box=(90, 20, 520, 380), options=GenerationOptions(steps=1, seed=3)), svc)
        ad_notices = _format(svc.store.get(ad.records[0].id).settings["notices"])
        assert ad_notices

        small = Image.fromarray(np.asarray(img)[::2, ::2].copy())
        video = workflow("video")
        clip = video.runner()(video.make_request(image=small, engine="motion", seconds=1, style="zoom",
                                                 scale=0.25), svc)
        _format(svc.store.get(clip.record.id).settings["notices"])

        batch = stock.plan_batch(stock.StockRequest(mode="keyword", keywords="카페, 라떼", count=1,
                                                    chain=("flux-schnell", "lite"), width=128, height=128,
                                                    min_short=0), svc)
        summary = stock.run_batch(batch.id, svc)
        assert summary.done == 1
        rows = svc.store.list(workflow="stock")
        stock_notices = _format(rows[0].settings["notices"])
        assert "stock.engine_failed" in [n.key for n in stock_notices]  # flux-schnell has no weights here
    finally:
        svc.store.close()
