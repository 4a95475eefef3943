"""`python launch.py demo`: the one-command proof that the main job works.

Writes a product ad from scikit-image's `coffee()` and a person ad from `astronaut()` into the
outputs folder with the active engine, and prints their paths and timings.
"""

from __future__ import annotations

import logging
import time

from studio.config import Settings
from studio.errors import StudioError

log = logging.getLogger(__name__)


def run_demo(settings: Settings) -> int:
    from skimage import data

    from studio.schema import GenerationOptions, PersonRequest, ProductRequest
    from studio.services import build_services
    from studio.vision.io import load_image
    from studio.workflows import person, product

    services = build_services(settings)
    choice = services.engines.choice("inpaint")
    print(f"engine: {choice.name} — {choice.reason(settings.lang)}", flush=True)
    opts = GenerationOptions(seed=42, steps=28 if choice.name == "flux" else 4)
    jobs = [
        ("product", product.run, ProductRequest(image=load_image(data.coffee()).image, industry="cafe",
                                                style="warm", prompt_ko="따뜻한 라떼, 아침 햇살",
                                                sns_size="ig_portrait", options=opts)),
        ("person", person.run, PersonRequest(image=load_image(data.astronaut()).image, industry="fitness",
                                             style="studio", prompt_ko="깔끔한 스튜디오, 자신감 있는 모습",
                                             sns_size="ig_portrait", options=opts)),
    ]
    failures = 0
    for name, run, req in jobs:
        t0 = time.perf_counter()
        try:
            result = run(req, services)
        except StudioError as exc:
            failures += 1
            print(f"{name}: FAILED — {exc.message(settings.lang)}", flush=True)
            continue
        secs = time.perf_counter() - t0
        for rec in result.records:
            print(f"{name}: {rec.path} ({rec.path.stat().st_size // 1024} KiB, {secs:.2f} s, seed {rec.seed})",
                  flush=True)
        for notice in result.notices:
            print(f"  · {notice.text(settings.lang)}", flush=True)
        detail = ", ".join(f"{k} {v:.2f}s" for k, v in result.timings.items())
        print(f"  timings: {detail}", flush=True)
    services.store.close()
    return 1 if failures else 0
