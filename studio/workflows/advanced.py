"""Advanced ad: keep the owner's face AND the product; regenerate the rest with the pose guiding.

The product is the owner's box (cut out inside it) or an uploaded alpha; the face comes from the
detector. The shared skeleton (`common.run_ad`) does the rest.
"""

from __future__ import annotations

import logging

import numpy as np

from studio.engines.base import Engine
from studio.runtime.jobs import CancelToken, ProgressFn
from studio.schema import AdResult, AdvancedRequest, Notice
from studio.services import Services
from studio.workflows import common
from studio.workflows.person import body_box, person_parts, pick_face
from studio.workflows.product import product_matte

log = logging.getLogger(__name__)


def _union_box(a, b):
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def plan(req: AdvancedRequest, services: Services, engine: Engine, out_size: tuple[int, int]) -> common.Plan:
    from studio.vision import masks

    notices: list[Notice] = []
    faces, face = pick_face(services, req.image, req.face_index, notices)
    matte, pbox = product_matte(services, req.image, req.product_box, req.alpha, req.strokes)
    # the product must not swallow the face (a box drawn over the person)
    face_hole = masks.box_mask(req.image.size, face.box)
    product_mask = np.where(face_hole > 0, 0, matte.mask).astype(np.uint8)
    notices.append(common.cutout_notice(matte.backend))
    if req.strokes is not None and (req.strokes > 0).any():
        notices.append(Notice("workflow.cutout.brushed"))
    settings: dict = {"face_index": req.face_index, "faces": len(faces),
                      "product_box": list(req.product_box) if req.product_box else None, "cutout": matte.backend}
    parts, anchors = person_parts(services, req, face, engine, out_size, notices, settings, False)
    parts.insert(1, common.KeepPart(product_mask, edge_px=2))
    from studio.workflows.person import other_people

    extra, more, people = other_people(services, req, faces, face, engine, out_size, notices, settings, False,
                                       body_box(face.box, req.image.size))
    parts += extra
    anchors = tuple(sorted(set(anchors) | set(more)))
    from studio.workflows.product import cutout_quality

    quality = settings.pop("_quality", None)
    pq = cutout_quality(services, req.image, matte, req.product_box, req.strokes)
    if pq is not None and (quality is None or pq.score < quality.score):
        quality = pq
    focus = _union_box(people, pbox)
    return common.Plan(subject="mixed", parts=parts, focus=focus, margin=0.05, anchors=anchors, faces=faces,
                       face=face, cutout=matte, notices=notices, settings=settings, quality=quality)


def run(req: AdvancedRequest, services: Services, progress: ProgressFn | None = None,
        cancel: CancelToken | None = None) -> AdResult:
    return common.run_ad("advanced", plan, req, services, progress, cancel)
