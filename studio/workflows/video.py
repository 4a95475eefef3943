"""Video ad: an ad image (or several) -> a 5-15 s vertical clip, saved to the history.

validate (image, length, size, style; the music file before any rendering) -> subject cut-out
(parallax for motion clips, the kept region for AI clips) -> prompt (AI engines: the owner's Korean
words converted like image prompts) -> engine.image2video -> frames streamed into the MP4 encoder
(H.264 yuv420p, faststart, AAC music, the AI disclosure in the MP4 metadata) -> one history row
with the clip's settings.

Motion clips run on the CPU and do not take the GPU lock; AI engines run under it.
"""

from __future__ import annotations

import logging
import math
import random
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from studio.engines.base import Image2VideoJob
from studio.errors import InputError
from studio.runtime.jobs import CancelToken, ProgressFn
from studio.schema import Notice
from studio.services import Services
from studio.workflows.gallery import record_image

if TYPE_CHECKING:
    from studio.engines.motion import EndCard
    from studio.render.overlay import OverlaySpec
    from studio.render.video import ClipProbe
    from studio.store.history import Record

log = logging.getLogger(__name__)

SIZES: dict[str, str] = {"9:16": "ig_story", "1:1": "ig_square", "4:5": "ig_portrait"}  # -> SNS preset
MIN_SECONDS = 1.0     # the tab offers 5-15 s; shorter clips are allowed for previews and tests
MAX_SECONDS = 15.0
FPS = 30
MIN_SUBJECT, MAX_SUBJECT = 0.02, 0.85   # a cut-out covering less/more of the image is not a subject
MOTION_PROMPT = "smooth slow camera push-in, gentle natural motion, steady product, commercial video"


@dataclass
class VideoRequest:
    image: Image.Image | None                    # RGB, safe-loaded (studio.vision.io.load_image)
    seconds: float = 5.0
    size: str = "9:16"                           # one of SIZES
    style: str = "auto"                          # motion styles (studio.engines.motion.STYLES)
    engine: str | None = None                    # None: the task's active engine (auto/forced/selected)
    prompt_ko: str = ""                          # AI engines: the owner's Korean words
    prompt_en: str | None = None                 # the owner's edited English prompt, used verbatim
    industry: str = "cafe"
    overlay: "OverlaySpec | None" = None         # ad text to animate in (motion)
    keep_mask: np.ndarray | None = None          # 255 = subject; None: found automatically
    find_subject: bool = True
    keep_region: bool = False                    # AI: hold the kept product/face steady from the source
    focus_box: tuple[float, float, float, float] | None = None
    more_images: list[Image.Image] = field(default_factory=list)  # showcase: further ads, in order
    end_card: "EndCard | None" = None
    music: str | Path | None = None              # the owner's audio file
    seed: int = -1
    scale: float = 1.0                           # < 1: a smaller clip (previews, tests); sizes stay even
    parent_id: int | None = None
    strength: str = "normal"                     # motion: gentle | normal | strong (studio.engines.motion.STRENGTHS)
    source_ai: bool = False                      # the image was made by an AI engine (history / PNG metadata)


@dataclass
class VideoOutcome:
    record: "Record"
    path: Path
    probe: "ClipProbe"
    engine: str
    notices: list[Notice]
    timings: dict[str, float]


def clip_size(services: Services, size: str, scale: float = 1.0) -> tuple[int, int]:
    if size not in SIZES:
        raise InputError("video.bad_size", size=size)
    sns = services.presets.sns(SIZES[size])
    k = min(1.0, max(0.05, float(scale)))
    return max(64, int(round(sns.width * k / 2)) * 2), max(64, int(round(sns.height * k / 2)) * 2)


def validate(req: VideoRequest, services: Services) -> tuple[int, int]:
    from studio.engines.motion import STYLES

    if req.image is None:
        raise InputError("video.no_image")
    try:
        seconds = float(req.seconds)
    except (TypeError, ValueError):
        seconds = 0.0
    if not math.isfinite(seconds) or not MIN_SECONDS <= seconds <= MAX_SECONDS:
        raise InputError("video.bad_seconds", min=int(MIN_SECONDS), max=int(MAX_SECONDS), value=req.seconds)
    if req.style not in STYLES:
        raise InputError("video.bad_style", style=req.style)
    return clip_size(services, req.size, req.scale)


