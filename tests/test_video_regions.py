"""Real clips from real photos, encoded to MP4 and read back: per-region frame-difference maps.

- No region stays frozen while the photo under it moves, under every text layout: the plate, the
  subject and the backdrop each keep moving with the camera (the text layer holds no photo pixels).
- The first frame carries the headline (the thumbnail).
- The frame is filled (no bare letterbox) for a landscape and a portrait photo; the subject's box
  stays inside the frame in every frame.

The region maps come from the clips themselves: the same camera over the photo without text (the
reference motion), and over the subject's mask drawn as a white-on-black picture (where the subject is
in every frame).
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from studio.engines.base import Image2VideoJob

sys.path.insert(0, str(Path(__file__).resolve().parent))
from photoset import load_set  # noqa: E402

W, H = 270, 480      # 9:16 at a quarter of 1080x1920
FPS = 30
SECONDS = 2.0
CELL = 10


def _photo(name: str):
    photo = {p.name: p for p in load_set()}[name]
    if not photo.available():
        pytest.fail(f"photo {photo.source} missing: scripts/test.sh installs {photo.package}")
    img = photo.image()
    return img, photo.mask(img.size)


def _clip(tmp: Path, name: str, img: Image.Image, mask: np.ndarray | None, style: str, overlay=None) -> list[np.ndarray]:
    """Render with the motion engine, encode to H.264 MP4, decode every frame back."""
    from studio.engines.motion import MotionEngine, Slide
    from studio.render.video import encode_frames, read_frames

    job = Image2VideoJob(image=img, width=W, height=H, seconds=SECONDS, fps=FPS,
                         extras={"style": style, "slides": [Slide(img, mask, overlay)]})
    res = MotionEngine().image2video(job)
    out = tmp / f"{name}.mp4"
    encode_frames(res.frames, out, W, H, FPS, total=res.frame_count())
    return [f.copy() for f in read_frames(out)]


def _cells(diff: np.ndarray) -> np.ndarray:
    h, w = diff.shape[:2]
    d = diff[: h // CELL * CELL, : w // CELL * CELL]
    if d.ndim == 3:
        d = d.mean(axis=2)
    return d.reshape(h // CELL, CELL, w // CELL, CELL).mean(axis=(1, 3))


def _motion(frames: list[np.ndarray], a: int, b: int) -> np.ndarray:
    return _cells(np.abs(frames[a].astype(np.float32) - frames[b].astype(np.float32)))


def _layouts() -> list[str]:
    from studio.render.overlay import load_layouts

    return list(load_layouts())


@pytest.mark.parametrize("layout", _layouts())
def test_no_region_is_frozen_while_the_photo_under_it_moves(tmp_path, layout) -> None:
    from studio.render.overlay import OverlaySpec

    img, mask = _photo("astronaut")  # a person in a busy room: texture under every plate
    spec = OverlaySpec(headline="주말 한정 축구화 세일", sub_copy="전 품목 30% 할인", cta="매장에서 만나요",
                       layout=layout)
    style = "pan"
    text = _clip(tmp_path, "text", img, mask, style, spec)
    plain = _clip(tmp_path, "plain", img, mask, style)
    where = _clip(tmp_path, "mask", Image.fromarray(mask).convert("RGB"), mask, style)
    assert len(text) == len(plain) == int(SECONDS * FPS)
    # the overlay's cells: where a late frame with text differs from the same frame without
    late = len(text) - 2
    over = _cells(np.abs(text[late].astype(np.float32) - plain[late].astype(np.float32))) > 6
    assert over.any(), "no text on screen"
    assert (_cells(np.abs(text[0].astype(np.float32) - plain[0].astype(np.float32))) > 6).any(), \
        "the first frame carries no text"
    # the cells of letters, badge and logo (drawn things that may stay still): the same text over a
    # flat grey picture shows texture only there
    grey = _clip(tmp_path, "grey", Image.new("RGB", img.size, (200, 200, 200)), None, style, spec)
    dark = _clip(tmp_path, "dark", Image.new("RGB", img.size, (40, 40, 40)), None, style, spec)
    glyphs = _cell_std(grey[late]) > 2.0
    glyphs = cv2.dilate(glyphs.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0  # and their edges
    # how much of the picture the overlay lets through, per cell (an opaque ribbon: none)
    see_through = _cells(np.abs(grey[late].astype(np.float32) - dark[late].astype(np.float32))) / 160.0
    subject = _cells(where[len(where) // 2].astype(np.float32)) > 128
    regions = {"plate": over & ~glyphs & (see_through > 0.15), "subject": subject & ~over,
               "backdrop": ~subject & ~over}
    report = {}
    for a, b in ((20, len(text) - 1), (30, len(text) - 1), (20, 45)):  # the text is settled by frame 20
        ref = _motion(plain, a, b)
        moving = ref > 6.0
        # a frozen cell still shows the photo as it was at frame a (a frozen copy); a cell of the
        # overlay shows the photo as it is now (through a see-through plate), or no photo at all
        then = _corr(text[b], plain[a])
        now = _corr(text[b], plain[b])
        # how much closer each cell is to the past picture than to the present one
        lag = then - now
        for name, region in regions.items():
            cells = moving & region
            if cells.sum() < 4:
                continue
            report[(name, a, b)] = round(float(lag[cells].mean()), 3)
    from studio.render.overlay import load_layouts

    plate = load_layouts()[layout].plate
    if plate is not None and plate.opacity < 0.85:  # a see-through plate: the photo must move under it
        assert any(k[0] == "plate" for k in report), "the photo under the text did not move"
    # every region looks like the present picture, not the past one (a frozen copy scores >= 0)
    assert max(report.values()) < -0.3, f"mean lag (corr. with the past - with the present) per region: {report}"


def _cell_std(f: np.ndarray) -> np.ndarray:
    g = f.astype(np.float32).mean(axis=2)
    h, w = g.shape
    g = g[: h // CELL * CELL, : w // CELL * CELL]
    return g.reshape(h // CELL, CELL, w // CELL, CELL).std(axis=(1, 3))


def _corr(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-cell correlation of two frames' grey levels."""
    def cells(f: np.ndarray) -> np.ndarray:
        g = f.astype(np.float32).mean(axis=2)
        h, w = g.shape
        g = g[: h // CELL * CELL, : w // CELL * CELL]
        return g.reshape(h // CELL, CELL, w // CELL, CELL).transpose(0, 2, 1, 3).reshape(h // CELL, w // CELL, -1)

    a, b = cells(x), cells(y)
    a = a - a.mean(axis=2, keepdims=True)
    b = b - b.mean(axis=2, keepdims=True)
    den = np.sqrt((a * a).sum(axis=2) * (b * b).sum(axis=2))
    return np.where(den > 1e-3 * CELL * CELL, (a * b).sum(axis=2) / np.maximum(den, 1e-6), 0.0)


@pytest.mark.parametrize("name", ["messi", "grace_hopper"])  # landscape, portrait
def test_frame_is_filled_and_the_subject_stays_inside(tmp_path, name) -> None:
    img, mask = _photo(name)
    where = _clip(tmp_path, "mask", Image.fromarray(mask).convert("RGB"), mask, "zoom")
    plain = _clip(tmp_path, "plain", img, mask, "zoom")
    for f in (0, len(plain) // 2, len(plain) - 1):
        frame = plain[f].astype(np.float32)
        # filled: no bare (flat, letterbox-like) band anywhere; every row carries picture
        bare = frame.std(axis=(1, 2)) < 2.0
        assert bare.mean() < 0.01, f"{name} frame {f}: bare bands ({bare.mean():.2f} of rows)"
        # and the sharp photo takes a large part of the frame: all of it when the subject fits a
        # vertical crop (portrait), the designed layout's photo band when it is wider (landscape)
        detail = np.abs(np.diff(frame.mean(axis=2), axis=1)).mean(axis=1) > 1.5
        need = 0.4 if name == "messi" else 0.9
        assert detail.mean() > need, f"{name} frame {f}: only {detail.mean():.2f} of rows show the photo"
    first = where[0].mean(axis=2) > 128
    ys, xs = np.nonzero(first)
    inside = {"left": xs.min() >= 1, "right": xs.max() <= W - 2, "top": ys.min() >= 1}
    if name == "messi":  # a landscape photo whose subject fits whole: all of it, always
        assert all(inside.values()), inside
    for i, f in enumerate(where):
        sub = f.mean(axis=2) > 128
        assert sub.any(), f"{name}: subject gone in frame {i}"
        ys, xs = np.nonzero(sub)
        # every side of the subject's box inside the frame at rest stays inside in every frame
        now = {"left": xs.min() >= 1, "right": xs.max() <= W - 2, "top": ys.min() >= 1}
        assert all(now[k] for k, v in inside.items() if v), f"{name}: subject leaves the frame in frame {i}"


def test_first_frame_carries_the_headline_in_the_mp4(tmp_path) -> None:
    from studio.render.overlay import OverlaySpec

    img, mask = _photo("coffee")
    spec = OverlaySpec(headline="오늘만 아메리카노 1+1", layout="top_banner")
    text = _clip(tmp_path, "text", img, mask, "zoom", spec)
    plain = _clip(tmp_path, "plain", img, mask, "zoom")
    d = np.abs(text[0].astype(np.float32) - plain[0].astype(np.float32)).max(axis=2)
    # the headline's glyphs: many strongly changed pixels in the top part of the first frame
    assert (d[: H // 2] > 80).sum() > 200
