"""Motion clips without weights, on the CPU: camera moves, parallax and animated ad text.

What a clip is made of (all decided once, before the first frame):

- **Camera** (`style`): `zoom` (Ken Burns push toward the subject), `zoom_out`, `pan` (a slow
  sideways drift at a fixed zoom), `parallax` (subject and background move as separate layers; the
  hole behind the subject is filled with OpenCV inpainting so no gap shows), or `auto` (parallax
  when a keep mask exists, else zoom). The zoom is capped so the subject's box stays inside the
  frame in every frame.
- **Text**: the ad's overlay (`studio.render.overlay`, the same layouts, fonts and measured
  contrast as the still ads) is rendered ONCE on the first frame, split into elements (plate,
  headline, sub copy, price badge, call to action; the logo and the "AI 생성" label stay on from the
  first frame) and animated in: fade, slide up, pop.
- **Showcase**: several slides, each with its own camera and text, joined by cross-fades.
- **End card**: the shop's name (and logo) on a blurred, darkened copy of the last slide.

Speed and memory design: layers are rendered once; each frame costs one or two `cv2.warpAffine`
calls and a few alpha blends over small boxes. `image2video` returns a `VideoResult` whose `frames`
is a lazy generator (`count` says how many): the caller streams it into the encoder
(`studio.render.video.ClipWriter`), so no more than two full frames exist at any time. The
generator checks `cancel` before every frame and reports progress per frame.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator

import cv2
import numpy as np
from PIL import Image

from studio.engines.base import EngineCaps, Image2VideoJob, VideoResult
from studio.runtime.jobs import CancelToken, ProgressFn
from studio.schema import Notice

if TYPE_CHECKING:
    from studio.config import Settings
    from studio.render.fonts import Fonts
    from studio.render.overlay import OverlaySpec

log = logging.getLogger(__name__)

STYLES: tuple[str, ...] = ("auto", "zoom", "zoom_out", "pan", "parallax")
STRENGTHS: dict[str, float] = {"gentle": 1.12, "normal": 1.22, "strong": 1.35}  # the push-in over a slide
TRANSITION_S = 0.5
END_CARD_S = 1.6
MAX_ZOOM = 1.25   # the push-in over a slide (the subject's box may lower it; never below MIN_PUSH)
MIN_PUSH = 1.2
SUBJECT_MARGIN = 0.015          # of the frame side: the subject's box keeps this far from the edge


# --- what the workflow hands over (in job.extras) --------------------------------------------------
@dataclass
class Slide:
    image: Image.Image                       # RGB, any size (smart-cropped to the clip size)
    keep_mask: np.ndarray | None = None      # uint8, image size, 255 = subject (enables parallax)
    overlay: "OverlaySpec | None" = None     # the ad text to animate in
    focus_box: tuple[float, float, float, float] | None = None  # subject box in image pixels


@dataclass
class EndCard:
    shop_name: str
    tagline: str = ""
    logo: Image.Image | None = None


@dataclass
class _Layer:
    """A piece of the picture at a fixed place: RGB + alpha over the box at (x0, y0)."""

    rgb: np.ndarray
    alpha: np.ndarray         # float32 0..1 (a transparent layer: no pixel of the photo in it)
    x0: int
    y0: int
    anim: str = "none"        # none | fade | slide | pop
    start: float = 0.0        # seconds after the slide starts
    length: float = 0.45
    flat: tuple[int, int, float] | None = None  # rows [r0, r1) of one colour at one opacity (a plate's core)


@dataclass
class _Prepared:
    base: np.ndarray                          # the framed slide, clip size, RGB uint8
    background: np.ndarray | None = None      # parallax: the base with the subject inpainted away
    subject: tuple[tuple[np.ndarray, np.ndarray], int, int] | None = None  # ((rgb, alpha) crops, x0, y0)
    box: tuple[float, float, float, float] | None = None            # subject box, clip pixels
    layers: list[_Layer] = field(default_factory=list)
    style: str = "zoom"
    push: float = 1.22                         # the zoom reached at the end of the slide


def _ease(u: float) -> float:
    u = min(1.0, max(0.0, u))
    return 0.5 - 0.5 * math.cos(math.pi * u)


def _max_scale(box: tuple[float, float, float, float] | None, ax: float, ay: float, w: int, h: int,
               push: float = MAX_ZOOM) -> float:
    """The largest zoom about (ax, ay), up to `push`, that keeps `box` inside the frame (with a
    margin) on every side where it is inside at rest."""
    if box is None:
        return push
    mx, my = SUBJECT_MARGIN * w, SUBJECT_MARGIN * h
    x0, y0, x1, y1 = box
    limit = push
    for lo, hi, a, edge_lo, edge_hi in ((x0, x1, ax, mx, w - mx), (y0, y1, ay, my, h - my)):
        # a side the photo already cuts (a person's body at the bottom) does not limit the zoom
        if edge_lo < lo < a:
            limit = min(limit, (a - edge_lo) / max(1e-6, a - lo))
        if a < hi < edge_hi:
            limit = min(limit, (edge_hi - a) / max(1e-6, hi - a))
    return max(1.0, limit)


def _affine(scale: float, ax: float, ay: float, dx: float = 0.0, dy: float = 0.0) -> np.ndarray:
    """Zoom by `scale` about (ax, ay), then shift by (dx, dy): p' = a + s (p - a) + d."""
    return np.float32([[scale, 0, ax * (1 - scale) + dx], [0, scale, ay * (1 - scale) + dy]])


