"""Product ad: keep the product exactly (cut out), regenerate the scene around it.

safe-loaded upload -> cut-out (uploaded alpha, the owner's box, or automatic) -> frame to the SNS
size with room around the product (padding is generated) -> keep mask = product -> invert ->
prompt -> engine.inpaint -> paste the product back -> contact shadow -> store.
"""

from __future__ import annotations

import logging
from dataclasses import asdict

import numpy as np
from PIL import Image

from studio.errors import InputError
from studio.runtime.jobs import CancelToken, ProgressFn
from studio.schema import AdResult, Box, Notice, ProductRequest
from studio.services import Services
from studio.workflows import common
from studio.workflows.prompting import prompt_for

log = logging.getLogger(__name__)

MIN_PRODUCT_COVERAGE = 0.005


def product_matte(services: Services, image: Image.Image, box: Box | None, alpha: np.ndarray | None):
    """The product's mask on the upload (255 = product), refusing an empty one."""
    from studio.vision import masks

    matte = services.vision.cutout(image, box=box, alpha=alpha, subject="product")
    stats = masks.mask_stats(masks.binarize(matte.mask))
    if stats.bbox is None or stats.coverage < MIN_PRODUCT_COVERAGE:
        raise InputError("workflow.no_product")
    return matte, stats.bbox


def run(req: ProductRequest, services: Services, progress: ProgressFn | None = None,
        cancel: CancelToken | None = None) -> AdResult:
    from studio.vision import masks

    timer = common.Timer()
    opts = req.options.clean()
    engine = services.engines.get("inpaint")
    sns = services.presets.sns(req.sns_size)
    out_size = (sns.width, sns.height)
    notices: list[Notice] = []

    matte, bbox = product_matte(services, req.image, req.product_box, req.alpha)
    notices.append(Notice("workflow.cutout_backend", {"backend": matte.backend}))
    framing = common.frame(req.image, out_size, bbox, margin=0.3)
    framed = framing.image
    if framing.pad_mask.any():
        notices.append(Notice("workflow.padded"))
    keep = framing.map_mask(matte.mask)
    # a thin feather inside the product's edge; the product's body stays exact
    keep = masks.feather(masks.erode(masks.binarize(keep), 1), min(opts.mask_feather, 3) / 1.0)
    timer.lap("masks")
    if cancel is not None:
        cancel.raise_if_cancelled()

    prompt = prompt_for(req, services, engine, subject="product")
    notices.append(common.prompt_notice(prompt.source))
    timer.lap("prompt")

    ew, eh = common.engine_size(engine, out_size)
    job = common.inpaint_job(framed, masks.union(masks.invert(keep), framing.pad_mask), (ew, eh), prompt.prompt_en, opts, req, "product", extras={"reflection": req.reflection, "shadow": req.shadow})
    seeds = common.seeds_for(opts.seed, opts.num_images)
    generated = common.generate(services, engine, job, seeds, out_size, progress, cancel, "product", notices)
    timer.lap("engine")

    images = []
    for g in generated:
        if req.shadow and engine.caps.needs_weights:  # Lite draws its own shadow
            g = services.vision.add_contact_shadow(g, keep, strength=0.45)
        images.append(common.paste_back(services, g, framed, keep, feather=0))
    timer.lap("paste_back")
    focus = masks.mask_stats(masks.binarize(keep)).bbox
    settings = {"industry": req.industry, "style": req.style, "sns_size": sns.id, "size": list(out_size),
                "engine_size": [ew, eh], "product_box": list(req.product_box) if req.product_box else None,
                "focus_box": list(focus) if focus else None, "cutout": matte.backend,
                "shadow": req.shadow, "reflection": req.reflection, "prompt_source": prompt.source,
                "options": asdict(opts)}
    records = common.save_all(services, "product", engine.name, images, seeds, req, prompt.prompt_en, settings,
                              common.model_ids(engine, False), notices=notices)
    timer.lap("store")
    return AdResult(workflow="product", images=images, records=records, prompt_en=prompt.prompt_en,
                    engine=engine.name, seeds=seeds, framed=framed, keep_mask=keep, notices=notices,
                    timings=timer.timings)