def subject_mask(services: Services, image: Image.Image, box: tuple | None) -> tuple[np.ndarray | None, str]:
    """The subject's mask (255) on `image` from the vision toolkit, or None when the cut-out does
    not look like a subject (too small or the whole picture)."""
    from studio.vision import masks

    ibox = tuple(int(round(v)) for v in box) if box is not None else None
    matte = services.vision.cutout(image, box=ibox, subject="product")
    binary = masks.binarize(matte.mask)
    cover = float((binary > 127).mean())
    if not MIN_SUBJECT <= cover <= MAX_SUBJECT:
        log.info("subject cut-out covers %.1f%% of the image: not used", 100 * cover)
        return None, matte.backend
    return binary, matte.backend


def motion_notices(req: VideoRequest, image: Image.Image, keep: np.ndarray | None, width: int,
                   height: int) -> list[Notice]:
    """What the motion clip does, in the owner's words: what moves, what stays as it was."""
    from studio.engines.motion import _cover_fits

    style = req.style
    if style == "auto":
        style = "parallax" if keep is not None else "zoom"
    out: list[Notice] = []
    if style == "parallax" and keep is None:
        style = "zoom"  # the engine says so itself (video.no_parallax)
    out.append(Notice(f"video.moved.{style}"))
    box = req.focus_box
    if box is None and keep is not None:
        ys, xs = np.nonzero(keep > 127)
        if len(xs):
            box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
    if not _cover_fits(image.size, box, width, height):
        out.append(Notice("video.designed_layout"))
    elif image.width > image.height * 1.05:  # a landscape photo in the vertical frame
        out.append(Notice("video.cropped_to_subject" if box is not None else "video.cropped"))
    out.append(Notice("video.photo_kept"))
    return out


AI_ENGINES_FREE = ("lite", "lite_t2i", "motion", "overlay", "")  # engines that make no AI pixels


def source_is_ai(path: str | Path | None = None, record: "Record | None" = None,
                 services: Services | None = None) -> bool:
    """Whether an AI engine made this image: a history record whose engine (or an ancestor's, for
    text added over an ad) generates pixels, or a file whose PNG metadata says so (A1111
    `parameters`, an IPTC DigitalSourceType of trained media)."""
    seen = 0
    while record is not None and seen < 8:
        seen += 1
        engine = str(getattr(record, "engine", "") or "")
        if not bool(getattr(record, "kept_owner_pixels", True)) or engine not in AI_ENGINES_FREE:
            return True
        parent = getattr(record, "parent_id", None)
        if not parent or services is None or parent == getattr(record, "id", None):
            return False
        try:
            record = services.store.get(int(parent))
        except Exception:  # a deleted parent: nothing more to learn
            return False
    if record is not None or path is None:
        return False
    try:
        from studio.store.metadata import read_metadata

        meta = read_metadata(path)
    except Exception:  # not a PNG, or unreadable metadata: nothing says AI
        return False
    dst = str(meta.get("digital_source_type") or "")
    return bool(str(meta.get("parameters") or "").strip()) or "trainedalgorithmicmedia" in dst.lower()


def _given(value: Any) -> bool:
    return value is not None and str(value).strip() not in ("", "None")


