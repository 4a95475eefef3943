"""One ad image to every selected SNS size: smart crop around the subject, then the overlay.

Text is laid out again for each size (its own safe zone and proportions), never cropped from a
finished image, so no size loses words at its edges.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from PIL import Image

from studio.render.crop import smart_crop
from studio.render.fonts import Fonts
from studio.render.overlay import LayoutDef, OverlaySpec, RenderResult, render_overlay_detailed

if TYPE_CHECKING:
    from studio.presets import SnsSize

log = logging.getLogger(__name__)


def export_all_detailed(image: Image.Image, spec: OverlaySpec, sizes: "Sequence[SnsSize]",
                        focus_box: Sequence[float] | None = None, fonts: Fonts | None = None,
                        layouts: dict[str, LayoutDef] | None = None) -> dict[str, RenderResult]:
    fonts = fonts or Fonts.default()
    box = tuple(focus_box) if focus_box is not None else spec.focus_box
    base = image.convert("RGB")
    out: dict[str, RenderResult] = {}
    for sns in sizes:
        cropped = smart_crop(base, sns.width, sns.height, box)
        out[sns.id] = render_overlay_detailed(cropped, spec, sns, fonts, layouts=layouts)
    return out


def export_all(image: Image.Image, spec: OverlaySpec, sizes: "Sequence[SnsSize]",
               focus_box: Sequence[float] | None = None, fonts: Fonts | None = None,
               layouts: dict[str, LayoutDef] | None = None) -> dict[str, Image.Image]:
    """{size id: image of exactly that size}."""
    return {k: v.image for k, v in export_all_detailed(image, spec, sizes, focus_box, fonts, layouts).items()}
