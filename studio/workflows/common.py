"""Steps shared by the person, product and advanced workflows.

Framing: the upload is cropped to the SNS aspect around the subject (or padded when the subject
can't fit, the padding becomes area to generate), then resized to the output size. The engine
works at its own size (about 1 MP in multiples of 16 for FLUX; the output size for Lite); its
images are resized to the output size and the owner's kept pixels are pasted back from the framed
upload, so inside the keep mask the output equals the framed upload exactly.
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np
from PIL import Image

from studio.engines.base import Engine, InpaintJob
from studio.runtime.jobs import CancelToken, ProgressFn, no_progress
from studio.schema import AdRequest, AdResult, Box, GenerationOptions, Notice
from studio.services import Services
from studio.store.history import NewRecord, Record
from studio.workflows.prompting import prompt_for

log = logging.getLogger(__name__)


@dataclass
class Framing:
    image: Image.Image          # the framed upload at output size (RGB)
    pad_mask: np.ndarray        # 255 where the frame had to be padded (nothing of the upload there)
    scale: float                # output px per upload px
    offset: tuple[float, float]  # upload (0,0) lands at this output position
    crop: tuple[float, float, float, float] | None  # the upload box resized to the output (crop case)

    def map_box(self, box: Box) -> Box:
        x0, y0, x1, y1 = box
        ox, oy = self.offset
        return (int(round(x0 * self.scale + ox)), int(round(y0 * self.scale + oy)),
                int(round(x1 * self.scale + ox)), int(round(y1 * self.scale + oy)))

    def map_mask(self, mask: np.ndarray) -> np.ndarray:
        """Carry a mask drawn on the upload into the frame (same transform as the image)."""
        return np.asarray(_apply(Image.fromarray(mask), self, Image.Resampling.BILINEAR, 0))


def _apply(img: Image.Image, f: "Framing | _Geometry", resample: Image.Resampling, fill) -> Image.Image:
    out_size = f.out_size if isinstance(f, _Geometry) else f.image.size
    if f.crop is not None:
        return img.resize(out_size, resample, box=f.crop)
    w, h = img.size
    scaled = img.resize((max(1, round(w * f.scale)), max(1, round(h * f.scale))), resample)
    canvas = Image.new(img.mode, out_size, fill)
    canvas.paste(scaled, (round(f.offset[0]), round(f.offset[1])))
    return canvas


@dataclass
class _Geometry:
    out_size: tuple[int, int]
    scale: float
    offset: tuple[float, float]
    crop: tuple[float, float, float, float] | None


MAX_UPSCALE = 1.5   # the kept subject is never enlarged more than this (soft blow-ups)
PERSON_MAX_UPSCALE = 2.5   # a cut-out person on Lite: sharpened, still reads well on a phone
HARD_MAX_UPSCALE = 3.5     # never more, even for a subject cut by both edges of a small photo
SHARPEN_FROM = 1.6         # enlargements above this get an unsharp mask scaled to the enlargement


def frame_geometry(upload_size: tuple[int, int], size: tuple[int, int], focus: Box | None, *,
                   margin: float = 0.15, anchors: tuple[str, ...] = (),
                   max_upscale: float = MAX_UPSCALE) -> _Geometry:
    """Where the upload lands in the output (no pixels touched; cheap enough for the preview).

    Crop to the output aspect around `focus` (with a margin); when `focus` can't fit, or cropping
    would enlarge the upload more than `max_upscale`, the upload is scaled to fit instead and the
    rest of the frame is padding. `anchors` ("bottom", "left", "right", "top") are edges of the
    upload the subject runs off: in the padded case those edges stay on the frame's edges, so a
    body cut by the photo's bottom edge never floats above a strip of backdrop.
    """
    W, H = upload_size
    out_w, out_h = size
    aspect = out_w / out_h
    crop_w, crop_h = (W, W / aspect) if W / H < aspect else (H * aspect, H)
    fx0, fy0, fx1, fy1 = focus if focus else (0, 0, W, H)
    fx0, fy0, fx1, fy1 = max(0, fx0), max(0, fy0), min(W, fx1), min(H, fy1)
    cx, cy = (fx0 + fx1) / 2, (fy0 + fy1) / 2
    # the margin shrinks (down to none) before the frame resorts to padding
    fits = (fx1 - fx0) <= crop_w + 1e-6 and (fy1 - fy0) <= crop_h + 1e-6
    if fits and out_w / crop_w <= max_upscale + 1e-9:
        x0 = min(max(cx - crop_w / 2, 0.0), W - crop_w)
        y0 = min(max(cy - crop_h / 2, 0.0), H - crop_h)
        scale = out_w / crop_w
        return _Geometry(size, scale, (-x0 * scale, -y0 * scale), (x0, y0, x0 + crop_w, y0 + crop_h))
    # contain the subject box inside the frame, with the margin on its free (not anchored) sides;
    # the rest of the frame is padding
    fw, fh = max(fx1 - fx0, 1.0), max(fy1 - fy0, 1.0)
    if focus:
        need_w = fw * (1 + margin * (("left" not in anchors) + ("right" not in anchors)))
        need_h = fh * (1 + margin * (("top" not in anchors) + ("bottom" not in anchors)))
    else:
        need_w, need_h = float(W), float(H)
    scale = min(out_w / need_w, out_h / need_h, max_upscale)
    # a subject cut by two opposite edges of the photo (a tight portrait: hat at the top, body at
    # the bottom) must meet both edges of the frame, or it floats with a flat cut across it
    if focus and "top" in anchors and "bottom" in anchors:
        scale = max(scale, min(out_h / H, HARD_MAX_UPSCALE))
    if focus and "left" in anchors and "right" in anchors:
        scale = max(scale, min(out_w / W, HARD_MAX_UPSCALE))
    sw, sh = W * scale, H * scale
    ox, oy = out_w / 2 - cx * scale, out_h / 2 - cy * scale
    # an edge the subject runs off stays on the frame's edge: no floating torsos
    if "bottom" in anchors:
        oy = out_h - sh
    elif "top" in anchors:
        oy = 0.0
    if "left" in anchors and "right" not in anchors:
        ox = 0.0
    elif "right" in anchors and "left" not in anchors:
        ox = out_w - sw
    # an anchor never pushes the subject's top (the head) out of the frame: a tall photo anchored
    # at its bottom is taller than the frame, so it slides down until the focus top is inside
    # (found by engineer 18a on a standing full-body photo)
    if focus and fy0 * scale + oy < 0:
        oy = min(-fy0 * scale + margin * fh * scale, 0.0)
    return _Geometry(size, scale, (round(ox), round(oy)), None)




def placed_geometry(upload_size: tuple[int, int], size: tuple[int, int], focus: Box,
                    target: tuple[float, float, float, float], *, max_upscale: float,
                    anchors: tuple[str, ...] = ()) -> _Geometry:
    """A cut-out subject placed by design, not by where it sat in the photo: `focus` (its box on
    the upload) is scaled to fit `target` (fractions x0, y0, x1, y1 of the frame), at most
    `max_upscale`, centred across and standing on the target's bottom. An edge of the upload the
    subject runs off (`anchors`) stays on the frame's edge, so a cut edge never floats."""
    out_w, out_h = size
    tx0, ty0, tx1, ty1 = target[0] * out_w, target[1] * out_h, target[2] * out_w, target[3] * out_h
    if "bottom" in anchors:
        ty1 = float(out_h)
    if "top" in anchors:
        ty0 = 0.0
    if "left" in anchors and "right" not in anchors:
        tx0 = 0.0
    if "right" in anchors and "left" not in anchors:
        tx1 = float(out_w)
    fx0, fy0, fx1, fy1 = focus
    fw, fh = max(fx1 - fx0, 1.0), max(fy1 - fy0, 1.0)
    scale = min((tx1 - tx0) / fw, (ty1 - ty0) / fh, max_upscale)
    ox = (tx0 + tx1) / 2 - (fx0 + fx1) / 2 * scale
    if "left" in anchors and "right" not in anchors:
        ox = -fx0 * scale
    elif "right" in anchors and "left" not in anchors:
        ox = out_w - fx1 * scale
    oy = ty1 - fy1 * scale
    if "top" in anchors and "bottom" not in anchors:
        oy = -fy0 * scale
    return _Geometry(size, scale, (round(ox), round(oy)), None)


