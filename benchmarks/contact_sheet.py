"""One contact sheet writer for the lite benchmarks (lite_quality and lite_quality_products)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw


def contact_sheet(rows: list, path: Path, thumb: int = 260) -> None:
    cols = 6
    h = int(thumb * 1350 / 1080)
    sheet = Image.new("RGB", (cols * thumb, ((len(rows) + cols - 1) // cols) * (h + 28)), "white")
    d = ImageDraw.Draw(sheet)
    for i, (name, img, label) in enumerate(rows):
        x, y = (i % cols) * thumb, (i // cols) * (h + 28)
        if img is not None:
            sheet.paste(img.resize((thumb - 4, h - 4), Image.Resampling.LANCZOS), (x + 2, y + 2))
        d.text((x + 4, y + h), name, fill="black")
        d.text((x + 4, y + h + 12), label, fill="black")
    sheet.save(path)
