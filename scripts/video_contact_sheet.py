"""Contact sheet of motion clips from the real photo set: frames 0, 1, 2.5, 4 s and the last of each
clip, one row per (photo, layout). `python scripts/video_contact_sheet.py out.png [photo ...]`.
Clips go through the real workflow (subject cut-out, encoder) at a reduced size."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    from photoset import load_set

    from studio.config import Settings
    from studio.render.overlay import OverlaySpec, load_layouts
    from studio.render.video import read_frames
    from studio.services import build_services
    from studio.workflows.video import VideoRequest, run

    out = Path(sys.argv[1])
    names = sys.argv[2:] or ["messi", "astronaut", "basketball_group", "coffee", "grace_hopper", "palace",
                             "motorcycle", "orange", "plant", "camera"]
    layouts = list(load_layouts())
    photos = {p.name: p for p in load_set()}
    tmp = Path(tempfile.mkdtemp(prefix="contact-"))
    (tmp / "models").mkdir()
    settings = Settings(models_dir=tmp / "models", outputs_dir=tmp / "outputs", engine="lite",
                        ollama_host="http://127.0.0.1:9")
    services = build_services(settings)
    rows = []
    styles = ["auto", "zoom", "pan", "parallax"]
    for i, name in enumerate(names):
        img = photos[name].image()
        for j, layout in enumerate(layouts):
            style = styles[(i + j) % len(styles)]
            spec = OverlaySpec(headline="주말 한정 특가 세일", sub_copy="전 품목 30% 할인", cta="지금 방문하세요",
                               badge_text="30%\n할인" if layout == "price_badge" else "", layout=layout)
            from studio.engines.motion import EndCard

            req = VideoRequest(image=img, seconds=5, style=style, overlay=spec, scale=0.25,
                               end_card=EndCard(shop_name="동네 가게", tagline="매일 10시 오픈"))
            res = run(req, services)
            frames = list(read_frames(res.path))
            picks = [0, 30, 75, 120, len(frames) - 1]
            cells = [frames[k] for k in picks]
            row = np.concatenate([np.pad(c, ((0, 0), (0, 4), (0, 0))) for c in cells], axis=1)
            label = Image.new("RGB", (row.shape[1], 18), (255, 255, 255))
            ImageDraw.Draw(label).text((4, 3), f"{name} {layout} {style}: " + " | ".join(
                n.text("en")[:40] for n in res.notices), fill=(0, 0, 0))
            rows.append(np.concatenate([np.asarray(label), row], axis=0))
            print(name, layout, style, [n.key for n in res.notices], flush=True)
    sheet = np.concatenate(rows, axis=0)
    Image.fromarray(sheet).save(out)
    services.store.close()


if __name__ == "__main__":
    main()