def render_framing(image: Image.Image, geo: _Geometry, sharpen: bool = True) -> Framing:
    """The upload laid out by `geo`. `sharpen`: an upload enlarged past `SHARPEN_FROM` gets a
    light unsharp mask scaled with the enlargement (the quality-aware part of an upscale)."""
    framed = _apply(image.convert("RGB"), geo, Image.Resampling.LANCZOS, (0, 0, 0))
    if sharpen and geo.scale > SHARPEN_FROM:
        framed = sharpen_enlarged(framed, geo.scale)
    cover = np.asarray(_apply(Image.new("L", image.size, 255), geo, Image.Resampling.NEAREST, 0))
    pad = np.where(cover > 0, 0, 255).astype(np.uint8)
    arr = np.asarray(framed)
    if pad.any():
        arr = _fill_padding(arr, pad)
    return Framing(Image.fromarray(arr), pad, geo.scale, geo.offset, geo.crop)


def sharpen_enlarged(img: Image.Image, scale: float) -> Image.Image:
    """An unsharp mask sized to the enlargement: LANCZOS keeps edges but spreads them over
    `scale` pixels; a radius of about half that and a gentle amount restore their slope without
    halos (the threshold leaves flat skin and noise alone)."""
    from PIL import ImageFilter

    radius = 0.5 * scale
    amount = int(min(60, 40 * (scale - 1.0)))   # more shows a 3x product's JPEG blocks (engineer 18p)
    return img.filter(ImageFilter.UnsharpMask(radius=radius, percent=amount, threshold=3))


def frame(image: Image.Image, size: tuple[int, int], focus: Box | None, *, margin: float = 0.15,
          anchors: tuple[str, ...] = (), max_upscale: float = MAX_UPSCALE) -> Framing:
    """Crop to the output aspect around `focus` (with a margin); pad when `focus` can't fit."""
    return render_framing(image, frame_geometry(image.size, size, focus, margin=margin, anchors=anchors,
                                                max_upscale=max_upscale))


def cutout_framing(image: Image.Image, size: tuple[int, int], plan: "Plan") -> Framing:
    """The upload framed for a cut-out layout: placed by design when the plan has a `target`
    (products), else cropped around the plan's focus (people)."""
    if plan.target is not None and plan.focus is not None:
        geo = placed_geometry(image.size, size, plan.focus, plan.target, max_upscale=plan.max_upscale,
                              anchors=plan.anchors)
        return render_framing(image, geo, sharpen=True)
    return frame(image, size, plan.focus, margin=plan.margin, anchors=plan.anchors, max_upscale=plan.max_upscale)