def _overlap(frame: np.ndarray, alpha: np.ndarray, x0: int, y0: int) -> tuple[slice, slice, slice, slice] | None:
    """Where a layer of `alpha`'s size placed at (x0, y0) meets the frame: (frame rows, frame cols,
    layer rows, layer cols), or None when it lies wholly outside."""
    h, w = frame.shape[:2]
    lh, lw = alpha.shape[:2]
    fx0, fy0, fx1, fy1 = max(0, x0), max(0, y0), min(w, x0 + lw), min(h, y0 + lh)
    if fx1 <= fx0 or fy1 <= fy0:
        return None
    sx0, sy0 = fx0 - x0, fy0 - y0
    return slice(fy0, fy1), slice(fx0, fx1), slice(sy0, sy0 + fy1 - fy0), slice(sx0, sx0 + fx1 - fx0)


def _blend_into(frame: np.ndarray, rgb: np.ndarray, alpha: np.ndarray, x0: int, y0: int,
                opacity: float = 1.0) -> None:
    """frame[y0:, x0:] = rgb * a + frame * (1 - a) with a = alpha/255 * opacity, clipped to the frame
    (in place). Alpha is quantised to three levels (0, 1/2, 1: hard text masks and a feathered
    subject edge look the same at video resolution), so a blend is two masked copies instead of a
    float multiply over the whole box: a subject layer over most of a 1080x1920 frame costs ~5 ms."""
    part = _overlap(frame, alpha, x0, y0)
    if part is None or opacity <= 0.0:
        return
    fy, fx, sy, sx = part
    if (sy.start, sx.start, sy.stop, sx.stop) == (0, 0, *alpha.shape[:2]):
        a, src = alpha, rgb
    else:
        a = np.ascontiguousarray(alpha[sy, sx])
        src = np.ascontiguousarray(rgb[sy, sx])
    roi = frame[fy, fx]  # a view: cv2.copyTo writes into the frame
    full = cv2.compare(a, 191, cv2.CMP_GT)
    if opacity >= 1.0:
        cv2.copyTo(src, full, roi)
    else:
        cv2.copyTo(cv2.addWeighted(src, opacity, roi, 1.0 - opacity, 0.0), full, roi)
    mid = cv2.inRange(a, 64, 191)
    if cv2.countNonZero(mid):
        half = opacity / 2
        cv2.copyTo(cv2.addWeighted(src, half, roi, 1.0 - half, 0.0), mid, roi)


