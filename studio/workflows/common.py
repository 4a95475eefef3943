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
from dataclasses import dataclass

import numpy as np
from PIL import Image

from studio.engines.base import Engine, InpaintJob
from studio.runtime.jobs import CancelToken, ProgressFn, no_progress
from studio.schema import AdRequest, Box, GenerationOptions, Notice
from studio.services import Services
from studio.store.history import NewRecord, Record

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


def frame(image: Image.Image, size: tuple[int, int], focus: Box | None, *, margin: float = 0.15) -> Framing:
    """Crop to the output aspect around `focus` (with a margin); pad when `focus` can't fit."""
    W, H = image.size
    out_w, out_h = size
    aspect = out_w / out_h
    crop_w, crop_h = (W, W / aspect) if W / H < aspect else (H * aspect, H)
    fx0, fy0, fx1, fy1 = focus if focus else (0, 0, W, H)
    fx0, fy0, fx1, fy1 = max(0, fx0), max(0, fy0), min(W, fx1), min(H, fy1)
    cx, cy = (fx0 + fx1) / 2, (fy0 + fy1) / 2
    # the margin shrinks (down to none) before the frame resorts to padding
    fits = (fx1 - fx0) <= crop_w + 1e-6 and (fy1 - fy0) <= crop_h + 1e-6
    need_w = (fx1 - fx0) * (1 + 2 * margin) if focus else 0
    need_h = (fy1 - fy0) * (1 + 2 * margin) if focus else 0
    if fits:
        x0 = min(max(cx - crop_w / 2, 0.0), W - crop_w)
        y0 = min(max(cy - crop_h / 2, 0.0), H - crop_h)
        scale = out_w / crop_w
        geo = _Geometry(size, scale, (-x0 * scale, -y0 * scale), (x0, y0, x0 + crop_w, y0 + crop_h))
    else:
        # contain the subject box (with its margin) inside the frame; the rest is padding
        scale = min(out_w / max(need_w, 1.0), out_h / max(need_h, 1.0))
        geo = _Geometry(size, scale, (round(out_w / 2 - cx * scale), round(out_h / 2 - cy * scale)), None)
    framed = _apply(image.convert("RGB"), geo, Image.Resampling.LANCZOS, (0, 0, 0))
    cover = np.asarray(_apply(Image.new("L", image.size, 255), geo, Image.Resampling.NEAREST, 0))
    pad = np.where(cover > 0, 0, 255).astype(np.uint8)
    arr = np.asarray(framed)
    if pad.any():
        arr = _fill_padding(arr, pad)
    return Framing(Image.fromarray(arr), pad, geo.scale, geo.offset, geo.crop)


def _fill_padding(arr: np.ndarray, pad: np.ndarray) -> np.ndarray:
    """Fill padded pixels with the nearest edge colour, so the generator gets a sane start."""
    import cv2

    return cv2.inpaint(arr, pad, 3, cv2.INPAINT_TELEA) if pad.mean() < 200 else arr


def person_keep(services: Services, image: Image.Image, framing: Framing, face, face_keep: np.ndarray,
                include_hair: bool) -> tuple[np.ndarray, str]:
    """For engines that can't invent clothes: keep the whole person.

    The cut-out runs on the upload (before framing cuts the body at the frame's edges, which
    would teach GrabCut that clothing is background), seeded by a wide box from the face down to
    the bottom edge; the face, a neck bridge and the cut-out are united, vertical gaps (a light
    collar) bridged, and only the piece holding the face is kept, holes filled. Then it is framed.
    """
    import cv2

    from studio.vision import masks

    W, H = image.size
    x0, y0, x1, y1 = face.box
    fw, fh = x1 - x0, y1 - y0
    cx = (x0 + x1) / 2
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
    framed = masks.binarize(framing.map_mask(filled))
    return masks.union(face_keep, masks.feather(masks.erode(framed, 1), 2)), matte.backend


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
             progress: ProgressFn | None, cancel: CancelToken | None, name: str) -> list[Image.Image]:
    """One engine call per seed (each result reproducible from its own recorded seed), under the GPU lock."""
    images: list[Image.Image] = []

    def run() -> None:
        for i, seed in enumerate(seeds):
            if cancel is not None:
                cancel.raise_if_cancelled()
            job.seed = seed
            job.num_images = 1
            out = engine.inpaint(job, step_progress(progress, i * job.steps, len(seeds) * job.steps), cancel)
            img = out[0].convert("RGB")
            if img.size != out_size:
                img = img.resize(out_size, Image.Resampling.LANCZOS)
            images.append(img)

    services.jobs.run(run, name=name)
    return images


def paste_back(services: Services, generated: Image.Image, framed: Image.Image, keep: np.ndarray,
               feather: int) -> Image.Image:
    """Feathered paste of the kept pixels; outside the blend band they are exactly the framed upload."""
    return services.vision.paste_back(generated, framed, keep, feather_px=feather)


def save_all(services: Services, workflow: str, engine_name: str, images: list[Image.Image], seeds: list[int],
             request: AdRequest, prompt_en: str, settings: dict, model_ids: list[str],
             kept_owner_pixels: bool = True) -> list[Record]:
    """The saved records (a `SavedRecords` list: `.failed` names the images that could not be
    stored). Raises the store's error only when nothing at all was saved."""
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


def prompt_notice(source: str) -> Notice:
    known = ("llm", "glossary", "owner")
    return Notice(f"workflow.prompt_source.{source if source in known else 'glossary'}")


def model_ids(engine: Engine, used_control: bool) -> list[str]:
    """What produced a result, for the history row: the engine's models (ControlNet only if used)."""
    ids = list(getattr(engine, "model_ids", None) or [engine.name])
    if not used_control:
        ids = [i for i in ids if "controlnet" not in i]
    return ids

