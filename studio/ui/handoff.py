"""Hand-offs between tabs: every ad result has 「문구 넣기」 (to the Overlay tab) and 「영상 만들기」
(to the Video tab); the Overlay tab has 「영상 만들기」 too. They carry the picture (its history
number), the industry, the shop name and the words. The Overlay and Video tabs also open on the
newest result by themselves (no 「기록 새로 고침」 needed).

The tabs expose what is carried under their "_handoff" key (see tabs/ads.py, overlay.py, video.py).
"""

from __future__ import annotations

import re
from typing import Any

import gradio as gr

from studio.errors import StudioError
from studio.services import Services
from studio.ui.common import guarded

_ID = re.compile(r"#(\d+)")


def result_id(gallery: Any) -> int | None:
    """The history number of the first picture in a results gallery (its caption reads "#12")."""
    for item in gallery or []:
        caption = None
        if isinstance(item, (list, tuple)) and len(item) > 1:
            caption = item[1]
        elif isinstance(item, dict):
            caption = item.get("caption")
        elif hasattr(item, "caption"):
            caption = item.caption
        m = _ID.search(str(caption or ""))
        if m:
            return int(m.group(1))
    return None


def latest_id(services: Services) -> int | None:
    from studio.workflows.overlay import history_images

    recs = history_images(services, 1)
    return recs[0].id if recs else None


def _industry(services: Services, industry_id: str | None):
    for ind in services.presets.industries:
        if ind.id == industry_id:
            return ind
    return None


def wire_handoffs(services: Services, tabs: gr.Tabs, tab_items: dict[str, Any], parts: dict[str, Any]) -> None:
    """Connect the hand-off buttons, and refresh the Overlay/Video pickers when their tab opens."""
    from studio.workflows.gallery import safe_history_choices
    from studio.ui.tabs.overlay import _thumbs

    lang = services.lang
    ov = (parts.get("overlay") or {}).get("_handoff") if isinstance(parts.get("overlay"), dict) else None
    vd = (parts.get("video") or {}).get("_handoff") if isinstance(parts.get("video"), dict) else None
    ads = {k: p["_handoff"] for k, p in parts.items() if isinstance(p, dict) and "_handoff" in p
           and "to_overlay" in p["_handoff"]}

    def _overlay_updates(rid: int | None, industry_id: str | None, shop: str | None, words: str | None) -> list:
        items, ids = _thumbs(services)
        ind = _industry(services, industry_id)
        return [gr.Tabs(selected="overlay"),
                gr.update(choices=safe_history_choices(services, "overlay"), value=rid), items, ids,
                gr.update(value=ind.id) if ind else gr.update(),
                gr.update(value=ind.copy_tone) if ind else gr.update(),
                gr.update(value=shop) if shop else gr.update(),
                gr.update(value=words) if words else gr.update()]

    def _video_updates(rid: int | None, shop: str | None, words: dict[str, str]) -> list:
        choices = safe_history_choices(services, "video")
        return [gr.Tabs(selected="video"), gr.update(choices=choices, value=rid), gr.update(choices=choices),
                gr.update(value=shop) if shop else gr.update()] + [
                gr.update(value=words[k]) if words.get(k) else gr.update()
                for k in ("headline", "sub_copy", "cta", "badge")]

    def _need(rid: int | None) -> int:
        if rid is None:
            raise StudioError("ui.handoff.no_result")
        return rid

    if ov:
        ov_out = [tabs, ov["record"], ov["history"], ov["thumb_ids"], ov["industry"], ov["tone"], ov["shop"],
                  ov["product"]]
        for wf, a in ads.items():
            @guarded(lang)
            def to_overlay(gallery: Any, industry_id: str, shop: str, words: str) -> list:
                return _overlay_updates(_need(result_id(gallery)), industry_id, shop, words)

            a["to_overlay"].click(to_overlay, [a["results"], a["industry"], a["shop"], a["words"]], ov_out,
                                  api_name=f"{wf}_to_overlay")

        @guarded(lang)
        def open_overlay(current: Any) -> list:
            """The Overlay tab opens on the newest result when nothing is picked yet."""
            items, ids = _thumbs(services)
            value = current if current not in (None, "") else latest_id(services)
            return [gr.update(choices=safe_history_choices(services, "overlay"), value=value), items, ids]

        if "overlay" in tab_items:
            tab_items["overlay"].select(open_overlay, [ov["record"]], [ov["record"], ov["history"], ov["thumb_ids"]],
                                        api_name=False)
    if vd:
        vd_out = [tabs, vd["pick"], vd["more"], vd["shop"], vd["headline"], vd["sub_copy"], vd["cta"], vd["badge"]]
        for wf, a in ads.items():
            @guarded(lang)
            def to_video(gallery: Any, shop: str) -> list:
                return _video_updates(_need(result_id(gallery)), shop, {})

            a["to_video"].click(to_video, [a["results"], a["shop"]], vd_out, api_name=f"{wf}_to_video")
        if ov:
            @guarded(lang)
            def overlay_to_video(rid: Any, shop: str, headline: str, sub_copy: str, cta: str, badge: str) -> list:
                from studio.workflows.overlay import record_id

                rid = record_id(rid) or latest_id(services)
                return _video_updates(_need(rid), shop, {"headline": headline, "sub_copy": sub_copy, "cta": cta,
                                                         "badge": badge})

            ov["to_video"].click(overlay_to_video, [ov["record"], ov["shop"], ov["headline"], ov["sub_copy"],
                                                    ov["cta"], ov["badge"]], vd_out, api_name="overlay_to_video")

        @guarded(lang)
        def open_video(current: Any) -> list:
            choices = safe_history_choices(services, "video")
            value = current if current not in (None, "") else latest_id(services)
            return [gr.update(choices=choices, value=value), gr.update(choices=choices)]

        if "video" in tab_items:
            tab_items["video"].select(open_video, [vd["pick"]], [vd["pick"], vd["more"]], api_name=False)
