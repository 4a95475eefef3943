"""Person ad: keep the owner's face exactly; regenerate outfit and background, guided by the pose.

The shared skeleton (`common.run_ad`) does the rest; this module supplies what is kept: faces
(largest first) -> the chosen face's keep mask (dilate, feather); with an engine that can't invent
clothes (Lite) the whole person is kept by segmentation and only the background is replaced, and
the owner is told that changing the outfit needs FLUX. The frame holds head and torso; a body that
runs off the photo's bottom or side stays on that edge of the ad.
"""

from __future__ import annotations

import logging

import numpy as np
from PIL import Image

from studio.engines.base import Engine
from studio.errors import InputError
from studio.runtime.jobs import CancelToken, ProgressFn
from studio.schema import AdResult, Notice, PersonRequest
from studio.services import Services
from studio.vision import masks
from studio.workflows import common

log = logging.getLogger(__name__)


MODELS_AGREE = 0.8   # below this IoU of the selfie and pose masks a whole figure's cut-out is unsure


def body_box(face_box: tuple[int, int, int, int], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Head and torso below a face: about 3 face widths wide and 4.5 face heights tall."""
    x0, y0, x1, y1 = face_box
    w, h = x1 - x0, y1 - y0
    cx = (x0 + x1) / 2
    W, H = size
    return (int(max(0, cx - 1.5 * w)), int(max(0, y0 - 0.6 * h)),
            int(min(W, cx + 1.5 * w)), int(min(H, y1 + 3.5 * h)))


def map_face(face, framing: common.Framing):
    """The same face in the framed image's pixels."""
    from studio.vision.faces import FaceBox

    def move(pts):
        return None if pts is None else np.asarray(pts, dtype=np.float64) * framing.scale + np.array(framing.offset)

    return FaceBox(box=framing.map_box(face.box), score=face.score, landmarks=move(face.landmarks),
                   backend=face.backend, oval=move(getattr(face, "oval", None)))


def pick_face(services: Services, image: Image.Image, index: int, notices: list[Notice]):
    """All faces (largest first) and the one to keep; a clear message when there is none."""
    faces = services.vision.detect_faces(image)
    if not faces:
        raise InputError("workflow.no_face")
    if not 0 <= index < len(faces):
        raise InputError("workflow.face_index", i=index + 1, n=len(faces))
    if len(faces) > 1:
        notices.append(Notice("workflow.many_faces", {"n": len(faces), "i": index + 1}))
    return faces, faces[index]


def face_part(services: Services, req, face, engine: Engine, out_size: tuple[int, int],
              include_neck: bool) -> common.KeepPart:
    """The face keep mask on the upload; dilate/feather are output pixels, so they are scaled."""
    opts = req.options.clean()
    geo = common.frame_geometry(req.image.size, out_size, body_box(face.box, req.image.size), margin=0.05)
    k = 1.0 / max(geo.scale, 1e-6)
    d = int(round(opts.mask_dilate * k))
    f = opts.mask_feather * k
    keep = services.vision.face_keep_mask(req.image.size, face, include_hair=req.include_hair,
                                          include_neck=include_neck, dilate_px=d, feather_px=f)
    return common.KeepPart(keep)


def person_parts(services: Services, req, face, engine: Engine, out_size: tuple[int, int],
                 notices: list[Notice], settings: dict, include_neck: bool,
                 faces: list | None = None) -> tuple[list[common.KeepPart], tuple[str, ...]]:
    parts = [face_part(services, req, face, engine, out_size, include_neck)]
    anchors: tuple[str, ...] = ()
    if not engine.caps.changes_outfit:
        body, backend, agreement = common.person_matte(services, req.image, face, req.include_hair, faces)
        if backend != "grabcut":
            # a learned person mask already holds the head: the face part must not add the
            # backdrop around the hair (the drawn hair ellipse) to the cut-out
            # (the body's hard edge: its soft fringe under the face's wide feather would keep a
            # grey ring of the old backdrop around the head)
            parts[0] = common.KeepPart(masks.intersection(parts[0].mask, masks.dilate(masks.binarize(body), 1)))
        parts.append(common.KeepPart(body, edge_px=2))
        settings["cutout"] = backend
        anchors = common.touching_edges(body)
        notices.append(Notice("workflow.outfit_needs_flux"))
        settings["_quality"] = person_quality(services, req.image, face, body, anchors, backend, agreement,
                                              keep_all=bool(getattr(req, "keep_all_people", False)))
    return parts, anchors


def person_quality(services: Services, image: Image.Image, face, body: np.ndarray,
                   anchors: tuple[str, ...], backend: str, agreement: float | None = None,
                   keep_all: bool = False):
    from studio.vision.confidence import CutoutQuality, assess

    if backend.endswith("+group") and not keep_all:
        # the owner asked for one person, but the model could only keep everyone touching
        # them: a cut-out of half a card table is not an ad - the photo is laid out whole
        return CutoutQuality(0.0, {"group": 0.0})
    if agreement is not None and agreement < MODELS_AGREE:
        # the selfie and the pose model disagree on a quarter of the figure (a small, blurred
        # person against a wall of the same grey): whichever is right, the cut-out would show
        # patches of the old wall - the photo is laid out whole instead, and the owner told why
        return CutoutQuality(0.0, {"models": 0.0})
    other = None
    if backend == "grabcut":
        wider = type(face)(box=(face.box[0] - face.width // 4, face.box[1], face.box[2] + face.width // 4,
                                face.box[3]), score=face.score, landmarks=None, backend=face.backend)
        other, _, _ = common.person_matte(services, image, wider, True)
    return assess(np.asarray(image.convert("RGB")), body, allowed_edges=anchors + ("bottom",),
                  face_box=face.box, other=other, learned=backend != "grabcut")


def other_people(services: Services, req, faces: list, face, engine: Engine, out_size: tuple[int, int],
                 notices: list[Notice], settings: dict, include_neck: bool,
                 focus: tuple[int, int, int, int]) -> tuple[list[common.KeepPart], tuple[str, ...], tuple[int, int, int, int]]:
    """With several faces: every other person too when the owner asked to keep them all
    (`keep_all_people`), else none, and the owner is told the others were left out."""
    others = [f for f in faces if f is not face]
    settings["keep_all_people"] = bool(getattr(req, "keep_all_people", False))
    if not others:
        return [], (), focus
    if not settings["keep_all_people"]:
        notices.append(Notice("workflow.others_left_out", {"n": len(others)}))
        return [], (), focus
    parts: list[common.KeepPart] = []
    anchors: set[str] = set()
    for other in others:
        extra, edges = person_parts(services, req, other, engine, out_size, [], {}, include_neck, faces)
        parts.extend(extra)
        anchors.update(edges)
        b = body_box(other.box, req.image.size)
        focus = (min(focus[0], b[0]), min(focus[1], b[1]), max(focus[2], b[2]), max(focus[3], b[3]))
    notices.append(Notice("workflow.all_people_kept", {"n": len(faces)}))
    return parts, tuple(sorted(anchors)), focus


def plan(req: PersonRequest, services: Services, engine: Engine, out_size: tuple[int, int]) -> common.Plan:
    notices: list[Notice] = []
    faces, face = pick_face(services, req.image, req.face_index, notices)
    settings: dict = {"face_index": req.face_index, "faces": len(faces), "cutout": None}
    parts, anchors = person_parts(services, req, face, engine, out_size, notices, settings, req.include_neck,
                                  faces)
    focus = body_box(face.box, req.image.size)
    extra, more, focus = other_people(services, req, faces, face, engine, out_size, notices, settings,
                                      req.include_neck, focus)
    parts += extra
    anchors = tuple(sorted(set(anchors) | set(more)))
    quality = settings.pop("_quality", None)
    max_upscale = common.MAX_UPSCALE
    if settings["cutout"] is not None:
        # the whole person is kept (Lite): frame all of them, not a head-and-torso guess - a
        # standing figure keeps their legs - and let a small figure grow (sharpened) until it
        # reads on a phone
        tall = mask_box(masks.union(*(p.mask for p in parts[1:])))
        if tall is not None:   # from the top of the head to the feet; the width stays the body's
            focus = (focus[0], min(focus[1], tall[1]), focus[2], max(focus[3], tall[3]))
        max_upscale = common.PERSON_MAX_UPSCALE
    return common.Plan(subject="person", parts=parts, focus=focus, margin=0.05, anchors=anchors,
                       faces=faces, face=face, notices=notices, settings=settings, quality=quality,
                       max_upscale=max_upscale, soft_boxes=[hair_box(f.box) for f in faces])


def hair_box(face_box: tuple[int, int, int, int]) -> tuple[float, float, float, float]:
    """Where a person's hair can be, around their face (long hair reaches the shoulders)."""
    x0, y0, x1, y1 = face_box
    w, h = x1 - x0, y1 - y0
    return (x0 - 0.8 * w, y0 - 0.9 * h, x1 + 0.8 * w, y1 + 0.8 * h)


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    ys, xs = np.nonzero(mask >= 128)
    if ys.size == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1



def run(req: PersonRequest, services: Services, progress: ProgressFn | None = None,
        cancel: CancelToken | None = None) -> AdResult:
    return common.run_ad("person", plan, req, services, progress, cancel)