class MotionEngine:
    """Image-to-video without weights (see the module docstring)."""

    name = "motion"
    caps = EngineCaps(inpaint=False, image2video=True, work_megapixels=None, size_multiple=2)
    model_ids: list[str] = []

    def __init__(self, fonts: "Fonts | None" = None) -> None:
        self._fonts = fonts

    # -- the protocol -------------------------------------------------------------------------
    def image2video(self, job: Image2VideoJob, progress: ProgressFn | None = None,
                    cancel: CancelToken | None = None) -> VideoResult:
        w, h = int(job.width) // 2 * 2, int(job.height) // 2 * 2
        fps = int(job.fps)
        total = max(1, int(round(job.seconds * fps)))
        extras = job.extras or {}
        slides: list[Slide] = list(extras.get("slides") or [])
        if not slides:
            slides = [Slide(job.image, job.keep_mask, extras.get("overlay"), extras.get("focus_box"))]
        style = str(extras.get("style") or "auto")
        if style not in STYLES:
            style = "auto"
        self._push = STRENGTHS.get(str(extras.get("strength") or "normal"), STRENGTHS["normal"])
        end_card: EndCard | None = extras.get("end_card")
        notices: list[Notice] = []
        if style == "parallax" and any(s.keep_mask is None for s in slides):
            notices.append(Notice("video.no_parallax"))
        frames = self._frames(slides, style, end_card, w, h, fps, total, progress, cancel)
        return VideoResult(frames=frames, fps=fps, notices=notices, count=total)

    def close(self) -> None:
        return None

    # -- timeline ------------------------------------------------------------------------------
    def _frames(self, slides: list[Slide], style: str, end_card: EndCard | None, w: int, h: int, fps: int,
                total: int, progress: ProgressFn | None, cancel: CancelToken | None) -> Iterator[np.ndarray]:
        seconds = total / fps
        card_s = min(END_CARD_S, seconds * 0.3) if end_card is not None else 0.0
        trans = min(TRANSITION_S, seconds / (4 * max(1, len(slides))))
        n = len(slides)
        # slide i spans [starts[i], starts[i] + dur) seconds; neighbours overlap by `trans`
        body = seconds - card_s + (trans if card_s else 0.0)
        dur = (body + (n - 1) * trans) / n
        starts = [i * (dur - trans) for i in range(n)]
        card_start = seconds - card_s
        prepared: dict[int, _Prepared] = {}
        card: np.ndarray | None = None
        for f in range(total):
            if cancel is not None:
                cancel.raise_if_cancelled()
            now = f / fps
            active = [i for i in range(n) if starts[i] <= now < starts[i] + dur] or [n - 1]
            for i in list(prepared):
                if i not in active and i < min(active):
                    del prepared[i]  # finished slides free their layers
            frame: np.ndarray | None = None
            for i in active:
                if i not in prepared:
                    prepared[i] = self._prepare(slides[i], style, w, h)
                u = (now - starts[i]) / dur
                img = self._render(prepared[i], u, now - starts[i], dur, w, h)
                if frame is None:
                    frame = img
                else:  # cross-fade into the next slide
                    k = _ease((now - starts[i]) / trans)
                    frame = cv2.addWeighted(frame, 1.0 - k, img, k, 0.0)
            if card_s and now >= card_start:
                if card is None:
                    last = prepared.get(n - 1) or self._prepare(slides[-1], style, w, h)
                    card = self._end_card(end_card, last.base, w, h)  # type: ignore[arg-type]
                k = _ease((now - card_start) / max(1e-6, min(trans or 0.4, card_s / 2)))
                frame = card.copy() if k >= 1.0 else cv2.addWeighted(frame, 1.0 - k, card, k, 0.0)
            if progress is not None:
                progress(f + 1, total, "frames")
            yield frame  # type: ignore[misc]

    # -- per slide: layers once ----------------------------------------------------------------
    def _fonts_or_default(self) -> "Fonts":
        if self._fonts is None:
            from studio.render.fonts import Fonts

            self._fonts = Fonts.default()
        return self._fonts

    def _prepare(self, slide: Slide, style: str, w: int, h: int) -> _Prepared:
        src = slide.image.convert("RGB")
        box = slide.focus_box
        mask = slide.keep_mask
        if mask is not None:
            mask = np.asarray(mask, dtype=np.uint8)
            if mask.shape[:2] != (src.height, src.width):
                mask = cv2.resize(mask, src.size, interpolation=cv2.INTER_NEAREST)
            if box is None:
                ys, xs = np.nonzero(mask > 127)
                if len(xs):
                    box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
        if not _cover_fits(src.size, box, w, h):
            # the subject is wider than a vertical crop can hold: a designed layout, the photo as
            # large as the subject allows over a blurred, darkened fill of itself
            src, mask, box = _letterbox(src, mask, box, w, h)
        # frame the slide at the clip size; the mask and the subject box go through the same window
        base, win = _frame(np.asarray(src), w, h, box, src)
        fmask = _frame(mask, w, h, box, src, win, cv2.INTER_NEAREST)[0] if mask is not None else None
        fbox = None
        if fmask is not None and (fmask > 127).any():
            ys, xs = np.nonzero(fmask > 127)
            fbox = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
        elif box is not None:
            x0, y0, x1, y1 = win
            kx, ky = w / (x1 - x0), h / (y1 - y0)
            fbox = (max(0.0, (box[0] - x0) * kx), max(0.0, (box[1] - y0) * ky),
                    min(float(w), (box[2] - x0) * kx), min(float(h), (box[3] - y0) * ky))
        chosen = style
        if style == "auto":
            chosen = "parallax" if fmask is not None and fbox is not None else "zoom"
        if chosen == "parallax" and (fmask is None or fbox is None):
            chosen = "zoom"
        prep = _Prepared(base=base, box=fbox, style=chosen, push=getattr(self, "_push", STRENGTHS["normal"]))
        if chosen == "parallax":
            prep.background, prep.subject = _split_layers(base, fmask)  # type: ignore[arg-type]
        if slide.overlay is not None:
            prep.layers = _text_layers(base, slide.overlay, w, h, self._fonts_or_default())
        return prep

    # -- per frame: warps and blends -----------------------------------------------------------
    def _render(self, p: _Prepared, u: float, t: float, dur: float, w: int, h: int) -> np.ndarray:
        e = _ease(u)
        if p.box is not None:
            cx, cy = (p.box[0] + p.box[2]) / 2, (p.box[1] + p.box[3]) / 2
        else:
            cx, cy = w / 2, h * 0.45
        flags = cv2.INTER_LINEAR
        if p.style == "parallax" and p.subject is not None and p.background is not None:
            s_fg = 1.0 + (_max_scale(p.box, cx, cy, w, h, p.push) - 1.0) * e
            s_bg = 1.0 + (p.push - 1.0) * 0.45 * e + 0.03
            # the backdrop drifts sideways under the subject (its layer is larger than the frame)
            drift = (s_bg - 1.0) * 0.45 * w * (e - 0.5)
            frame = cv2.warpAffine(p.background, _affine(s_bg, w / 2, cy, drift), (w, h), flags=flags,
                                   borderMode=cv2.BORDER_REFLECT)
            rgba, x0, y0 = p.subject
            sh, sw = rgba[1].shape[:2]
            m = _affine(s_fg, cx, cy)
            dx0 = int(math.floor(m[0, 0] * x0 + m[0, 2]))
            dy0 = int(math.floor(m[1, 1] * y0 + m[1, 2]))
            dw, dh = int(math.ceil(sw * s_fg)) + 2, int(math.ceil(sh * s_fg)) + 2
            local = np.float32([[s_fg, 0, m[0, 0] * x0 + m[0, 2] - dx0], [0, s_fg, m[1, 1] * y0 + m[1, 2] - dy0]])
            rgb, alpha = rgba
            fg = cv2.warpAffine(rgb, local, (dw, dh), flags=flags, borderMode=cv2.BORDER_REPLICATE)
            fa = cv2.warpAffine(alpha, local, (dw, dh), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            _blend_into(frame, fg, fa, dx0, dy0)  # a feathered edge at three levels: fast over a big subject
        else:
            if p.style == "zoom_out":
                s = 1.0 + (_max_scale(p.box, cx, cy, w, h, p.push) - 1.0) * (1.0 - e)
                ax, ay, dx = cx, cy, 0.0
            elif p.style == "pan":
                # a sideways travel across the picture at a fixed zoom: the frame stays covered
                s = p.push
                ax, ay = w / 2, cy
                reach = (s - 1.0) * w / 2
                dx = reach * (1.0 - 2.0 * e)
                if p.box is not None:  # keep the subject's box inside: limit the travel
                    lo = (SUBJECT_MARGIN * w) - (ax + s * (p.box[0] - ax))
                    hi = (w - SUBJECT_MARGIN * w) - (ax + s * (p.box[2] - ax))
                    if lo <= hi:
                        dx = min(max(dx, lo), hi)
            else:  # zoom
                s = 1.0 + (_max_scale(p.box, cx, cy, w, h, p.push) - 1.0) * e
                ax, ay, dx = cx, cy, 0.0
            frame = cv2.warpAffine(p.base, _affine(s, ax, ay, dx), (w, h), flags=flags,
                                   borderMode=cv2.BORDER_REFLECT)
        pace = min(1.0, dur / 3.0)  # short showcase slides animate faster
        for layer in p.layers:
            _draw_layer(frame, layer, t / pace if pace > 0 else t)
        return frame

    # -- end card ------------------------------------------------------------------------------
    def _end_card(self, card: EndCard, last: np.ndarray, w: int, h: int) -> np.ndarray:

        small = cv2.resize(last, (max(2, w // 8), max(2, h // 8)), interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(small, (0, 0), 3)
        bg = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        bg = cv2.addWeighted(bg, 0.45, np.zeros_like(bg), 0.55, 0.0)
        canvas = bg
        if card.logo is not None:
            logo = card.logo.convert("RGBA")
            lw = int(w * 0.36)
            lh = int(lw * logo.height / max(1, logo.width))
            if lh > h * 0.2:
                lh = int(h * 0.2)
                lw = int(lh * logo.width / max(1, logo.height))
            arr = np.asarray(logo.resize((max(2, lw), max(2, lh)), Image.Resampling.LANCZOS))
            x0, y0 = (w - arr.shape[1]) // 2, int(h * 0.26) - arr.shape[0] // 2
            _blend_into(canvas, np.ascontiguousarray(arr[..., :3]), np.ascontiguousarray(arr[..., 3]), x0, y0)
        fonts = self._fonts_or_default()
        mx = int(w * 0.08)
        top = int(h * 0.38) if card.logo is not None else int(h * 0.36)
        _draw_centred(canvas, card.shop_name, fonts, (mx, top, w - mx, top + int(h * 0.14)), int(w * 0.13), 2)
        if card.tagline.strip():
            _draw_centred(canvas, card.tagline, fonts, (mx, top + int(h * 0.15), w - mx, top + int(h * 0.21)),
                          int(w * 0.055), 2, weight="regular")
        return canvas


def _draw_centred(canvas: np.ndarray, text: str, fonts: "Fonts", box: tuple[int, int, int, int], max_size: int,
                  max_lines: int, weight: str = "black") -> None:
    """White text fitted to `box` (the overlay's 어절 line breaking and size search) with a soft shadow."""
    from PIL import ImageDraw, ImageFilter

    from studio.render.overlay import fit_text

    text = fonts.drawable(text.strip(), weight)  # type: ignore[arg-type]
    fit = fit_text(text, fonts, box, max_size, max_lines, weight) if text else None  # type: ignore[arg-type]
    if fit is None:
        return
    x0, y0, x1, y1 = box
    layer = Image.new("L", (x1 - x0, y1 - y0), 0)
    draw = ImageDraw.Draw(layer)
    total = (len(fit.lines) - 1) * fit.line_h + fit.asc + fit.desc
    y = (y1 - y0 - total) / 2
    for line in fit.lines:
        draw.text(((x1 - x0) / 2, y), line, font=fit.font, fill=255, anchor="ma")
        y += fit.line_h
    glyphs = np.asarray(layer)
    shadow = np.asarray(layer.filter(ImageFilter.GaussianBlur(max(2, fit.size // 14))))
    region = canvas[y0:y1, x0:x1]
    k = shadow.astype(np.float32)[..., None] * (0.6 / 255.0)
    region[...] = (region * (1 - k)).astype(np.uint8)
    a = glyphs.astype(np.float32)[..., None] / 255.0
    region[...] = (region * (1 - a) + 255.0 * a + 0.5).astype(np.uint8)


@dataclass(frozen=True)
class _SnsBox:
    """The clip size as the overlay renderer expects an SNS preset (safe box 5.5% / 10% in)."""

    width: int
    height: int

    def safe_box(self) -> tuple[int, int, int, int]:
        mx = int(round(self.width * 0.055))
        top = int(round(self.height * (0.12 if self.height > self.width * 1.5 else 0.055)))
        bottom = int(round(self.height * (0.16 if self.height > self.width * 1.5 else 0.055)))
        return mx, top, self.width - mx, self.height - bottom


MIN_KEPT = 0.55   # a cover crop keeping less of the photo than this letterboxes it instead


def _kept_fraction(size: tuple[int, int], w: int, h: int) -> float:
    sw, sh = size
    a, b = sw / sh, w / h
    return min(a, b) / max(a, b)


def _cover_fits(size: tuple[int, int], box: tuple[float, float, float, float] | None, w: int, h: int) -> bool:
    """Whether a crop of the clip's aspect filling the frame keeps the subject whole. Without a
    subject the crop follows the picture's most salient part and always fills the frame."""
    if box is None or _kept_fraction(size, w, h) >= MIN_KEPT:
        return True
    sw, sh = size
    win_w = min(sw, sh * w / h)
    win_h = min(sh, sw * h / w)
    return (box[2] - box[0]) <= 0.92 * win_w and (box[3] - box[1]) <= 0.96 * win_h


def _letterbox(src: Image.Image, mask: np.ndarray | None, box: tuple[float, float, float, float] | None,
               w: int, h: int) -> tuple[Image.Image, np.ndarray | None, tuple[float, float, float, float] | None]:
    """The whole photo fitted to the clip's aspect over a blurred, darkened cover-fill of itself;
    the mask and the subject box move with it."""
    sw, sh = src.size
    arr = np.asarray(src)
    if box is not None:  # crop the sides down to the subject (at most square): a bigger photo
        aspect = max(min(1.0, sw / sh), min(sw / sh, (box[2] - box[0]) * 1.12 / sh))
        cw = int(round(min(sw, sh * aspect)))
        cx = (box[0] + box[2]) / 2
        x0c = int(round(min(max(0.0, cx - cw / 2), sw - cw)))
        if cw < sw:
            arr = np.ascontiguousarray(arr[:, x0c:x0c + cw])
            if mask is not None:
                mask = np.ascontiguousarray(mask[:, x0c:x0c + cw])
            box = (box[0] - x0c, box[1], box[2] - x0c, box[3])
            sw = cw
    k = min(w / sw, h / sh)
    fw, fh = max(2, int(round(sw * k))), max(2, int(round(sh * k)))
    cover_k = max(w / sw, h / sh)
    cw, ch = int(round(sw * cover_k)), int(round(sh * cover_k))
    small = cv2.resize(arr, (max(2, cw // 8), max(2, ch // 8)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), 4)
    cover = cv2.resize(small, (cw, ch), interpolation=cv2.INTER_LINEAR)
    ox, oy = (cw - w) // 2, (ch - h) // 2
    canvas = cv2.addWeighted(np.ascontiguousarray(cover[oy:oy + h, ox:ox + w]), 0.6, np.zeros((h, w, 3), np.uint8),
                             0.4, 0.0)
    x0, y0 = (w - fw) // 2, int(round((h - fh) * 0.42))
    canvas[y0:y0 + fh, x0:x0 + fw] = cv2.resize(arr, (fw, fh), interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_CUBIC)
    new_mask = None
    if mask is not None:
        new_mask = np.zeros((h, w), np.uint8)
        new_mask[y0:y0 + fh, x0:x0 + fw] = cv2.resize(mask, (fw, fh), interpolation=cv2.INTER_NEAREST)
    new_box = None
    if box is not None:
        new_box = (x0 + box[0] * k, y0 + box[1] * k, x0 + box[2] * k, y0 + box[3] * k)
    return Image.fromarray(canvas), new_mask, new_box


def _frame(arr: np.ndarray, w: int, h: int, box: tuple[float, float, float, float] | None, src: Image.Image,
           window: tuple[int, int, int, int] | None = None, interp: int | None = None
           ) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """`arr` cropped to the clip's aspect around the subject (`studio.render.crop.crop_window`) and
    resized to (w, h); returns the window so a mask can follow exactly the same crop."""
    from studio.render.crop import crop_window, saliency_centre

    sw, sh = src.size
    if window is None:
        centre = None
        if box is None and abs(sw / sh - w / h) > 0.01:
            centre = saliency_centre(src)
        window = crop_window(sw, sh, w, h, box, centre)
    x0, y0, x1, y1 = window
    piece = np.ascontiguousarray(arr[y0:y1, x0:x1])
    if piece.shape[1] != w or piece.shape[0] != h:
        if interp is None:
            interp = cv2.INTER_AREA if piece.shape[1] > w else cv2.INTER_CUBIC
        piece = cv2.resize(piece, (w, h), interpolation=interp)
    return np.ascontiguousarray(piece), window


def _split_layers(base: np.ndarray, mask: np.ndarray
                  ) -> tuple[np.ndarray, tuple[tuple[np.ndarray, np.ndarray], int, int]]:
    """(background with the subject inpainted away, subject ((rgb, alpha) crops, x0, y0))."""
    h, w = mask.shape
    binary = (mask > 127).astype(np.uint8) * 255
    # the hole: the subject grown a little so no edge pixels of it remain in the background
    grow = max(3, int(0.012 * max(w, h)))
    hole = cv2.dilate(binary, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    # inpaint at a small size (fast; the hole is mostly covered by the subject), then upscale
    k = min(1.0, 360.0 / max(w, h))
    sw, sh = max(8, int(w * k)), max(8, int(h * k))
    small = cv2.resize(base, (sw, sh), interpolation=cv2.INTER_AREA)
    small_hole = (cv2.resize(hole, (sw, sh), interpolation=cv2.INTER_LINEAR) > 0).astype(np.uint8) * 255
    filled = cv2.inpaint(small, small_hole, 5, cv2.INPAINT_TELEA)
    filled = cv2.GaussianBlur(filled, (0, 0), 1.5)
    up = cv2.resize(filled, (w, h), interpolation=cv2.INTER_CUBIC)
    soft = cv2.GaussianBlur(hole, (0, 0), grow / 2).astype(np.float32) / 255.0
    background = cv2.blendLinear(up, base, soft, 1.0 - soft)
    # the subject: a feathered alpha, cropped to its box (plus a margin for the feather)
    alpha = cv2.GaussianBlur(binary, (0, 0), 1.2)
    x, y, bw, bh = cv2.boundingRect(binary)
    pad = 4
    x0, y0 = max(0, x - pad), max(0, y - pad)
    x1, y1 = min(w, x + bw + pad), min(h, y + bh + pad)
    subject = ((np.ascontiguousarray(base[y0:y1, x0:x1]), np.ascontiguousarray(alpha[y0:y1, x0:x1])), x0, y0)
    return background, subject


# --- text: transparent layers, rendered once, composited over every frame ----------------------
# The headline and its plate are on from the first frame (the thumbnail on Reels and Shorts); the
# rest comes in after it.
_SCHEDULE = {  # role -> (animation, start seconds)
    "plate": ("none", 0.0),
    "headline": ("none", 0.0),
    "sub_copy": ("fade", 0.35),
    "badge": ("pop", 0.7),
    "cta": ("pop", 1.05),
    "static": ("none", 0.0),
}


def _text_layers(base: np.ndarray, spec: "OverlaySpec", w: int, h: int, fonts: "Fonts") -> list[_Layer]:
    """The ad's overlay as transparent layers (colour + alpha, no pixel of the photo inside): the
    plate alone, then the words, badge, call to action, logo and label, each over the plate."""
    import dataclasses

    from studio.render.overlay import overlay_rgba

    image = Image.fromarray(base)
    sns = _SnsBox(w, h)
    cf, af, res = overlay_rgba(image, spec, sns, fonts)
    if not (af > 0.004).any():
        return []
    bare = dataclasses.replace(spec, headline="", sub_copy="", cta="", badge_text="", logo=None, ai_label=False)
    cp, ap, _ = overlay_rgba(image, bare, sns, fonts)
    # the words over the plate: full = text OVER plate  ->  text = (full - plate (1 - At)) / At
    pf, pp = cf * af[..., None], cp * ap[..., None]
    den = 1.0 - ap
    solid = den < 0.02
    at = np.where(solid, (np.abs(cf - cp).max(axis=2) > 2).astype(np.float32),
                  np.clip((af - ap) / np.maximum(den, 0.02), 0.0, 1.0))
    pt = np.where(solid[..., None], cf * at[..., None], pf - pp * (1.0 - at[..., None]))
    ct = np.clip(np.where(at[..., None] > 1e-3, pt / np.maximum(at[..., None], 1e-3), 0.0), 0, 255)
    at[at < 0.004] = 0.0
    changed = (at > 0).astype(np.uint8) * 255
    layers: list[_Layer] = []
    if (ap > 0.004).any():
        plate = _crop_rgba(cp, ap, ap > 0.004)
        plate.anim, plate.start = _SCHEDULE["plate"]
        plate.flat = _flat_rows(plate)
        layers.append(plate)
    if not changed.any():
        return layers
    n_labels, labels = cv2.connectedComponents(changed, connectivity=8)
    claimed = np.zeros((h, w), bool)
    parts: dict[str, np.ndarray] = {}

    def component_at(box: tuple[int, int, int, int]) -> np.ndarray:
        x0, y0, x1, y1 = box
        ids = np.unique(labels[y0:y1, x0:x1])
        ids = ids[ids > 0]
        return np.isin(labels, ids) if len(ids) else np.zeros((h, w), bool)

    for block in res.blocks:  # badge and the AI label: the whole disc / pill with its text
        if block.role in ("badge", "ai_label"):
            key = "badge" if block.role == "badge" else "static"
            region = component_at(block.ink_box) & ~claimed
            parts[key] = parts.get(key, np.zeros((h, w), bool)) | region
            claimed |= region
    for block in res.blocks:
        if block.role not in ("headline", "sub_copy", "cta"):
            continue
        # everything this block drew (words, pill, shadow, outline) lies in its ink box
        x0, y0, x1, y1 = block.ink_box
        rect = np.zeros((h, w), bool)
        rect[max(0, y0 - 1):y1 + 1, max(0, x0 - 1):x1 + 1] = True
        region = rect & (changed > 0) & ~claimed
        parts[block.role] = region
        claimed |= region
    rest = (changed > 0) & ~claimed  # the logo and anything else: on from the first frame
    if rest.any():
        parts["static"] = parts.get("static", np.zeros((h, w), bool)) | rest
    for role in ("headline", "sub_copy", "badge", "cta", "static"):
        region = parts.get(role)
        if region is None or not region.any():
            continue
        layer = _crop_rgba(ct, at, region)
        layer.anim, layer.start = _SCHEDULE[role]
        layers.append(layer)
    return layers


def _crop_rgba(colour: np.ndarray, alpha: np.ndarray, region: np.ndarray) -> _Layer:
    """A transparent layer over the bounding box of `region`: colour uint8 and alpha float32 0..1
    (zero outside the region)."""
    ys, xs = np.nonzero(region)
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1
    rgb = np.ascontiguousarray(np.clip(colour[y0:y1, x0:x1] + 0.5, 0, 255).astype(np.uint8))
    a = np.where(region[y0:y1, x0:x1], alpha[y0:y1, x0:x1], 0.0).astype(np.float32)
    return _Layer(rgb=rgb, alpha=np.ascontiguousarray(a), x0=x0, y0=y0)


def _flat_rows(layer: _Layer) -> tuple[int, int, float] | None:
    """The longest run of rows where the layer is one colour at one opacity across its whole width
    (a plate's core): blended with one `addWeighted` instead of a per-pixel blend."""
    a, rgb = layer.alpha, layer.rgb
    a0 = a[:, :1]
    c0 = rgb[:, :1].astype(np.int16)
    same = (np.abs(a - a0) < 1e-4).all(axis=1) & (np.abs(rgb.astype(np.int16) - c0) <= 0).all(axis=(1, 2))
    same &= a[:, 0] > 0.004
    best, run, start = (0, 0), 0, 0
    vals = a[:, 0]
    for i, ok in enumerate(same):
        if ok and run and abs(vals[i] - vals[i - 1]) < 1e-4 and (rgb[i, 0] == rgb[i - 1, 0]).all():
            run += 1
        elif ok:
            run, start = 1, i
        else:
            run = 0
        if run > best[1] - best[0]:
            best = (start, start + run)
    if best[1] - best[0] < 8:
        return None
    return best[0], best[1], float(vals[best[0]])


def _over(frame: np.ndarray, rgb: np.ndarray, alpha: np.ndarray, x0: int, y0: int, opacity: float = 1.0) -> None:
    """frame = frame (1 - a) + rgb a with a = alpha (float 0..1) * opacity, clipped to the frame, in place."""
    part = _overlap(frame, alpha, x0, y0)
    if part is None or opacity <= 0.0:
        return
    fy, fx, sy, sx = part
    a = alpha[sy, sx]
    src = np.ascontiguousarray(rgb[sy, sx])
    if opacity < 1.0:
        a = a * np.float32(opacity)
    a = np.ascontiguousarray(a, dtype=np.float32)
    roi = frame[fy, fx]
    roi[...] = cv2.blendLinear(np.ascontiguousarray(roi), src, 1.0 - a, a)


def _draw_layer(frame: np.ndarray, layer: _Layer, t: float) -> None:
    if layer.anim == "none" and layer.flat is not None:
        r0, r1, a0 = layer.flat
        h, w = frame.shape[:2]
        lh, lw = layer.alpha.shape
        x0, x1 = max(0, layer.x0), min(w, layer.x0 + lw)
        y0, y1 = max(0, layer.y0 + r0), min(h, layer.y0 + r1)
        if x1 > x0 and y1 > y0:
            roi = frame[y0:y1, x0:x1]
            solid = np.empty_like(roi)
            solid[...] = layer.rgb[r0, 0]
            roi[...] = cv2.addWeighted(roi, 1.0 - a0, solid, a0, 0.0)
        _over(frame, layer.rgb[:r0], layer.alpha[:r0], layer.x0, layer.y0)
        _over(frame, layer.rgb[r1:], layer.alpha[r1:], layer.x0, layer.y0 + r1)
        return
    if layer.anim == "none":
        _over(frame, layer.rgb, layer.alpha, layer.x0, layer.y0)
        return
    u = (t - layer.start) / layer.length
    if u <= 0:
        return
    if u >= 1:
        _over(frame, layer.rgb, layer.alpha, layer.x0, layer.y0)
        return
    e = _ease(u)
    if layer.anim == "fade":
        _over(frame, layer.rgb, layer.alpha, layer.x0, layer.y0, e)
    elif layer.anim == "slide":
        dy = int(round((1.0 - e) * 0.04 * frame.shape[0]))
        _over(frame, layer.rgb, layer.alpha, layer.x0, layer.y0 + dy, e)
    else:  # pop: grow from 40 % with a small overshoot, fading in
        s = 0.4 + 0.6 * e + 0.12 * math.sin(math.pi * u)
        lh, lw = layer.alpha.shape
        nw, nh = max(1, int(lw * s)), max(1, int(lh * s))
        rgb = cv2.resize(layer.rgb, (nw, nh), interpolation=cv2.INTER_LINEAR)
        alpha = cv2.resize(layer.alpha, (nw, nh), interpolation=cv2.INTER_LINEAR)
        _over(frame, rgb, alpha, layer.x0 + (lw - nw) // 2, layer.y0 + (lh - nh) // 2, min(1.0, 2 * e))


def create_engine(settings: "Settings | None" = None) -> MotionEngine:
    return MotionEngine()
