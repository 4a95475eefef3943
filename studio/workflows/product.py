"""Product ad: keep the product exactly (cut out), regenerate the scene around it.

The shared skeleton (`common.run_ad`) does the rest; this module supplies what is kept: the
cut-out (uploaded alpha, the owner's box, or automatic), framed with room around the product.
"""

from __future__ import annotations

import logging

import numpy as np
from PIL import Image

from studio.engines.base import Engine
from studio.errors import InputError
from studio.runtime.jobs import CancelToken, ProgressFn
from studio.schema import AdResult, Box, ProductRequest
from studio.services import Services
from studio.workflows import common

log = logging.getLogger(__name__)

MIN_PRODUCT_COVERAGE = 0.005
# where a cut-out product stands on the ad (fractions of the frame: centred, its base on the
# lower-third line, the top fifth left for the headline) and how far it may be enlarged
PRODUCT_TARGET = (0.14, 0.30, 0.86, 0.78)
PRODUCT_MAX_UPSCALE = 3.0
CARD_MAX_UPSCALE = 2.5
CARD_ROOM = 0.2          # a card of the owner's box shows this much of the photo around it
CARD_AREA_ASPECT = (0.82 * 1080) / (0.7 * 1350)


def product_matte(services: Services, image: Image.Image, box: Box | None, alpha: np.ndarray | None,
                  strokes: np.ndarray | None = None):
    """The product's mask on the upload (255 = product).

    A box the owner drew is always honoured: when the cut-out inside it comes back empty, what
    the box holds is kept as it is (never "draw a box" to someone who drew one). Only a photo
    with neither box, brush nor transparency can be refused."""
    from studio.vision import masks
    from studio.vision.matting import check_strokes, strokes_box

    strokes = check_strokes(strokes, image.size)
    matte = services.vision.cutout(image, box=box, alpha=alpha, subject="product", strokes=strokes)
    if matte.backend == "grabcut" and strokes is None:   # a colour model's cut: drop foreign protrusions
        from studio.vision.matting import MatteResult, trim_protrusions

        matte = MatteResult(trim_protrusions(image, matte.mask), matte.backend, matte.licence,
                            matte.commercial_use, note=matte.note)
    stats = masks.mask_stats(masks.binarize(matte.mask))
    if stats.bbox is None or stats.coverage < MIN_PRODUCT_COVERAGE:
        drawn = box if box is not None else strokes_box(strokes)
        if drawn is None:
            raise InputError("workflow.no_product")
        from studio.vision.matting import MatteResult, apply_strokes

        W, H = image.size
        x0, y0 = max(0, min(drawn[0], drawn[2])), max(0, min(drawn[1], drawn[3]))
        x1, y1 = min(W, max(drawn[0], drawn[2])), min(H, max(drawn[1], drawn[3]))
        if x1 - x0 < 2 or y1 - y0 < 2:
            raise InputError("vision.matting.bad_box", box=str(drawn))
        kept = apply_strokes(masks.box_mask(image.size, (x0, y0, x1, y1)), strokes)
        matte = MatteResult(kept, "box", matte.licence, matte.commercial_use, note="")
        stats = masks.mask_stats(masks.binarize(kept))
    return matte, stats.bbox


def plan(req: ProductRequest, services: Services, engine: Engine, out_size: tuple[int, int]) -> common.Plan:
    opts = req.options.clean()
    strokes = getattr(req, "strokes", None)
    matte, bbox = product_matte(services, req.image, req.product_box, req.alpha, strokes)
    notices = [common.cutout_notice(matte.backend)]
    if strokes is not None and (np.asarray(strokes) > 0).any():
        notices.append(common.Notice("workflow.cutout.brushed"))
    settings = {"product_box": list(req.product_box) if req.product_box else None, "cutout": matte.backend,
                "shadow": req.shadow, "reflection": req.reflection,
                "extras": {"reflection": req.reflection, "shadow": req.shadow}}
    # a thin feather inside the product's edge; the product's body stays exact
    quality = cutout_quality(services, req.image, matte, req.product_box, strokes)
    matte, bbox, quality = closer_cut(services, req.image, req.product_box, matte, bbox, quality, strokes)
    part = common.KeepPart(matte.mask, edge_px=max(0.5, min(opts.mask_feather, 3)))
    if engine.caps.needs_weights or engine.caps.changes_outfit:   # a generator: framed as before
        return common.Plan(subject="product", parts=[part], focus=bbox, margin=0.3, cutout=matte,
                           notices=notices, settings=settings, quality=quality)
    # a compositor (Lite): the product placed by design, cards of the owner's box (issue 18p)
    anchors = common.touching_edges(main_piece(matte.mask)) if matte.backend != "box" else ()
    return common.Plan(subject="product", parts=[part], focus=bbox, margin=0.3, cutout=matte,
                       notices=notices, settings=settings, quality=quality, anchors=anchors,
                       target=PRODUCT_TARGET, max_upscale=PRODUCT_MAX_UPSCALE, card_upscale=CARD_MAX_UPSCALE,
                       card_window=card_window(req.product_box, req.image.size))


