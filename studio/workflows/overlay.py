"""The Overlay workflow: Korean copy + hashtags, text placed on a photo, every SNS size exported
and recorded in the history (one row, the other sizes and the caption .txt as its extra files).

Pure Python (no gradio): the Overlay tab only wires widgets to these functions. Every input is
checked here, so an API caller gets the same plain messages as the owner: images go through the
safe loader (`studio.vision.io.load_image`, with its limits and its decode budget), texts through
`studio.text.limits`, colours and history ids are validated.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from PIL import Image

from studio.errors import InputError, StudioError
from studio.i18n import t
from studio.render.export import export_all
from studio.render.overlay import OverlaySpec, render_overlay
from studio.services import Services
from studio.text.copywriter import TONES, AdCopy, CopyRequest, clean_tag, write_copy_detailed
from studio.text.limits import limit
from studio.workflows.gallery import (  # noqa: F401  (the gallery helpers live in studio.workflows.gallery)
    history_choices, history_images, local_time, record_id, record_label, source_image)

log = logging.getLogger(__name__)

CORNERS = ("top_left", "top_right", "bottom_left", "bottom_right")
DEFAULT_SIZES = ("ig_portrait", "ig_square", "ig_story")
EFFECTS = ("auto", "shadow", "outline")


def load_logo(logo: Any) -> Image.Image | None:
    """The shop's logo (transparency kept), through the same safe loader with a small minimum side."""
    from studio.vision.io import load_image

    if logo is None or (isinstance(logo, str) and not logo.strip()):
        return None
    return load_image(logo, min_side=16, max_side=2048).rgba()


# --- copy ----------------------------------------------------------------------------------------
# one pass: HTML's five characters plus Markdown's punctuation become entities
_MD_SAFE = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;",
                          **{c: f"&#{ord(c)};" for c in "[]()*_`!#|~\\{}"}})


def md_text(text: object) -> str:
    """Plain text for Markdown: HTML-escaped (no tags/scripts) and Markdown-inert (no links, emphasis)."""
    return str(text).translate(_MD_SAFE)


def copy_summary_md(copy: AdCopy, source: str, note: str, lang: str) -> str:
    """A short Markdown summary; every piece of copy is escaped (it may come from an LLM)."""
    src = t(f"overlay.source.{source}", lang)
    return (f"**{md_text(src)}** · {md_text(note)}  \n"
            f"**{md_text(copy.headline)}** — {md_text(copy.sub_copy)} · {md_text(copy.cta)}")


def _llm(services: Services, use_llm: bool, model: str | None) -> Any:
    if not use_llm:
        return None
    client = services.llm
    if model and model != client.model:
        if len(str(model)) > 100 or not re.fullmatch(r"[\w.:/@+-]+", str(model)):
            raise InputError("overlay.bad_model")
        client = client.with_model(model)
    return client


def copy_request(*, industry: str, shop: str, product: str, offer: str, tone: str, target: str,
                 english_tags: bool = False, services: Services) -> CopyRequest:
    services.presets.industry(industry)  # an unknown industry says so in words
    return CopyRequest.checked(industry=industry, shop_name=shop or "", product=product or "", offer=offer or "",
                               tone=tone if tone in TONES else "friendly", target=target or "",
                               english_tags=bool(english_tags))


def generate_copy(services: Services, *, industry: str, shop: str, product: str, offer: str, tone: str,
                  target: str, use_llm: bool, model: str | None = None, english_tags: bool = False,
                  seed: int | None = None) -> tuple[str, str, str, str, str, str]:
    """(headline, sub_copy, cta, caption, hashtags line, summary markdown)."""
    req = copy_request(industry=industry, shop=shop, product=product, offer=offer, tone=tone, target=target,
                       english_tags=english_tags, services=services)
    res = write_copy_detailed(req, services.presets, _llm(services, use_llm, model), seed=seed)
    c = res.copy
    return (c.headline, c.sub_copy, c.cta, c.caption, c.hashtag_line(),
            copy_summary_md(c, res.source, res.note(services.lang), services.lang))


def stream_caption(services: Services, *, industry: str, shop: str, product: str, offer: str, tone: str,
                   target: str, model: str | None = None) -> Iterator[str]:
    """Stream a fresh caption from the LLM, piece by piece (the textbox shows it growing)."""
    req = copy_request(industry=industry, shop=shop, product=product, offer=offer, tone=tone, target=target,
                       services=services)
    llm = _llm(services, True, model)
    ind = services.presets.industry(req.industry)
    prompt = (f"{ind.name_ko} '{req.shop_name or ind.name_ko}'의 {req.product or ind.products_ko[0]} 인스타그램 "
              f"캡션을 3~5줄로 써 주세요. 혜택: {req.offer or '없음'}. 타깃: {req.target or '일반 고객'}. "
              f"말투: {req.tone}. 해시태그는 빼고 본문만 쓰세요. 다른 업종의 이모지는 쓰지 마세요.")
    text = ""
    for piece in llm.stream_chat([{"role": "user", "content": prompt}]):
        text += piece
        if len(text) > 2200:
            break
        yield text


def parse_hashtags(line: str) -> list[str]:
    tags: list[str] = []
    seen: set[str] = set()
    for raw in limit(line, "hashtags").replace(",", " ").split():
        tag = clean_tag(raw)
        if tag and tag.lower() not in seen:
            seen.add(tag.lower())
            tags.append(tag)
    return tags


# --- placing the text ----------------------------------------------------------------------------
_RGB = re.compile(r"^rgba?\(\s*([\d.]+)\s*,\s*([\d.]+)\s*,\s*([\d.]+)\s*(?:,\s*[\d.]+\s*)?\)$", re.I)
_HEX = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")


