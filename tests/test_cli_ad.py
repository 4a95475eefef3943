"""`python launch.py ad ...`: one JSON line for a good photo, a clear message and exit 2 for bad input."""

from __future__ import annotations

import argparse
import json

import numpy as np
from PIL import Image
from skimage import data

from studio.cli import ad


def _args(**kw) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    ad.add_arguments(parser)
    argv = []
    for k, v in kw.items():
        flag = "--" + k.replace("_", "-")
        if v is True:
            argv.append(flag)
        else:
            argv += [flag, str(v)]
    return parser.parse_args(argv)


def test_product_ad_prints_one_json_line_and_saves_the_mask(settings, tmp_path, capsys) -> None:
    photo = tmp_path / "cup.png"
    Image.fromarray(data.coffee()).save(photo)
    out = tmp_path / "ads"
    rc = ad.run(settings, _args(mode="product", image=photo, box="70,10,490,395", scene="따뜻한 우드 테이블",
                                size="1080x1350", out=out, save_mask=True))
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.strip()]
    assert rc == 0 and len(lines) == 1
    res = json.loads(lines[0])
    assert res["layout"] in ("cutout", "card", "extend") and res["faces"] == 0 and res["size"] == [1080, 1350]
    assert isinstance(res["confidence"], float) and any("우드" in n for n in res["notices"])
    with Image.open(res["ad"]) as im:
        assert im.size == (1080, 1350)
    with Image.open(res["mask"]) as m:
        mask = np.asarray(m)
    assert mask.shape == (400, 600) and 0.2 < (mask >= 128).mean() < 0.7   # the cup, on the upload


def test_bad_input_is_a_clear_message_and_exit_2(settings, tmp_path, capsys) -> None:
    photo = tmp_path / "cup.png"
    Image.fromarray(data.coffee()).save(photo)
    assert ad.run(settings, _args(mode="product", image=tmp_path / "missing.png", out=tmp_path / "o")) == 2
    assert ad.run(settings, _args(mode="product", image=photo, size="big", out=tmp_path / "o")) == 2
    assert "1080x1350" in capsys.readouterr().err
    assert ad.run(settings, _args(mode="product", image=photo, size="999x999", out=tmp_path / "o")) == 2
    assert "1080x1080" in capsys.readouterr().err          # the sizes one can choose
    assert ad.run(settings, _args(mode="person", image=photo, out=tmp_path / "o")) == 2   # no face in a cup
    assert capsys.readouterr().out == ""