def _fill_padding(arr: np.ndarray, pad: np.ndarray) -> np.ndarray:
    """Fill padded pixels with the nearest edge colour, so the generator gets a sane start.
    (Telea inpainting at 1/8 size, upsampled into the padding only: the padding is regenerated
    anyway, and full-size inpainting of a large border costs seconds.)"""
    import cv2

    if pad.mean() >= 200:
        return arr
    h, w = pad.shape
    f = 8
    sw, sh = max(2, w // f), max(2, h // f)
    small = cv2.resize(arr, (sw, sh), interpolation=cv2.INTER_AREA)
    spad = cv2.dilate(cv2.resize(pad, (sw, sh), interpolation=cv2.INTER_NEAREST), np.ones((3, 3), np.uint8))
    big = cv2.resize(cv2.inpaint(small, spad, 3, cv2.INPAINT_TELEA), (w, h), interpolation=cv2.INTER_LINEAR)
    out = arr.copy()
    out[pad > 0] = big[pad > 0]
    return out


def person_matte(services: Services, image: Image.Image, face, include_hair: bool,
                 faces: list | None = None) -> tuple[np.ndarray, str, float | None]:
    """For engines that can't invent clothes: the whole person on the upload (255 = person).

    With the learned models installed (`VisionKit.person_mask`), the person comes from selfie
    segmentation (and BlazePose's body mask for full bodies and touching people); `faces` are the
    other faces in the photo, so a neighbour's body is not taken along. Without them:

    The cut-out runs on the upload (before framing cuts the body at the frame's edges, which
    would teach GrabCut that clothing is background), seeded by a wide box from the face down to
    the bottom edge; the face, a neck bridge and the cut-out are united, vertical gaps (a light
    collar) bridged, and only the piece holding the face is kept, holes filled.

    Returns (mask, backend, agreement): `agreement` is how far the two learned models agree on a
    whole figure (IoU of the selfie and pose masks), None when only one of them ran.
    """
    import cv2

    from studio.vision import masks

    W, H = image.size
    x0, y0, x1, y1 = face.box
    fw, fh = x1 - x0, y1 - y0
    cx = (x0 + x1) / 2
    learned = services.vision.person_mask(image, face, faces)
    if learned is not None and (learned.mask >= 128).sum() > 0:
        return extend_to_bottom(learned.mask, face), learned.backend, learned.agreement
    box = (int(max(0, cx - 2.5 * fw)), int(max(0, y0 - 0.8 * fh)), int(min(W, cx + 2.5 * fw)), H)
    matte = services.vision.cutout(image, box=box, subject="person")
    head = services.vision.face_keep_mask(image.size, face, include_hair=include_hair, include_neck=True)
    person = masks.binarize(masks.union(head, matte.mask))
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (max(3, fw // 8), max(3, int(fh * 0.6))))
    person = cv2.morphologyEx(person, cv2.MORPH_CLOSE, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    n, labels = cv2.connectedComponents(person)
    fcx, fcy = int(min(W - 1, cx)), int(min(H - 1, (y0 + y1) / 2))
    if n > 1 and labels[fcy, fcx] > 0:
        person = np.where(labels == labels[fcy, fcx], 255, 0).astype(np.uint8)
    contours, _ = cv2.findContours(person, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = np.zeros_like(person)
    cv2.drawContours(filled, contours, -1, 255, thickness=cv2.FILLED)
    return extend_to_bottom(filled, face), matte.backend, None


def extend_to_bottom(person: np.ndarray, face, reach: float = 0.14) -> np.ndarray:
    """A torso that stops just short of the photo's bottom edge (GrabCut never labels the
    border rows as subject) is continued straight down to it: the body runs off the photo, so
    it must run off the ad, not float above a strip of backdrop."""
    h = person.shape[0]
    rows = (person >= 128).sum(axis=1)
    filled_rows = np.flatnonzero(rows > 0)
    if filled_rows.size == 0:
        return person
    last = int(filled_rows[-1])
    fh = max(1, face.box[3] - face.box[1])
    if last >= h - 1 or h - 1 - last > max(reach * h, 1.5 * fh) or last < face.box[3]:
        return person
    # the widest recent row near the bottom is the torso's cross-section
    lo = max(int(face.box[3]), last - max(4, int(0.08 * h)))
    ref = lo + int(np.argmax(rows[lo:last + 1]))
    if rows[ref] < 1.5 * max(1, face.box[2] - face.box[0]):
        return person   # a foot or a hand near the edge, not a torso: a column under it would be a post
    out = person.copy()
    out[last + 1:] = np.maximum(out[last + 1:], person[ref][None, :])   # only the gap: rows above stay as cut
    return out


# --------------------------------------------------------------------------------------------
# one skeleton for Person, Product and Advanced
# --------------------------------------------------------------------------------------------
@dataclass
class KeepPart:
    """One piece of what is kept, drawn on the upload (255 = keep).

    `edge_px` > 0: a cut-out; in the frame it is binarised, pulled in by 1 px and feathered by
    `edge_px` output pixels (a thin soft edge, the body exact). 0: a soft mask (a face region)
    carried into the frame as it is.
    """

    mask: np.ndarray
    edge_px: float = 0.0


@dataclass
class Plan:
    """What a workflow supplies to the shared run: its keep mask and how to frame it.

    `keep_for(framing)` is the keep mask the generation uses; `preview()` is the same mask on the
    upload, which the upload preview shows (one computation for both).
    """

    subject: str                          # "person" | "product" | "mixed" (the engine's subject)
    parts: list[KeepPart]
    focus: Box | None                     # upload box to frame around
    margin: float = 0.15
    anchors: tuple[str, ...] = ()         # upload edges the subject runs off
    faces: list = field(default_factory=list)
    face: Any = None
    cutout: Any = None                    # the MatteResult used, when a cut-out was made
    notices: list[Notice] = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    quality: Any = None                   # vision.confidence.CutoutQuality of the cut-out
    soft_alpha: bool = False              # hair/fur stretches of a cut-out's edge get a matted alpha
    soft_boxes: list | None = None        # upload boxes where soft alpha may act (None: the whole edge)
    # products (issue 18p): the cut-out placed by design (fractions of the frame) rather than
    # cropped where it sat, enlarged up to `max_upscale` (sharpened past SHARPEN_FROM); a card
    # may be enlarged up to `card_upscale` and show `card_window` (the owner's box with room).
    # People on Lite: `max_upscale` is PERSON_MAX_UPSCALE (framed around the whole figure)
    target: tuple[float, float, float, float] | None = None
    max_upscale: float = MAX_UPSCALE
    card_upscale: float = MAX_UPSCALE
    card_window: Box | None = None

    def preview(self) -> np.ndarray:
        """The keep mask on the upload (255 = kept)."""
        from studio.vision import masks

        out = self.parts[0].mask
        for p in self.parts[1:]:
            out = masks.union(out, p.mask)
        return np.ascontiguousarray(out, dtype=np.uint8)

    def keep_for(self, framing: Framing) -> np.ndarray:
        """The keep mask at output size for this framing (nothing kept on the padding)."""
        from studio.vision import masks

        out = None
        for p in self.parts:
            m = framing.map_mask(p.mask)
            if p.edge_px > 0 and framing.scale > SHARPEN_FROM:
                # an enlarged cut-out: smooth the outline's stair steps before it is binarised
                import cv2

                m = cv2.GaussianBlur(m, (0, 0), 0.5 * framing.scale)
            if p.edge_px > 0:
                m = masks.feather(masks.erode(masks.binarize(m), 1), p.edge_px)
            out = m if out is None else masks.union(out, m)
        if self.soft_alpha and any(p.edge_px > 0 for p in self.parts):
            from studio.vision.matting import soft_edges

            soft = soft_edges(framing.image, out)
            if self.soft_boxes is None:
                out = soft
            else:
                # only where fur is expected (a person's hair): a busy backdrop behind an arm
                # is textured too, and matting it would keep ghosts of the crowd
                where = np.zeros(out.shape[:2], bool)
                for box in self.soft_boxes:
                    x0, y0, x1, y1 = (int(round(v)) for v in framing.map_box(box))
                    where[max(0, y0):max(0, y1), max(0, x0):max(0, x1)] = True
                out = np.where(where, soft, out).astype(np.uint8)
        return np.where(framing.pad_mask > 0, 0, out).astype(np.uint8)


PlanFn = Callable[[AdRequest, Services, Engine, tuple[int, int]], Plan]


def touching_edges(mask: np.ndarray, band: float = 0.01) -> tuple[str, ...]:
    """Edges of the upload the kept subject runs off (its pixels reach that border)."""
    h, w = mask.shape[:2]
    by, bx = max(1, int(round(h * band))), max(1, int(round(w * band)))
    solid = mask >= 128
    out = []
    for name, strip, length in (("bottom", solid[h - by:, :], w), ("top", solid[:by, :], w),
                                ("left", solid[:, :bx], h), ("right", solid[:, w - bx:], h)):
        if strip.any(axis=0 if name in ("bottom", "top") else 1).sum() >= 0.08 * length:
            out.append(name)
    return tuple(out)


def inpaint_engine(services: Services) -> Engine:
    """The engine the ad workflows use (one place to fetch it)."""
    return services.engines.get("inpaint")


def make_plan(plan_fn: PlanFn, req: AdRequest, services: Services, engine: Engine,
              out_size: tuple[int, int]) -> Plan:
    """The workflow's plan, with what the engine decides about it: an engine that composites the
    photo (Lite, no weights) gets soft hair/fur edges; a generator repaints the edge itself."""
    p = plan_fn(req, services, engine, out_size)
    p.soft_alpha = not engine.caps.needs_weights and not engine.caps.changes_outfit
    return p


def run_ad(workflow: str, plan_fn: PlanFn, req: AdRequest, services: Services,
           progress: ProgressFn | None = None, cancel: CancelToken | None = None) -> AdResult:
    """The one sequence every ad workflow runs; `plan_fn` supplies what is kept."""
    from studio.vision import masks

    timer = Timer()
    opts = req.options.clean()
    engine = inpaint_engine(services)
    sns = services.presets.sns(req.sns_size)
    out_size = (sns.width, sns.height)
    plan = make_plan(plan_fn, req, services, engine, out_size)
    notices = list(plan.notices)
    layout = choose_layout(plan, engine, req, services, notices)
    if layout == "cutout":
        framing = cutout_framing(req.image, out_size, plan)
        keep = plan.keep_for(framing)
        placed = plan.target is not None and plan.focus is not None
        if framing.scale >= plan.max_upscale - 1e-6 and (placed or framing.pad_mask.any()):
            notices.append(Notice("lite.small_subject", {"scale": f"{plan.max_upscale:g}"}))
    else:
        window = plan.focus if getattr(plan.cutout, "backend", None) == "box" else plan.card_window
        framing, keep = fallback_framing(req.image, out_size, layout, plan.focus, window=window,
                                         max_upscale=plan.card_upscale)
        if framing.scale >= plan.card_upscale - 1e-6:
            notices.append(Notice("lite.small_subject", {"scale": f"{plan.card_upscale:g}"}))
    notices = people_notices(plan.faces, framing, keep, notices)
    if framing.pad_mask.any() and engine.caps.needs_weights:
        notices.append(Notice("workflow.padded"))
    people_kept = sum(face_shown(f.box, framing, keep) for f in plan.faces) if len(plan.faces) > 1 else None
    framed = framing.image
    timer.lap("masks")
    if cancel is not None:
        cancel.raise_if_cancelled()

    ew, eh = engine_size(engine, out_size)
    control, pose_backend = (None, None)
    if plan.subject != "product" and layout == "cutout":
        control, pose_backend = pose_guide(services, engine, framed, (ew, eh), notices)
    timer.lap("pose")

    prompt = prompt_for(req, services, engine, subject=plan.subject)
    notices.append(prompt_notice(prompt.source))
    timer.lap("prompt")

    extras = dict(plan.settings.get("extras", {}))
    extras["layout"] = layout
    product_box = getattr(req, "product_box", None)
    if plan.subject == "mixed" and product_box and getattr(engine, "accepts_references", False):
        # Advanced on an editing engine (Qwen-Image-Edit, FLUX.2 klein): the product, as photographed,
        # goes along as a reference picture so the scene is drawn around the very same product
        extras["references"] = [req.image.crop(tuple(int(v) for v in product_box)).convert("RGB")]
    extras.update(scene_extras(req, engine, notices))
    if not engine.caps.needs_weights and "palette" not in extras:
        extras["palette"] = harmonised_palette(services.presets.industry(req.industry).palette, framed, keep)
    source = edge_clean(framed, keep) if not engine.caps.needs_weights else framed
    job = inpaint_job(source, masks.invert(keep), (ew, eh), prompt.prompt_en, opts, req,
                      plan.subject if layout == "cutout" else "product", control=control, extras=extras)
    seeds = seeds_for(opts.seed, opts.num_images)
    generated = generate(services, engine, job, seeds, out_size, progress, cancel, workflow, notices)
    timer.lap("engine")

    images = []
    for g in generated:
        if plan.subject == "product" and extras.get("shadow") and engine.caps.needs_weights:
            g = services.vision.add_contact_shadow(g, keep, strength=0.45)  # Lite draws its own shadow
        images.append(paste_back(services, g, source, keep, feather=0))
    timer.lap("paste_back")
    detail_settings: dict = {}
    if plan.subject in ("person", "mixed") and layout == "cutout":
        images, detail_settings = detail_step(services, engine, req, images, keep, plan, framing, prompt.prompt_en,
                                              opts, seeds, progress, cancel, workflow, notices)
        timer.lap("detail")
    focus = masks.mask_stats(masks.binarize(keep)).bbox
    if plan.face is not None:
        focus = framing.map_box(plan.face.box)
    q = plan.quality
    settings = {"industry": req.industry, "style": req.style, "sns_size": sns.id, "size": list(out_size),
                "engine_size": [ew, eh], "focus_box": list(focus) if focus else None,
                "layout": layout, "confidence": None if q is None else round(q.score, 3),
                "upscale": round(framing.scale, 3), "offset": [round(v) for v in framing.offset],
                "placed_size": [max(1, round(req.image.width * framing.scale)), max(1, round(req.image.height * framing.scale))],
                "pose": pose_backend, "people_kept": people_kept,
                "prompt_source": prompt.source, "options": asdict(opts),
                **{k: v for k, v in plan.settings.items() if k != "extras"}, **detail_settings}
    records = save_all(services, workflow, engine.name, images, seeds, req, prompt.prompt_en, settings,
                       model_ids(engine, control is not None), notices=notices)
    timer.lap("store")
    return AdResult(workflow=workflow, images=images, records=records, prompt_en=prompt.prompt_en,
                    engine=engine.name, seeds=seeds, framed=framed, keep_mask=keep, faces=plan.faces,
                    notices=notices, timings=timer.timings, layout=layout,
                    confidence=None if q is None else q.score, source_keep=plan.preview())


def detail_step(services: Services, engine: Engine, req: AdRequest, images: list[Image.Image], keep: np.ndarray,
                plan: Plan, framing: Framing, prompt_en: str, opts: GenerationOptions, seeds: list[int],
                progress: ProgressFn | None, cancel: CancelToken | None, workflow: str,
                notices: list[Notice]) -> tuple[list[Image.Image], dict]:
    """The detail pass (studio.vision.detail) over each finished image: hands and generated faces
    redrawn by the SAME engine object (the provider's, so the model manager never loads a second
    copy), under the GPU lock. Lite (an engine that draws no people) skips it silently. Returns
    the images and what the history row and PNG parameters record; one notice says what was done."""
    from studio.vision import detail
    from studio.vision.hands import models_present

    if not detail.applies(engine):
        return images, {}
    strength = detail.clamp_strength(getattr(req, "detail_strength", detail.DEFAULT_STRENGTH))
    if not getattr(req, "detail", True):
        return images, {"detail_pass": False, "detail_strength": round(strength, 2)}
    vision = services.vision
    find_hands = getattr(vision, "hands", None) or (lambda _rgb: [])
    models_dir = getattr(vision, "models_dir", None)
    checked = models_dir is not None and models_present(models_dir)
    kept_boxes = [framing.map_box(plan.face.box)] if plan.face is not None else []
    results: list = []

    def call(job: InpaintJob) -> Image.Image:
        out = engine.inpaint(job, detail._scaled(progress, len(results), len(images), job.steps), cancel)
        for n in out.notices:
            if all((n.key, n.fields) != (m.key, m.fields) for m in notices):
                notices.append(Notice(n.key, dict(n.fields)))
        return out.images[0]

    def run() -> None:
        for img, seed in zip(images, seeds):
            results.append(detail.run_pass(
                img, keep, engine, find_hands=find_hands, find_faces=vision.detect_faces, kept_boxes=kept_boxes,
                hands_checked=checked, prompt=prompt_en, steps=opts.steps, guidance=opts.guidance,
                strength=strength, seed=seed, cancel=cancel, progress=progress, call=call))

    services.jobs.run(run, name=f"{workflow}-detail")
    total = detail.DetailResult(image=images[0], hands_checked=checked)
    for r in results:
        total.hands += r.hands
        total.faces += r.faces
        total.engine_calls += r.engine_calls
        total.skipped_kept += r.skipped_kept
    notices.append(total.notice())
    return [r.image for r in results], dict(total.settings(strength), detail_engine_calls=total.engine_calls)


FALLBACKS = ("card", "extend")
PEOPLE_KEYS = ("workflow.others_left_out", "workflow.all_people_kept")


def face_shown(face_box: Box, framing: Framing, keep: np.ndarray, share: float = 0.5) -> bool:
    """Whether the ad shows this face: the middle of its box, carried into the frame, is at
    least `share` kept (a face cropped off the frame, or left out of the keep mask, is not)."""
    x0, y0, x1, y1 = framing.map_box(face_box)
    mx, my = (x1 - x0) / 4, (y1 - y0) / 4
    ix0, iy0, ix1, iy1 = int(round(x0 + mx)), int(round(y0 + my)), int(round(x1 - mx)), int(round(y1 - my))
    area = max(1, (ix1 - ix0) * (iy1 - iy0))
    h, w = keep.shape[:2]
    cx0, cy0, cx1, cy1 = max(0, ix0), max(0, iy0), min(w, ix1), min(h, iy1)
    if cx1 <= cx0 or cy1 <= cy0:
        return False
    return float((keep[cy0:cy1, cx0:cx1] >= 128).sum()) / area >= share


def people_notices(faces: list, framing: Framing, keep: np.ndarray, notices: list[Notice]) -> list[Notice]:
    """The "N people left out / all N kept" notices recounted from the FINAL keep mask, so no
    notice contradicts the picture (a card that shows everyone never says some were left out)."""
    if len(faces) < 2:
        return [n for n in notices if n.key not in PEOPLE_KEYS]
    shown = sum(face_shown(f.box, framing, keep) for f in faces)
    out = [n for n in notices if n.key not in PEOPLE_KEYS]
    left = len(faces) - shown
    if left == 0:
        out.append(Notice("workflow.all_people_kept", {"n": shown}))
    elif shown > 0:
        out.append(Notice("workflow.others_left_out", {"n": left}))
    return out


def choose_layout(plan: Plan, engine: Engine, req: AdRequest, services: Services, notices: list[Notice]) -> str:
    """"cutout", or a fallback layout when a compositor would paste an unsure cut-out.

    A generative engine repaints around the kept pixels and hides a ragged edge; a compositor
    (Lite) would show it, so below the confidence threshold it lays the whole photo out instead
    and says why and how to get a better cut-out. "extend" (the photo nearly fills the frame, a
    designed backdrop in the strips left) only when the photo's aspect is close and it needs no
    more enlarging than a cut-out would; otherwise a framed "card". Someone who drew a box or
    painted is never told to draw a box: they are pointed at the brush."""
    q = plan.quality
    if engine.caps.needs_weights:
        return "cutout"
    if getattr(plan.cutout, "backend", None) == "box":
        return "card"   # no outline in the owner's box: what it holds is shown as a framed card (noticed)
    if q is None or q.ok:
        return "cutout"
    sns = services.presets.sns(req.sns_size)
    W, H = req.image.size
    close = abs(math.log((W / H) / (sns.width / sns.height))) < 0.12
    drawn = getattr(req, "product_box", None) is not None or (
        getattr(req, "strokes", None) is not None and bool((np.asarray(req.strokes) > 0).any()))
    fits = min(sns.width / W, sns.height / H) <= MAX_UPSCALE + 1e-6
    layout = "extend" if close and fits and not drawn else "card"
    why = ", ".join(Notice(f"lite.reason.{r}").text(services.lang) for r in q.reasons[:2]) or "-"
    # the advice follows what the owner can do: brush their box, or (a person: no box to draw)
    # bring a photo where the person stands large and apart
    key = {"extend": "fill", "card": "card"}[layout] + ("_drawn" if drawn else "_person" if plan.subject == "person" else "")
    notices.append(Notice(f"lite.fallback.{key}", {"why": why}))
    return layout


CARD_BOX = (0.09, 0.2, 0.91, 0.9)   # the card's area on the ad (fractions): the top fifth is the headline's
CARD_MAX_STRETCH = 1.35             # a card may be at most this much wider (or taller) than its area


def fallback_framing(image: Image.Image, out_size: tuple[int, int], layout: str,
                     focus: Box | None = None, window: Box | None = None,
                     max_upscale: float = MAX_UPSCALE) -> tuple[Framing, np.ndarray]:
    """The photo laid out on the ad: a framed card with room for a headline above ("card"), or
    filling the frame, a designed backdrop in what is left ("extend"). Keep = the photo, exactly.

    A card's window is the whole photo, unless the photo is much wider (or taller) than the
    card's area: then it is cropped around `focus` (the subject, or the owner's box) so that a
    wide photo is not a thin strip lost in empty backdrop."""
    W, H = image.size
    out_w, out_h = out_size
    if layout == "extend":
        box = (0.0, 0.0, float(out_w), float(out_h))
        win = (0.0, 0.0, float(W), float(H))
    else:
        box = (CARD_BOX[0] * out_w, CARD_BOX[1] * out_h, CARD_BOX[2] * out_w, CARD_BOX[3] * out_h)
        if window is not None:   # the card shows exactly this part of the photo (the owner's box)
            x0, y0, x1, y1 = window
            win = (float(max(0, x0)), float(max(0, y0)), float(min(W, x1)), float(min(H, y1)))
        else:
            win = card_window((W, H), (box[2] - box[0]) / (box[3] - box[1]), focus)
    bw, bh = box[2] - box[0], box[3] - box[1]
    cw, ch = win[2] - win[0], win[3] - win[1]
    scale = min(bw / cw, bh / ch, max_upscale)
    sw, sh = cw * scale, ch * scale
    ox = box[0] + (bw - sw) / 2
    oy = box[1] + (bh - sh) / 2 if layout == "extend" else box[3] - sh - (bh - sh) * 0.35
    geo = _Geometry(out_size, scale, (round(ox - win[0] * scale), round(oy - win[1] * scale)), None)
    framing = render_framing(image, geo, sharpen=max_upscale > MAX_UPSCALE)
    pad = framing.pad_mask
    if win != (0.0, 0.0, float(W), float(H)):  # only the window is the card; the rest is backdrop
        inside = np.zeros_like(pad)
        x0, y0 = int(round(ox)), int(round(oy))
        inside[max(0, y0):max(0, y0 + int(round(sh))), max(0, x0):max(0, x0 + int(round(sw)))] = 255
        pad = np.where(inside > 0, pad, 255).astype(np.uint8)
        framing = Framing(framing.image, pad, framing.scale, framing.offset, framing.crop)
    keep = np.where(pad > 0, 0, 255).astype(np.uint8)
    return framing, keep


def card_window(size: tuple[int, int], area_aspect: float, focus: Box | None) -> tuple[float, float, float, float]:
    """The part of the photo a card shows: all of it, or (for a photo much wider or taller than
    the card's area) a window of at most CARD_MAX_STRETCH times that aspect around `focus`,
    grown to hold all of `focus`."""
    W, H = size
    aspect = W / H
    fx0, fy0, fx1, fy1 = focus if focus else (0, 0, W, H)
    cx, cy = (fx0 + fx1) / 2, (fy0 + fy1) / 2
    if aspect > area_aspect * CARD_MAX_STRETCH:
        cw = max(H * area_aspect * CARD_MAX_STRETCH, float(fx1 - fx0))
        cw = min(cw, float(W))
        x0 = min(max(cx - cw / 2, 0.0), W - cw)
        return (x0, 0.0, x0 + cw, float(H))
    if aspect < area_aspect / CARD_MAX_STRETCH:
        ch = max(W / (area_aspect / CARD_MAX_STRETCH), float(fy1 - fy0))
        ch = min(ch, float(H))
        y0 = min(max(cy - ch / 2, 0.0), H - ch)
        return (0.0, y0, float(W), y0 + ch)
    return (0.0, 0.0, float(W), float(H))


def scene_extras(req: AdRequest, engine: Engine, notices: list[Notice]) -> dict:
    """For a compositor: the owner's scene words choose the backdrop family and colours, and the
    owner is told which words were used and which were not."""
    if engine.caps.needs_weights or not (req.prompt_ko or "").strip():
        return {}
    from studio.engines.backdrops import scene_from_words

    choice = scene_from_words(req.prompt_ko)
    out: dict = {}
    if choice.kind:
        out["backdrop"] = choice.kind
    if choice.palette:
        out["palette"] = list(choice.palette)
    if choice.used:
        notices.append(Notice("lite.scene.used", {"words": ", ".join(choice.used)}))
    if choice.unused:
        notices.append(Notice("lite.scene.unused", {"words": ", ".join(choice.unused)}))
    return out


def harmonised_palette(palette: list[str], framed: Image.Image, keep: np.ndarray, pull: float = 0.3) -> list[str]:
    """The industry palette pulled towards the subject's own colour (a calm, low-chroma version
    of it), so the backdrop belongs to the product instead of fighting it."""
    import cv2

    solid = keep >= 250
    if solid.sum() < 50 or not palette:
        return list(palette)
    lab = cv2.cvtColor(np.asarray(framed.convert("RGB")), cv2.COLOR_RGB2LAB).astype(np.float32)
    subj = lab[solid].mean(axis=0)
    out = []
    for code in palette:
        code = code.lstrip("#")
        rgb = np.array([[[int(code[i:i + 2], 16) for i in (0, 2, 4)]]], np.uint8)
        c = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)[0, 0]
        target_ab = 128 + (subj[1:] - 128) * 0.35            # the subject's hue, desaturated
        c[1:] = c[1:] * (1 - pull) + target_ab * pull
        back = cv2.cvtColor(np.clip(c, 0, 255).astype(np.uint8)[None, None, :], cv2.COLOR_LAB2RGB)[0, 0]
        out.append("#" + "".join(f"{int(v):02x}" for v in back))
    return out


def edge_clean(framed: Image.Image, keep: np.ndarray) -> Image.Image:
    """Remove colour halos: in the soft band of the keep mask (0 < keep < 255) the photo's pixels
    still carry the old background's colour. Each is replaced by the subject's own colour pulled
    in from the fully kept pixels next to it (normalised convolution at two scales), so blending
    over a new backdrop leaves no fringe. Fully kept pixels (255) are untouched.

    (PyMatting's `estimate_foreground_ml` was measured here too: it trusts the alpha, and a
    cut-out's soft band is not a true matte, so it removed only ~20 % of the halo.)"""
    import cv2

    band = (keep > 0) & (keep < 255)
    if not band.any():
        return framed
    arr = np.asarray(framed.convert("RGB"))
    ys, xs = np.nonzero(band)
    pad = 16
    y0, y1 = max(0, int(ys.min()) - pad), min(arr.shape[0], int(ys.max()) + 1 + pad)
    x0, x1 = max(0, int(xs.min()) - pad), min(arr.shape[1], int(xs.max()) + 1 + pad)
    crop = arr[y0:y1, x0:x1].astype(np.float32)
    inner = cv2.erode((keep[y0:y1, x0:x1] == 255).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(np.float32)
    fg = np.zeros_like(crop)
    got = np.zeros(inner.shape, np.float32)
    for sigma in (2.0, 6.0):   # near colours first; wider for pixels far from the solid body
        w = cv2.GaussianBlur(inner, (0, 0), sigma)
        c = cv2.GaussianBlur(crop * inner[..., None], (0, 0), sigma)
        ok = (w > 1e-3) & (got == 0)
        fg[ok] = c[ok] / w[ok][:, None]
        got[ok] = 1.0
    fg[got == 0] = crop[got == 0]
    fg = np.clip(fg + 0.5, 0, 255).astype(np.uint8)
    out = arr.copy()
    sel = band[y0:y1, x0:x1]
    out[y0:y1, x0:x1][sel] = fg[sel]
    return Image.fromarray(out, "RGB")


def pose_guide(services: Services, engine: Engine, framed: Image.Image, size: tuple[int, int],
               notices: list[Notice]) -> tuple[Image.Image | None, str | None]:
    """The OpenPose skeleton for engines that take one; a notice when there is none."""
    if not engine.caps.uses_pose_control:
        return None, None
    pose = services.vision.pose(framed, *size)
    if pose is not None and pose.found:
        return pose.image, pose.backend
    notices.append(Notice("workflow.no_pose"))
    return None, None


def engine_size(engine: Engine, out_size: tuple[int, int]) -> tuple[int, int]:
    """The engine's working size for an output size, from its capabilities (no name checks)."""
    caps = engine.caps
    if caps.work_megapixels is None:
        return out_size
    w, h = out_size
    m = max(1, caps.size_multiple)
    k = math.sqrt(caps.work_megapixels * 1024 * 1024 / (w * h))
    return max(256, int(round(w * k / m)) * m), max(256, int(round(h * k / m)) * m)


def inpaint_job(framed: Image.Image, regenerate: np.ndarray, size: tuple[int, int], prompt_en: str,
                opts: GenerationOptions, req: AdRequest, subject: str,
                control: Image.Image | None = None, extras: dict | None = None) -> InpaintJob:
    """The engine's job at its working `size`: the framed upload and the regenerate mask
    (255 = regenerate) resized to it, plus the owner's options."""
    from studio.vision import masks

    w, h = size
    image = framed if framed.size == size else framed.resize(size, Image.Resampling.LANCZOS)
    mask = Image.fromarray(masks.resize_mask(regenerate, size), "L")
    return InpaintJob(image=image, mask=mask, prompt=prompt_en, width=w, height=h, steps=opts.steps,
                      guidance=opts.guidance, control_image=control, controlnet_scale=opts.controlnet_scale,
                      control_start=opts.control_start, control_end=opts.control_end, industry=req.industry,
                      style=req.style, subject=subject, extras=extras or {})


def seeds_for(options_seed: int, n: int) -> list[int]:
    base = random.SystemRandom().randrange(0, 2**31 - n) if options_seed < 0 else options_seed
    return [base + i for i in range(n)]


def step_progress(progress: ProgressFn | None, offset: int, total: int) -> ProgressFn:
    p = progress or no_progress

    def inner(step: int, _total: int, desc: str = "") -> None:
        p(offset + step, total, desc)

    return inner


def generate(services: Services, engine: Engine, job: InpaintJob, seeds: list[int], out_size: tuple[int, int],
             progress: ProgressFn | None, cancel: CancelToken | None, name: str,
             notices: list[Notice] | None = None) -> list[Image.Image]:
    """One engine call per seed (each result reproducible from its own recorded seed), under the GPU lock.
    The engine's notices (a lighter memory plan, a lower resolution, no ControlNet...) are added to
    `notices` once each, for the result and the history row."""
    images: list[Image.Image] = []

    def run() -> None:
        for i, seed in enumerate(seeds):
            if cancel is not None:
                cancel.raise_if_cancelled()
            job.seed = seed
            job.num_images = 1
            out = engine.inpaint(job, step_progress(progress, i * job.steps, len(seeds) * job.steps), cancel)
            img = out.images[0].convert("RGB")
            if img.size != out_size:
                img = img.resize(out_size, Image.Resampling.LANCZOS)
            images.append(img)
            if notices is not None:
                for n in out.notices:
                    if all((n.key, n.fields) != (m.key, m.fields) for m in notices):
                        notices.append(Notice(n.key, dict(n.fields)))

    services.jobs.run(run, name=name)
    return images


def paste_back(services: Services, generated: Image.Image, framed: Image.Image, keep: np.ndarray,
               feather: int) -> Image.Image:
    """Feathered paste of the kept pixels; outside the blend band they are exactly the framed upload."""
    return services.vision.paste_back(generated, framed, keep, feather_px=feather)


def save_all(services: Services, workflow: str, engine_name: str, images: list[Image.Image], seeds: list[int],
             request: AdRequest, prompt_en: str, settings: dict, model_ids: list[str],
             kept_owner_pixels: bool = True, notices: list[Notice] | None = None) -> list[Record]:
    """The saved records (a `SavedRecords` list: `.failed` names the images that could not be
    stored). Raises the store's error only when nothing at all was saved. The notices the owner
    was shown are kept with each row (key + fields: re-translatable)."""
    if notices:
        settings = dict(settings, notices=[n.as_record() for n in notices])
    items = [(img, NewRecord(workflow=workflow, engine=engine_name, model_ids=model_ids, seed=seed,
                             prompt_ko=request.prompt_ko, prompt_en=prompt_en,
                             settings=dict(settings, seed=seed), kept_owner_pixels=kept_owner_pixels))
             for img, seed in zip(images, seeds)]
    records = services.store.save_images(items)
    if records.failed and not records:
        raise records.failed[0][1]
    return records


class Timer:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = self.timings.get(name, 0.0) + now - self._t
        self._t = now


def cutout_notice(backend: str) -> Notice:
    """Which cut-out made the product mask, in the owner's words (not the tool's name)."""
    if backend in ("grabcut", "alpha", "box"):
        return Notice(f"workflow.cutout.{backend}")
    return Notice("workflow.cutout.model", {"model": backend})


def prompt_notice(source: str) -> Notice:
    known = ("llm", "glossary", "owner")
    return Notice(f"workflow.prompt_source.{source if source in known else 'glossary'}")


def model_ids(engine: Engine, used_control: bool) -> list[str]:
    """What produced a result, for the history row: the engine's models (ControlNet only if used)."""
    ids = list(getattr(engine, "model_ids", None) or [engine.name])
    if not used_control:
        ids = [i for i in ids if "controlnet" not in i]
    return ids