def hex_colour(value: str | None, default: str = "#e4572e") -> str:
    """gr.ColorPicker gives '#rrggbb' or 'rgba(r, g, b, a)'; anything else is refused in words."""
    v = (value or "").strip()
    if not v:
        return default
    if _HEX.match(v):
        return v if len(v) == 7 else "#" + "".join(c * 2 for c in v[1:])
    m = _RGB.match(v)
    if m:
        nums = [float(x) for x in m.groups()]
        if all(math.isfinite(n) and 0 <= n <= 255 for n in nums):
            return "#" + "".join(f"{int(round(n)):02x}" for n in nums)
    raise InputError("input.bad_colour")


@dataclass(frozen=True)
class OverlayForm:
    """What the owner set in the Overlay tab (texts already within their limits)."""

    headline: str = ""
    sub_copy: str = ""
    cta: str = ""
    layout: str = "bottom_bar"
    badge: str = ""
    badge_corner: str = "top_right"
    accent: str = "#e4572e"
    effect: str = "auto"
    logo: Any = None
    logo_corner: str = "top_left"
    ai_label: bool = True


def make_spec(*, headline: str, sub_copy: str, cta: str, layout: str, badge: str, badge_corner: str, accent: str,
              effect: str, logo: Any, logo_corner: str, ai_label: bool, services: Services | None = None) -> OverlaySpec:
    if services is not None:
        from studio.render.overlay import load_layouts

        if layout not in load_layouts(services.presets):
            layout = "bottom_bar"
    logo_img = load_logo(logo)
    return OverlaySpec(headline=limit(headline, "headline").strip(), sub_copy=limit(sub_copy, "sub_copy").strip(),
                       cta=limit(cta, "cta").strip(), layout=layout,
                       badge_text=limit(badge, "badge").replace("\\n", "\n"),
                       badge_corner=badge_corner if badge_corner in CORNERS else None,
                       accent=hex_colour(accent), effect=effect if effect in EFFECTS else "auto",
                       logo=logo_img, logo_corner=logo_corner if logo_corner in CORNERS else None,
                       ai_label=bool(ai_label))


def preview(services: Services, *, upload: Any, record_id: object, size_id: str, **spec_fields: Any) -> Image.Image:
    image, _parent, focus = source_image(services, upload, record_id)
    spec = make_spec(services=services, **spec_fields)
    return render_overlay(image, spec, services.presets.sns(size_id), focus_box=focus)


@dataclass(frozen=True)
class OverlayExport:
    gallery: list[tuple[Image.Image, str]]
    paths: list[str]
    message: str
    record_id: int


def failure_reason(exc: StudioError, lang: str) -> str:
    """A few words for why a file was not saved (for 'saved X, not Y because ...')."""
    return t("store.why_disk_full" if exc.key == "store.disk_full" else "store.why_write", lang)


def export(services: Services, *, upload: Any, record_id: object, sizes: list[str], caption: str, hashtags: str,
           **spec_fields: Any) -> tuple[list[tuple[Image.Image, str]], list[str], str]:
    """Render every selected size and store them (one record + extra files + caption .txt)."""
    res = export_detailed(services, upload=upload, record_id=record_id, sizes=sizes, caption=caption,
                          hashtags=hashtags, **spec_fields)
    return res.gallery, res.paths, res.message


def export_detailed(services: Services, *, upload: Any, record_id: object, sizes: list[str], caption: str,
                    hashtags: str, **spec_fields: Any) -> OverlayExport:
    from studio.store.history import NewRecord

    if not sizes:
        raise InputError("overlay.no_sizes")
    spec = make_spec(services=services, **spec_fields)
    if not spec.headline:
        raise InputError("overlay.no_headline")
    caption = limit(caption, "caption")
    tags = parse_hashtags(hashtags or "")
    image, parent, focus = source_image(services, upload, record_id)
    sns = [services.presets.sns(s) for s in dict.fromkeys(sizes)]
    outs = export_all(image, spec, sns, focus_box=focus)
    copy = {"headline": spec.headline, "sub_copy": spec.sub_copy, "cta": spec.cta, "caption": caption}
    settings = {"layout": spec.layout, "badge": spec.badge_text, "accent": spec.accent, "effect": spec.effect,
                "ai_label": spec.ai_label, "sizes": [s.id for s in sns]}
    if focus is not None:
        settings["focus_box"] = list(focus)
    first = sns[0].id
    rec = services.store.save_image(outs[first], NewRecord(
        workflow="overlay", engine="overlay", model_ids=[], seed=None, prompt_ko=spec.headline, prompt_en="",
        settings=settings, copy=copy, hashtags=tags, kept_owner_pixels=True, parent_id=parent))
    caption_txt = caption.rstrip() + ("\n\n" + " ".join(f"#{x}" for x in tags) if tags else "") + "\n"
    files: dict[str, bytes | Image.Image] = {s: outs[s] for s in outs if s != first}
    files["caption.txt"] = caption_txt.encode("utf-8")
    try:
        rec = services.store.add_files(rec.id, files)
        message = t("overlay.saved", services.lang, id=rec.id, n=len(sns))
    except StudioError as exc:
        # the first size is saved and recorded; say exactly that, and what failed
        log.warning("overlay #%d: extra sizes not saved: %s", rec.id, exc)
        message = t("store.partial", services.lang, saved=1, failed=len(files), why=failure_reason(exc, services.lang),
                    ids=f"#{rec.id}")
    gallery = [(outs[s.id], f"{s.name(services.lang)} · {s.width}×{s.height}") for s in sns]
    paths = [str(rec.path)] + [str(p) for p in rec.extra_paths]
    return OverlayExport(gallery, paths, md_text(message), rec.id)