def main_piece(mask: np.ndarray, share: float = 0.3) -> np.ndarray:
    """The pieces of a cut-out that hold at least `share` of it (one product: all of it; a dozen
    sweets: none, so the set is centred rather than pinned to the edge one sweet runs off)."""
    import cv2

    solid = (mask >= 128).astype(np.uint8)
    n, lab, st, _ = cv2.connectedComponentsWithStats(solid, connectivity=8)
    if n <= 2:
        return mask
    big = np.flatnonzero(st[1:, cv2.CC_STAT_AREA] >= share * solid.sum()) + 1
    return np.where(np.isin(lab, big), mask, 0).astype(np.uint8)


def card_window(box: Box | None, size: tuple[int, int], room: float = CARD_ROOM,
                aspect: float = CARD_AREA_ASPECT, stretch: float = 1.35) -> Box | None:
    """What a card shows when the owner drew a box: the box with `room` of its size around it,
    widened (or heightened) towards the card's shape (within `stretch`) so that a thin product is
    not a sliver, kept inside the photo. None without a box (the card shows the photo)."""
    if box is None:
        return None
    W, H = size
    x0, y0, x1, y1 = (float(v) for v in box)
    x0, x1 = sorted((max(0.0, min(W, x0)), max(0.0, min(W, x1))))
    y0, y1 = sorted((max(0.0, min(H, y0)), max(0.0, min(H, y1))))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    bw, bh = x1 - x0, y1 - y0
    cw, ch = bw * (1 + 2 * room), bh * (1 + 2 * room)
    if cw / ch < aspect / stretch:
        cw = ch * aspect / stretch
    elif cw / ch > aspect * stretch:
        ch = cw / (aspect * stretch)
    cw, ch = min(cw, float(W)), min(ch, float(H))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    wx0 = min(max(cx - cw / 2, 0.0), W - cw)
    wy0 = min(max(cy - ch / 2, 0.0), H - ch)
    return (int(round(wx0)), int(round(wy0)), int(round(wx0 + cw)), int(round(wy0 + ch)))


SMALL_BOX = 0.25   # a box under this share of the photo gets a second, finer cut in a crop around it


def closer_cut(services: Services, image: Image.Image, box: Box | None, matte, bbox, quality,
               strokes: np.ndarray | None = None):
    """When the whole-photo GrabCut of a SMALL box is not clean enough, cut again in a crop around
    the box (a finer scale, the background right around it: a lighter's grey cap on a grey table)
    and keep whichever cut scores better, with its own stability check. Returns (matte, bbox,
    quality), unchanged when nothing better was found."""
    from studio.vision import masks
    from studio.vision.confidence import assess_product
    from studio.vision.matting import MatteResult, check_strokes, grabcut_in_crop, trim_protrusions

    if (box is None or quality is None or quality.ok or matte.backend != "grabcut"
            or check_strokes(strokes, image.size) is not None):
        return matte, bbox, quality
    W, H = image.size
    if (box[2] - box[0]) * (box[3] - box[1]) > SMALL_BOX * W * H:
        return matte, bbox, quality
    rgb = np.asarray(image.convert("RGB"))
    alt = trim_protrusions(rgb, grabcut_in_crop(rgb, box))
    stats = masks.mask_stats(masks.binarize(alt))
    if stats.bbox is None or stats.coverage < MIN_PRODUCT_COVERAGE:
        return matte, bbox, quality
    q = assess_product(rgb, alt, box=box, other=grabcut_in_crop(rgb, grown(box, image.size)))
    log.debug("closer cut: %.2f (whole photo %.2f)", q.score, quality.score)
    if q.score <= quality.score:
        return matte, bbox, quality
    return MatteResult(alt, matte.backend, matte.licence, matte.commercial_use, note=matte.note), stats.bbox, q


def grown(box: Box | None, size: tuple[int, int], k: float = 0.05) -> Box:
    """The owner's box grown by `k` of its OWN size on each side (a small product's box is not
    blown up by a share of the whole photo), or the photo less a tenth on each side."""
    W, H = size
    if box is None:
        return (int(0.1 * W), int(0.1 * H), int(0.9 * W), int(0.9 * H))
    dx, dy = max(2, int(k * (box[2] - box[0]))), max(2, int(k * (box[3] - box[1])))
    return (max(0, box[0] - dx), max(0, box[1] - dy), min(W, box[2] + dx), min(H, box[3] + dy))


def cutout_quality(services: Services, image: Image.Image, matte, box: Box | None,
                   strokes: np.ndarray | None = None):
    """The cut-out's confidence; an uploaded transparency, a cut-out the owner touched up with the
    brush, or the box kept as drawn are the owner's own (no score: the layout honours them)."""
    from studio.vision.confidence import assess_product
    from studio.vision.matting import check_strokes

    if matte.backend in ("alpha", "box") or check_strokes(strokes, image.size) is not None:
        return None
    rgb = np.asarray(image.convert("RGB"))
    other = None
    if matte.backend == "grabcut":  # a colour-model cut-out: check it holds from another start
        other = services.vision.cutout(image, box=grown(box, image.size), subject="product").mask
    return assess_product(rgb, matte.mask, box=box, other=other)


def run(req: ProductRequest, services: Services, progress: ProgressFn | None = None,
        cancel: CancelToken | None = None) -> AdResult:
    return common.run_ad("product", plan, req, services, progress, cancel)