def request_from_form(services: Services | None = None, *, image: Image.Image | None = None,
                      history_id: Any = None, upload: str | Path | None = None,
                      more_ids: list[Any] | None = None, more_paths: list[str | Path] | None = None,
                      mode: str = "motion", engine: str | None = None, style: str = "auto",
                      strength: str = "normal", prompt_ko: str = "", seconds: float = 5, size: str = "9:16",
                      headline: str = "", sub_copy: str = "", cta: str = "", badge: str = "",
                      layout: str = "bottom_bar", shop: str = "", tagline: str = "",
                      logo: str | Path | None = None, music: str | Path | None = None, keep: bool = True,
                      seed: int = -1, scale: float = 1.0) -> VideoRequest:
    """THE video request, from the values of a form (the Video tab, the `video` command, the
    workflow registry): every value by keyword, empty strings and None meaning "not given".

    The image comes from an upload (a path), a history item, or is given loaded (`image`: the
    owner's own picture, no AI disclosure); `mode` "ai" picks the generative
    engine (the task's choice when it is one), "motion" the CPU engine, unless `engine` names one."""
    from studio.engines.motion import STRENGTHS, EndCard
    from studio.engines.registry import spec_for, specs_for
    from studio.render.overlay import OverlaySpec
    from studio.vision.io import load_image

    focus = None
    parent = None
    if image is not None:
        ai_source = False
    elif _given(upload):
        image = load_image(upload).image  # type: ignore[arg-type]
        ai_source = source_is_ai(path=upload)
    elif _given(history_id):
        image, rec, focus = record_image(services, history_id)
        parent = rec.id
        ai_source = source_is_ai(record=rec, services=services)
    else:
        raise InputError("video.no_image")
    more = [record_image(services, rid)[0] for rid in (more_ids or []) if _given(rid)]
    more += [load_image(p).image for p in (more_paths or []) if _given(p)]
    overlay = None
    if any(str(x or "").strip() for x in (headline, sub_copy, cta, badge)):
        overlay = OverlaySpec(headline=(headline or "").strip(), sub_copy=(sub_copy or "").strip(),
                              cta=(cta or "").strip(), badge_text=(badge or "").replace("\\n", "\n"),
                              layout=layout or "bottom_bar")
    end_card = None
    if (shop or "").strip():
        logo_img = load_image(logo, min_side=16).image if _given(logo) else None  # type: ignore[arg-type]
        end_card = EndCard(shop_name=shop.strip(), tagline=(tagline or "").strip(), logo=logo_img)
    if (mode == "ai" and not _given(engine) or _given(history_id) or more_ids) and services is None:
        raise ValueError("request_from_form needs the services for history items and the AI engine choice")
    if not _given(engine):
        engine = next(s.name for s in specs_for("image2video") if s.auto and not s.needs_weights)  # motion
        if mode == "ai":
            # the task's choice when it is generative, else the first AI engine (its load says what is missing)
            choice = services.engines.choice("image2video")
            generative = [s.name for s in specs_for("image2video") if s.needs_weights]
            engine = choice.name if spec_for("image2video", choice.name).needs_weights else generative[0]
    if strength not in STRENGTHS:
        raise InputError("video.bad_strength", strength=strength)
    try:
        secs = float(seconds or 0)
    except (TypeError, ValueError):
        secs = 0.0
    return VideoRequest(image=image, seconds=secs, size=size, style=style, engine=engine,  # type: ignore[arg-type]
                        prompt_ko=prompt_ko or "", overlay=overlay, focus_box=focus, more_images=more,
                        end_card=end_card, music=music if _given(music) else None, keep_region=bool(keep),
                        parent_id=parent, scale=scale, seed=int(seed), strength=strength, source_ai=ai_source)


def is_motion(engine: str | None, services: Services) -> bool:
    """Whether the clip runs on the CPU (no GPU queue): the motion engine, or the auto choice when
    that is it."""
    from studio.engines.registry import spec_for

    name = engine or services.engines.choice("image2video").name
    return not spec_for("image2video", name).needs_weights


def _prompt(req: VideoRequest, services: Services, engine: Any) -> tuple[str, str]:
    from studio.schema import AdRequest
    from studio.workflows.prompting import prompt_for

    ad = AdRequest(image=req.image, industry=req.industry, prompt_ko=req.prompt_ko, prompt_en=req.prompt_en)  # type: ignore[arg-type]
    choice = prompt_for(ad, services, engine, subject="product")
    text = choice.prompt_en if choice.source == "owner" else f"{choice.prompt_en}, {MOTION_PROMPT}"
    return text, choice.source


