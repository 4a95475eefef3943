"""Advanced ad: keep the owner's face AND the product; regenerate the rest with the pose guiding.

The product is the owner's box (cut out inside it) or an uploaded alpha; the face comes from the
detector. Both keep masks are united, inverted for the engine, and pasted back afterwards.
"""

from __future__ import annotations

import logging
from dataclasses import asdict

import numpy as np

from studio.runtime.jobs import CancelToken, ProgressFn
from studio.schema import AdResult, AdvancedRequest, Notice
from studio.services import Services
from studio.workflows import common
from studio.workflows.person import body_box, map_face, pick_face
from studio.workflows.product import product_matte
from studio.workflows.prompting import prompt_for

log = logging.getLogger(__name__)


def _union_box(a, b):
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def run(req: AdvancedRequest, services: Services, progress: ProgressFn | None = None,
        cancel: CancelToken | None = None) -> AdResult:
    from studio.vision import masks

    timer = common.Timer()
    opts = req.options.clean()
    vision = services.vision
    engine = services.engines.get("inpaint")
    sns = services.presets.sns(req.sns_size)
    out_size = (sns.width, sns.height)
    notices: list[Notice] = []

    faces, face = pick_face(services, req.image, req.face_index, notices)
    matte, pbox = product_matte(services, req.image, req.product_box, req.alpha)
    # the product must not swallow the face (a box drawn over the person)
    face_hole = masks.box_mask(req.image.size, face.box)
    product_mask = np.where(face_hole > 0, 0, matte.mask).astype(np.uint8)
    notices.append(Notice("workflow.cutout_backend", {"backend": matte.backend}))

    focus = _union_box(body_box(face.box, req.image.size), pbox)
    framing = common.frame(req.image, out_size, focus, margin=0.05)
    framed = framing.image
    face_f = map_face(face, framing)
    keep_face = vision.face_keep_mask(out_size, face_f, include_hair=req.include_hair,
                                      dilate_px=opts.mask_dilate, feather_px=opts.mask_feather)
    keep_prod = masks.feather(masks.erode(masks.binarize(framing.map_mask(product_mask)), 1), 2)
    keep = masks.union(keep_face, keep_prod)
    if not engine.caps.changes_outfit:
        keep, _ = common.person_keep(services, req.image, framing, face, keep, req.include_hair)
        notices.append(Notice("workflow.outfit_needs_flux"))
    keep = np.where(framing.pad_mask > 0, 0, keep).astype(np.uint8)
    timer.lap("masks")
    if cancel is not None:
        cancel.raise_if_cancelled()

    ew, eh = common.engine_size(engine, out_size)
    control, _ = common.pose_guide(services, engine, framed, (ew, eh), notices)
    prompt = prompt_for(req, services, engine, subject="mixed")
    notices.append(common.prompt_notice(prompt.source))
    timer.lap("prompt")

    job = common.inpaint_job(framed, masks.invert(keep), (ew, eh), prompt.prompt_en, opts, req, "mixed", control=control)
    seeds = common.seeds_for(opts.seed, opts.num_images)
    generated = common.generate(services, engine, job, seeds, out_size, progress, cancel, "advanced", notices)
    timer.lap("engine")
    images = [common.paste_back(services, g, framed, keep, feather=0) for g in generated]
    timer.lap("paste_back")
    settings = {"industry": req.industry, "style": req.style, "sns_size": sns.id, "size": list(out_size),
                "engine_size": [ew, eh], "face_index": req.face_index,
                "product_box": list(req.product_box) if req.product_box else None,
                "focus_box": list(framing.map_box(focus)), "cutout": matte.backend,
                "prompt_source": prompt.source, "options": asdict(opts)}
    records = common.save_all(services, "advanced", engine.name, images, seeds, req, prompt.prompt_en, settings,
                              common.model_ids(engine, control is not None), notices=notices)
    timer.lap("store")
    return AdResult(workflow="advanced", images=images, records=records, prompt_en=prompt.prompt_en,
                    engine=engine.name, seeds=seeds, framed=framed, keep_mask=keep, faces=faces,
                    notices=notices, timings=timer.timings)
