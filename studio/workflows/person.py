"""Person ad: keep the owner's face exactly; regenerate outfit and background, guided by the pose.

safe-loaded upload -> faces (largest first) -> frame to the SNS size around head and torso ->
face keep mask (dilate, feather) -> invert -> pose guide -> English prompt -> engine.inpaint ->
paste the framed upload's face back -> store. With an engine that can't invent clothes (Lite),
the whole person is kept by segmentation and only the background is replaced, and the owner is
told that changing the outfit needs FLUX.
"""

from __future__ import annotations

import logging
from dataclasses import asdict

import numpy as np
from PIL import Image

from studio.errors import InputError
from studio.runtime.jobs import CancelToken, ProgressFn
from studio.schema import AdResult, Notice, PersonRequest
from studio.services import Services
from studio.workflows import common
from studio.workflows.prompting import prompt_for

log = logging.getLogger(__name__)


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

    lm = None
    if face.landmarks is not None:
        lm = np.asarray(face.landmarks, dtype=np.float64) * framing.scale + np.array(framing.offset)
    return FaceBox(box=framing.map_box(face.box), score=face.score, landmarks=lm, backend=face.backend)


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


def run(req: PersonRequest, services: Services, progress: ProgressFn | None = None,
        cancel: CancelToken | None = None) -> AdResult:
    timer = common.Timer()
    opts = req.options.clean()
    vision = services.vision
    engine = services.engines.get("inpaint")
    sns = services.presets.sns(req.sns_size)
    out_size = (sns.width, sns.height)
    notices: list[Notice] = []

    faces, face = pick_face(services, req.image, req.face_index, notices)
    framing = common.frame(req.image, out_size, body_box(face.box, req.image.size), margin=0.05)
    framed = framing.image
    face_f = map_face(face, framing)
    keep = vision.face_keep_mask(out_size, face_f, include_hair=req.include_hair, include_neck=req.include_neck,
                                 dilate_px=opts.mask_dilate, feather_px=opts.mask_feather)
    cutout_backend = None
    if not engine.caps.changes_outfit:
        keep, cutout_backend = common.person_keep(services, req.image, framing, face, keep, req.include_hair)
        notices.append(Notice("workflow.outfit_needs_flux"))
    keep = np.where(framing.pad_mask > 0, 0, keep).astype(np.uint8)
    timer.lap("masks")
    if cancel is not None:
        cancel.raise_if_cancelled()

    ew, eh = common.engine_size(engine, out_size)
    control, pose_backend = common.pose_guide(services, engine, framed, (ew, eh), notices)
    timer.lap("pose")

    prompt = prompt_for(req, services, engine, subject="person")
    notices.append(common.prompt_notice(prompt.source))
    timer.lap("prompt")

    from studio.vision import masks

    job = common.inpaint_job(framed, masks.invert(keep), (ew, eh), prompt.prompt_en, opts, req, "person", control=control)
    seeds = common.seeds_for(opts.seed, opts.num_images)
    generated = common.generate(services, engine, job, seeds, out_size, progress, cancel, "person", notices)
    timer.lap("engine")

    images = [common.paste_back(services, g, framed, keep, feather=0) for g in generated]
    timer.lap("paste_back")
    settings = {"industry": req.industry, "style": req.style, "sns_size": sns.id, "size": list(out_size),
                "engine_size": [ew, eh], "face_index": req.face_index, "faces": len(faces),
                "focus_box": list(face_f.box), "pose": pose_backend, "cutout": cutout_backend,
                "prompt_source": prompt.source, "options": asdict(opts)}
    records = common.save_all(services, "person", engine.name, images, seeds, req, prompt.prompt_en, settings,
                              common.model_ids(engine, control is not None), notices=notices)
    timer.lap("store")
    return AdResult(workflow="person", images=images, records=records, prompt_en=prompt.prompt_en,
                    engine=engine.name, seeds=seeds, framed=framed, keep_mask=keep, faces=faces,
                    notices=notices, timings=timer.timings)
