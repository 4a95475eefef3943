"""How sure a cut-out is: measurable signals, one score, and the reasons when it is low.

Signals (each 0..1, 1 = good), measured on a copy no larger than `WORK_SIDE` pixels:

- ``edges``: the mask's outline lies on edges of the photo (mean gradient on the outline against
  the photo's typical gradient). A cut-out that follows nothing in the photo is a guess.
- ``border``: share of the outline that runs along the photo's border or the owner's box (a
  leak into the surroundings); edges the subject is allowed to run off (a body's bottom) excepted.
- ``background``: smooth slabs inside the mask whose colours belong to the background (sky,
  a wall, a table kept with the product).
- ``box``: the cut-out stops well short of one side of the owner's box (part left out).
- ``fragments``: the subject breaks into several large pieces.
- ``size``: the subject is a speck, or fills (almost) the whole photo (nothing was cut).
- ``clutter``: texture right outside the outline against the texture on it: on a busy
  background a colour-model cut-out is a guess.
- ``stability`` (when a second cut-out from a slightly different start is given): the two agree.
- ``person`` (with a face): the mask holds the face, and the body under it is as wide as a
  body should be relative to the face, not a sliver and not the whole room.

`score` is the lowest signal; `ok` when it reaches `THRESHOLD`. `reasons` name the weak signals
(message keys ``lite.reason.<name>``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import cv2
import numpy as np

from studio.vision import masks

log = logging.getLogger(__name__)

WORK_SIDE = 320
THRESHOLD = 0.5
EDGE_BAD, EDGE_GOOD = 0.45, 0.7
CLUTTER_BAD, CLUTTER_GOOD = 0.36, 0.28
REASON_ORDER = ("group", "models", "person", "box", "background", "stability", "clutter", "border", "fragments", "edges", "size")


@dataclass
class CutoutQuality:
    score: float
    signals: dict[str, float] = field(default_factory=dict)
    threshold: float = THRESHOLD
    raw: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.score >= self.threshold

    @property
    def reasons(self) -> list[str]:
        weak = [k for k, v in self.signals.items() if v < self.threshold]
        return sorted(weak, key=lambda k: REASON_ORDER.index(k) if k in REASON_ORDER else 99)


def _ramp(x: float, bad: float, good: float) -> float:
    """0 at `bad`, 1 at `good`, linear in between (either direction)."""
    if good == bad:
        return float(x >= good)
    return float(np.clip((x - bad) / (good - bad), 0.0, 1.0))


def assess(rgb: np.ndarray, mask: np.ndarray, *, box: tuple[int, int, int, int] | None = None,
           allowed_edges: tuple[str, ...] = (), face_box: tuple[int, int, int, int] | None = None,
           other: np.ndarray | None = None, learned: bool = False) -> CutoutQuality:
    """Score a cut-out `mask` (255 = subject) of the photo `rgb` (H x W x 3 uint8). `other`: the
    same cut-out made from a slightly different start (a grown box); disagreement = unsure.

    `learned`: the mask comes from a learned segmentation model (selfie/pose, rembg), not from a
    colour model: the signals that measure a colour model's guesswork (clutter around the subject,
    background-coloured slabs inside, the body's expected width) do not apply and are not scored."""
    h, w = mask.shape[:2]
    s = min(1.0, WORK_SIDE / float(max(h, w)))
    sw, sh = max(8, int(round(w * s))), max(8, int(round(h * s)))
    img = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA)
    m = cv2.resize(mask, (sw, sh), interpolation=cv2.INTER_AREA) >= 128
    sig: dict[str, float] = {}
    raw: dict[str, float] = {}
    cov = float(m.mean())
    sig["size"] = min(_ramp(cov, 0.002, 0.01), _ramp(cov, 0.9, 0.75))
    if not m.any():
        return CutoutQuality(0.0, {"size": 0.0})
    mu8 = m.astype(np.uint8)

    # outline
    outline = cv2.morphologyEx(mu8, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    inner = outline & m
    # border / box contact (outline pixels on the photo's or the box's edge)
    edge_band = np.zeros((sh, sw), bool)
    b = 2
    sides = {"top": (slice(0, b), slice(None)), "bottom": (slice(sh - b, sh), slice(None)),
             "left": (slice(None), slice(0, b)), "right": (slice(None), slice(sw - b, sw))}
    for name, sl in sides.items():
        if name not in allowed_edges:
            edge_band[sl] = True
    if box is not None:
        bx0, by0, bx1, by1 = (int(round(v * s)) for v in box)
        ring = np.zeros((sh, sw), np.uint8)
        cv2.rectangle(ring, (bx0, by0), (bx1 - 1, by1 - 1), 1, thickness=2 * b + 1)
        for name, sl in (("top", (slice(max(0, by0 - b), by0 + b + 1), slice(None))),
                         ("bottom", (slice(max(0, by1 - b - 1), by1 + b), slice(None))),
                         ("left", (slice(None), slice(max(0, bx0 - b), bx0 + b + 1))),
                         ("right", (slice(None), slice(max(0, bx1 - b - 1), bx1 + b)))):
            if name in allowed_edges:
                ring[sl] = 0
        edge_band |= ring > 0
    if box is not None:
        # the owner's box holds the whole subject: a cut-out that stops well short of one side
        # of it has left part of the subject out (a cap, a pot)
        ys, xs = np.nonzero(m)
        bx0, by0, bx1, by1 = (v * s for v in box)
        bw, bh = max(bx1 - bx0, 1.0), max(by1 - by0, 1.0)
        gaps = [(xs.min() - bx0) / bw, (ys.min() - by0) / bh, (bx1 - xs.max() - 1) / bw, (by1 - ys.max() - 1) / bh]
        # measured against the snuggest side: a loose box drawn evenly around a small product
        # (a jar on a big table) leaves wide gaps on every side and is not a missed part
        worst = float(max(gaps) - max(0.0, min(gaps)))
        sig["box"] = _ramp(worst, 0.16, 0.1)
        raw["box"] = worst
    n_inner = max(int(inner.sum()), 1)
    contact = float((inner & edge_band).sum()) / n_inner
    sig["border"] = _ramp(contact, 0.12, 0.04)
    raw["border"] = contact

    # edge agreement: gradient on the outline (excluding the border contact) vs the photo's
    grey = cv2.GaussianBlur(cv2.cvtColor(img, cv2.COLOR_RGB2LAB), (0, 0), 1.0).astype(np.float32)
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    mag = np.sqrt((gx ** 2 + gy ** 2).sum(axis=2))
    free = outline & ~cv2.dilate(edge_band.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    if free.sum() >= 8:
        mag_max = cv2.dilate(mag, np.ones((3, 3), np.uint8))      # an outline 1 px off still counts
        strong = np.percentile(mag, 75) + 1e-3
        hits = float((mag_max[free] >= strong).mean())
        sig["edges"] = _ramp(hits, EDGE_BAD, EDGE_GOOD)
        raw["edges"] = hits
    else:
        sig["edges"] = 1.0

    # clutter right around the subject: a busy background makes a colour-model cut-out a guess
    r = max(3, int(0.04 * max(sw, sh)))
    ring = cv2.dilate(mu8, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))).astype(bool)
    ring &= ~cv2.dilate(mu8, np.ones((5, 5), np.uint8)).astype(bool)
    if ring.sum() >= 20 and free.sum() >= 8 and not learned:
        clutter = float(mag[ring].mean()) / (float(mag[free].mean()) + 1e-3)
        sig["clutter"] = _ramp(clutter, CLUTTER_BAD, CLUTTER_GOOD)
        raw["clutter"] = clutter

    # background slabs: smooth regions inside the mask whose colour is common outside and rare inside
    lab = cv2.cvtColor(img, cv2.COLOR_RGB2LAB)
    q = (lab[..., 0] // 32).astype(np.int32) * 64 + (lab[..., 1] // 32).astype(np.int32) * 8 + (lab[..., 2] // 32)
    outside = ~cv2.dilate(mu8, np.ones((5, 5), np.uint8)).astype(bool)
    inside_core = cv2.erode(mu8, np.ones((5, 5), np.uint8)).astype(bool)
    if outside.sum() > 50 and inside_core.sum() > 50 and not learned:
        h_out = np.bincount(q[outside], minlength=512).astype(np.float32) / outside.sum()
        h_in = np.bincount(q[inside_core], minlength=512).astype(np.float32) / inside_core.sum()
        bgl = (h_out[q] > 2.0 * h_in[q]) & inside_core
        lstd = np.sqrt(np.maximum(cv2.blur(grey[..., 0] ** 2, (7, 7)) - cv2.blur(grey[..., 0], (7, 7)) ** 2, 0))
        slab = (bgl & (lstd < 6.0)).astype(np.uint8)
        slab = cv2.morphologyEx(slab, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        n, lab_cc, st, _ = cv2.connectedComponentsWithStats(slab, connectivity=8)
        big = st[1:, cv2.CC_STAT_AREA] >= 0.01 * m.sum() if n > 1 else np.zeros(0, bool)
        share = float(st[1:, cv2.CC_STAT_AREA][big].sum()) / float(m.sum()) if n > 1 else 0.0
        sig["background"] = _ramp(share, 0.12, 0.04)
        raw["background"] = share
    else:
        sig["background"] = 1.0

    if other is not None:
        o = cv2.resize(other, (sw, sh), interpolation=cv2.INTER_AREA) >= 128
        agree = float((m & o).sum()) / float(max((m | o).sum(), 1))
        sig["stability"] = _ramp(agree, 0.85, 0.95)
        raw["stability"] = agree

    # fragments
    n, _, st, _ = cv2.connectedComponentsWithStats(mu8, connectivity=8)
    areas = np.sort(st[1:, cv2.CC_STAT_AREA])[::-1]
    big = int((areas >= 0.08 * areas[0]).sum()) if areas.size else 0
    sig["fragments"] = 1.0 if big <= 1 else (0.45 if big == 2 else 0.2)

    # person: the mask around the face
    if face_box is not None:
        fx0, fy0, fx1, fy1 = (v * s for v in face_box)
        fw, fh = max(fx1 - fx0, 1.0), max(fy1 - fy0, 1.0)
        cx, cy = int((fx0 + fx1) / 2), int((fy0 + fy1) / 2)
        holds_face = m[min(sh - 1, max(0, cy)), min(sw - 1, max(0, cx))]
        row = int(min(sh - 1, fy1 + 1.5 * fh))
        width = float(m[row].sum()) / fw if row < sh else 2.0
        above = float(m[: max(0, int(fy0 - 0.9 * fh))].sum()) / (fw * fh)
        wide = float(m[:, : max(0, int(fx0 - 3.5 * fw))].sum() + m[:, int(fx1 + 3.5 * fw):].sum()) / (fw * fh)
        sig["person"] = 1.0 if holds_face else 0.0
        if not learned:
            sig["person"] = min(sig["person"], _ramp(width, 0.9, 1.5), _ramp(width, 7.0, 5.0),
                                _ramp(above, 0.8, 0.3), _ramp(wide, 3.0, 1.0))
    score = min(sig.values())
    log.debug("cut-out signals %s (raw %s)", sig, raw)
    return CutoutQuality(round(float(score), 4), {k: round(float(v), 4) for k, v in sig.items()},
                         raw={k: round(float(v), 4) for k, v in raw.items()})


# product cut-outs (issue 18p): the owner's box is trusted more, and a product may be several pieces
PIECE_SOLIDITY = 0.85      # a piece this compact (area / convex hull) is an object (a sweet, a jar)
TRUST_EDGES = 0.98         # outline on the photo's edges almost everywhere...
TRUST_STABILITY = 0.95     # ... and the cut holds from another start: a busy surround is no doubt
PRODUCT_EDGE_BAD, PRODUCT_EDGE_GOOD = 0.8, 0.92
BOX_CONTACT_BAD, BOX_CONTACT_GOOD = 0.05, 0.015
LEAK_DE = 12.0             # colours this close across the owner's box line: the background goes on
FOREIGN_BAD, FOREIGN_GOOD = 0.03, 0.01   # share of the cut-out that is a foreign patch on its rim
PRODUCT_THRESHOLD = 0.6    # a product cut-out laid out alone must be clearly good; a marginal one is a card


def assess_product(rgb: np.ndarray, mask: np.ndarray, *, box: tuple[int, int, int, int] | None = None,
                   other: np.ndarray | None = None) -> CutoutQuality:
    """`assess` for a product cut-out, judged from the mask itself:

    - several pieces are fine when every large piece is compact (sweets on a table, a set of
      jars); ragged pieces (slabs of background) still count as fragments;
    - a busy surround ("clutter") is forgiven when the outline follows the photo's edges almost
      everywhere (`TRUST_EDGES`) and a second cut from a slightly different box agrees
      (`TRUST_STABILITY`): the colour model did not guess there.
    Every other signal (border contact, background slabs, the box, size, stability) is kept."""
    q = assess(rgb, mask, box=box, other=other)
    sig, raw = dict(q.signals), dict(q.raw)
    if box is not None and "box" in sig:
        # the gaps between the cut-out and the box, in pixels over the box's SHORTER side: a box
        # drawn with the same room all round a thin product (a lighter) is not a missed part
        worst = box_gap(mask, box)
        raw["box"] = round(worst, 4)
        sig["box"] = _ramp(worst, 0.16, 0.1)
    if "edges" in raw:
        # a product's outline is crisp: the cut must follow the photo's edges almost everywhere
        # (a cut through sky or a wall follows nothing)
        sig["edges"] = min(sig["edges"], _ramp(raw["edges"], PRODUCT_EDGE_BAD, PRODUCT_EDGE_GOOD))
    if box is not None:
        # the cut-out running along the owner's box (where the owner said the product ends) is a
        # leak into the surroundings (a table kept under an orange); running off the PHOTO's edge
        # is a product cut by the frame, judged as before
        touch = box_contact(mask, box, rgb)
        edge = photo_edge_contact(mask)
        raw["box_contact"], raw["photo_edge_contact"] = round(touch, 4), round(edge, 4)
        sig["border"] = min(_ramp(edge, 0.12, 0.04), _ramp(touch, BOX_CONTACT_BAD, BOX_CONTACT_GOOD))
    foreign = foreign_rim(rgb, mask)
    raw["foreign_rim"] = round(foreign, 4)
    sig["background"] = min(sig.get("background", 1.0), _ramp(foreign, FOREIGN_BAD, FOREIGN_GOOD))
    if sig.get("fragments", 1.0) < 1.0:
        solid = compact_pieces(mask)
        raw["pieces_solidity"] = round(solid, 4)
        if solid >= PIECE_SOLIDITY:
            sig["fragments"] = 1.0
            if other is not None and sig.get("stability", 1.0) < 1.0:
                # several objects: the second cut may drop a whole object (a sweet) without
                # doubting the others' outlines; judge the outlines of the pieces both hold
                agree = piece_agreement(mask, other)
                raw["stability_pieces"] = round(agree, 4)
                sig["stability"] = max(sig["stability"], _ramp(agree, 0.85, 0.95))
    if (sig.get("clutter", 1.0) < 1.0 and raw.get("edges", 0.0) >= TRUST_EDGES
            and raw.get("stability", 0.0) >= TRUST_STABILITY and sig.get("background", 1.0) >= 1.0):
        sig["clutter"] = 1.0
    sig = {k: round(float(v), 4) + 0.0 for k, v in sig.items()}   # + 0.0: no "-0.00" in the history
    score = min(sig.values()) if sig else 0.0
    return CutoutQuality(round(float(score), 4) + 0.0, sig, max(q.threshold, PRODUCT_THRESHOLD), raw)


def compact_pieces(mask: np.ndarray) -> float:
    """The least compact (area / convex hull area) of the mask's large pieces (those of at least
    8 % of the largest), measured on a copy no larger than `WORK_SIDE`."""
    _, _, m = masks.work_copy(mask, WORK_SIDE)
    n, lab, st, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    if n <= 1:
        return 0.0
    areas = st[1:, cv2.CC_STAT_AREA]
    worst = 1.0
    for i in np.flatnonzero(areas >= 0.08 * areas.max()):
        cs, _ = cv2.findContours((lab == i + 1).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        hull = cv2.contourArea(cv2.convexHull(max(cs, key=cv2.contourArea)))
        worst = min(worst, float(areas[i]) / max(hull, 1.0))
    return worst


def piece_agreement(mask: np.ndarray, other: np.ndarray) -> float:
    """Agreement of two cut-outs over the pieces of `mask` that `other` also holds (at least half
    of the piece): IoU within those pieces' neighbourhood. 0 when `other` holds under half of
    `mask`'s area (then the second cut really disagrees)."""
    _, size, m = masks.work_copy(mask, WORK_SIDE)
    o = cv2.resize(other, size, interpolation=cv2.INTER_AREA) >= 128
    n, lab, st, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    held = np.zeros(m.shape, bool)
    for i in range(1, n):
        piece = lab == i
        if o[piece].mean() >= 0.5:
            held |= piece
    if held.sum() < 0.5 * m.sum():
        return 0.0
    near = cv2.dilate(held.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    a, b = held, o & near
    return float((a & b).sum()) / float(max((a | b).sum(), 1))


def box_gap(mask: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """How far the cut-out stops short of one side of the owner's box more than of its snuggest
    side, in pixels over the box's shorter side (0 = the same room all round)."""
    ys, xs = np.nonzero(mask >= 128)
    if ys.size == 0:
        return 1.0
    bx0, by0, bx1, by1 = box
    short = float(max(1, min(bx1 - bx0, by1 - by0)))
    gaps = [xs.min() - bx0, ys.min() - by0, bx1 - xs.max() - 1, by1 - ys.max() - 1]
    return float(max(gaps) - max(0.0, min(gaps))) / short


def box_contact(mask: np.ndarray, box: tuple[int, int, int, int], rgb: np.ndarray | None = None) -> float:
    """Share of the cut-out's outline that runs along a side of the owner's box (not the photo's
    own edge) where the photo goes on unchanged across the box line: the background continues
    past where the owner said the product ends, so the cut-out kept a slab of it (a leak). A box
    drawn tight against the product's edge (a different colour across the line) is no leak.
    Without `rgb` every contact counts. Measured on a copy no larger than `WORK_SIDE`."""
    s, (sw, sh), m = masks.work_copy(mask, WORK_SIDE)
    inner = masks.inner_outline(m)
    n = int(inner.sum())
    if n == 0:
        return 0.0
    lab = None
    if rgb is not None:
        small = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA)
        lab = cv2.blur(cv2.cvtColor(small, cv2.COLOR_RGB2LAB).astype(np.float32), (3, 3))
    b, edge, step = 2, 3, 3
    bx0, by0, bx1, by1 = (int(round(v * s)) for v in box)
    leak = 0
    # (side is inside the photo, the mask's touching pixels along it, inside / outside samples)
    sides = []
    if bx0 > edge:
        sides.append(("v", bx0, min(sw - 1, bx0 + step), max(0, bx0 - step)))
    if bx1 < sw - edge:
        sides.append(("v", bx1 - 1, max(0, bx1 - 1 - step), min(sw - 1, bx1 - 1 + step)))
    if by0 > edge:
        sides.append(("h", by0, min(sh - 1, by0 + step), max(0, by0 - step)))
    if by1 < sh - edge:
        sides.append(("h", by1 - 1, max(0, by1 - 1 - step), min(sh - 1, by1 - 1 + step)))
    for kind, line, ins, out in sides:
        lo, hi = max(0, line - b), line + b + 1
        touching = (inner[:, lo:hi].any(axis=1) if kind == "v" else inner[lo:hi, :].any(axis=0))
        idx = np.flatnonzero(touching)
        if idx.size == 0:
            continue
        if lab is None:
            leak += idx.size
            continue
        a = lab[idx, ins] if kind == "v" else lab[ins, idx]
        c = lab[idx, out] if kind == "v" else lab[out, idx]
        leak += int((np.sqrt(((a - c) ** 2).sum(axis=1)) < LEAK_DE).sum())
    return float(leak) / n


def photo_edge_contact(mask: np.ndarray) -> float:
    """Share of the cut-out's outline on the photo's own border (within 2 px at `WORK_SIDE`)."""
    _, (sw, sh), m = masks.work_copy(mask, WORK_SIDE)
    inner = masks.inner_outline(m)
    n = int(inner.sum())
    if n == 0:
        return 0.0
    band = np.zeros((sh, sw), bool)
    band[:2, :] = band[-2:, :] = True
    band[:, :2] = band[:, -2:] = True
    return float((inner & band).sum()) / n


def foreign_rim(rgb: np.ndarray, mask: np.ndarray, k: int = 3, work_side: int = 300) -> float:
    """Share of the cut-out made of foreign patches on its rim: the cut-out's colours are grouped
    (k-means, `k` groups); a patch of one group (1-15 % of the cut-out) that lies on the outline
    (at least 30 % of its edge), whose colour is far from the cut-out right next to it and close
    to the photo just outside, is background kept with the product (a wedge of shadow on a toy's
    head). A product's own dark pupil is not on the rim; a sweet among sweets is its own piece."""
    _, (sw, sh), m = masks.work_copy(mask, work_side)
    small = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA)
    area = int(m.sum())
    if area < 100:
        return 0.0
    lab = cv2.cvtColor(cv2.GaussianBlur(small, (3, 3), 0), cv2.COLOR_RGB2LAB).astype(np.float32)
    cv2.setRNGSeed(0)
    _, groups, _ = cv2.kmeans(lab[m > 0], k, None, (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5),
                              3, cv2.KMEANS_PP_CENTERS)
    group_img = np.full((sh, sw), -1, np.int32)
    group_img[m > 0] = groups.ravel()
    k3 = np.ones((3, 3), np.uint8)
    outline = masks.inner_outline(m)
    r = max(3, int(0.05 * np.sqrt(4 * area / np.pi)))
    ring = cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))).astype(bool) & (m == 0)
    square = np.ones((2 * r + 1, 2 * r + 1), np.uint8)
    foreign = 0
    for g in range(k):
        n, cc, st, _ = cv2.connectedComponentsWithStats((group_img == g).astype(np.uint8), connectivity=8)
        for i in range(1, n):
            a = int(st[i, cv2.CC_STAT_AREA])
            if a < 0.01 * area or a > 0.15 * area:
                continue
            patch = cc == i
            edge = cv2.morphologyEx(patch.astype(np.uint8), cv2.MORPH_GRADIENT, k3) > 0
            if float((edge & outline).sum()) / max(1, int((edge & (m > 0)).sum())) < 0.3:
                continue
            near = cv2.dilate(patch.astype(np.uint8), square).astype(bool)
            body, out = near & (m > 0) & ~patch, near & ring
            if body.sum() < 4 or out.sum() < 9:
                continue
            c = lab[patch].mean(axis=0)
            d_body = float(np.linalg.norm(c - lab[body].mean(axis=0)))
            dist = np.sort(np.linalg.norm(lab[out] - c, axis=1))
            d_out = float(dist[max(8, int(0.1 * dist.size))])
            if d_body > 35.0 and d_out < 0.5 * d_body:
                foreign += a
    return foreign / area