def run(req: VideoRequest, services: Services, progress: ProgressFn | None = None,
        cancel: CancelToken | None = None) -> VideoOutcome:
    from studio.engines.motion import Slide
    from studio.render.video import clip_metadata, encode_frames, load_music, poster, probe
    from studio.store.history import NewRecord
    from studio.workflows.common import Timer

    timer = Timer()
    width, height = validate(req, services)
    seconds = float(req.seconds)
    notices: list[Notice] = []
    audio = None
    if req.music:
        audio = load_music(req.music, seconds)  # a bad file fails here, before any rendering
        if audio.source_seconds and audio.source_seconds + 0.05 < seconds:
            notices.append(Notice("video.music_short"))
    timer.lap("music")

    name = req.engine or services.engines.choice("image2video").name
    engine = services.engines.get("image2video", name)
    ai = engine.caps.work_megapixels is not None  # a generative engine (works at its own size; GPU lock)
    image = req.image.convert("RGB")  # type: ignore[union-attr]
    keep = req.keep_mask
    backend = ""
    if keep is None and req.find_subject and (not ai or req.keep_region):
        keep, backend = subject_mask(services, image, req.focus_box)
    timer.lap("subject")
    if not ai:
        notices.extend(motion_notices(req, image, keep, width, height))
    if cancel is not None:
        cancel.raise_if_cancelled()

    prompt_en, prompt_source = "", ""
    if ai:
        prompt_en, prompt_source = _prompt(req, services, engine)
    seed = random.SystemRandom().randrange(0, 2**31 - 1) if req.seed < 0 else int(req.seed)
    slides = [Slide(image, keep, req.overlay, req.focus_box)]
    for extra in req.more_images:  # showcase slides: their own subject, the same text
        extra = extra.convert("RGB")
        mask = subject_mask(services, extra, None)[0] if req.find_subject and not ai else None
        slides.append(Slide(extra, mask, req.overlay))
    job = Image2VideoJob(image=image, prompt=prompt_en, width=width, height=height, seconds=seconds, fps=FPS,
                         seed=seed, keep_mask=keep if (not ai or req.keep_region) else None,
                         extras={"style": req.style, "strength": req.strength, "overlay": req.overlay, "end_card": req.end_card,
                                 "slides": slides, "focus_box": req.focus_box, "keep_region": req.keep_region})
    kept = not ai or (req.keep_region and keep is not None)
    # the AI disclosure only when an AI engine made the clip or the ad image it moves
    metadata = clip_metadata(kept_owner_pixels=kept, ai=ai or bool(req.source_ai))
    total = int(round(seconds * FPS))

    with tempfile.TemporaryDirectory(prefix="fitad-video-") as tmp:
        out = Path(tmp) / "clip.mp4"

        def make() -> None:
            result = engine.image2video(job, progress, cancel)
            notices.extend(result.notices)
            encode_frames(result.frames, out, width, height, FPS, total=result.frame_count() or total,
                          metadata=metadata, audio=audio, cancel=cancel)

        if ai:  # AI clips take the GPU; motion clips run on the CPU beside it
            services.jobs.run(make, name="video")
        else:
            make()
        timer.lap("render+encode")
        info = probe(out)
        data = out.read_bytes()
        cover = poster(out)
    settings = {"seconds": seconds, "fps": FPS, "size": req.size, "width": width, "height": height,
                "style": req.style, "frames": info.frames, "codec": info.codec, "pix_fmt": info.pix_fmt,
                "audio": info.audio_codec, "music": Path(str(req.music)).name if req.music else None,
                "slides": len(slides), "end_card": req.end_card is not None,
                "overlay": req.overlay is not None, "subject": backend or ("given" if req.keep_mask is not None else None),
                "keep_region": req.keep_region, "prompt_source": prompt_source, "strength": req.strength,
                "source_ai": bool(req.source_ai),
                "disclosure": metadata["comment"], "notices": [n.as_record() for n in notices]}
    rec = NewRecord(workflow="video", engine=engine.name, model_ids=list(getattr(engine, "model_ids", []) or []),
                    seed=seed, prompt_ko=req.prompt_ko, prompt_en=prompt_en, settings=settings,
                    kept_owner_pixels=kept, parent_id=req.parent_id)
    record = services.store.save_file(data, ".mp4", rec)
    record = services.store.add_files(record.id, {"poster": cover})  # the gallery's still of the clip
    timer.lap("store")
    return VideoOutcome(record=record, path=record.path, probe=info, engine=engine.name, notices=notices,
                        timings=timer.timings)

