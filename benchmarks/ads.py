"""Ad workflow timings on this machine.

    python benchmarks/ads.py

- lite product ad at 1080x1350 from skimage `coffee` (automatic cut-out): median seconds, warm
  (target <= 2 s);
- tiny-engine person workflow at 1024x1024 engine size (Instagram square output): the time spent
  outside the engine call (faces, masks, prompt, paste-back, PNG + history), median (target <= 0.5 s).

Ends with one JSON line.
"""

from __future__ import annotations

import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from studio.config import REPO_ROOT, Settings  # noqa: E402
from studio.schema import GenerationOptions, PersonRequest, ProductRequest  # noqa: E402
from studio.services import build_services  # noqa: E402
from studio.vision.io import load_image  # noqa: E402
from studio.workflows import person, product  # noqa: E402

RUNS = 5


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    from skimage import data

    with tempfile.TemporaryDirectory() as tmp:
        base = Settings(models_dir=Path(tmp) / "models", outputs_dir=Path(tmp) / "outputs",
                        presets_dir=REPO_ROOT / "presets", ollama_host="http://127.0.0.1:9")
        base.models_dir.mkdir(parents=True)

        lite = build_services(base.with_(engine="lite"))
        cup = load_image(data.coffee()).image
        req = ProductRequest(image=cup, industry="cafe", style="warm", prompt_ko="따뜻한 라떼",
                             sns_size="ig_portrait", options=GenerationOptions(seed=1))
        product.run(req, lite)  # warm-up: VisionKit, presets, backdrop caches
        lite_s = []
        for _ in range(RUNS):
            t0 = time.perf_counter()
            res = product.run(req, lite)
            lite_s.append(time.perf_counter() - t0)
        assert res.images[0].size == (1080, 1350)
        lite.store.close()

        tiny = build_services(base.with_(engine="tiny"))
        face = load_image(data.astronaut()).image
        preq = PersonRequest(image=face, industry="fitness", sns_size="ig_square",
                             options=GenerationOptions(steps=2, seed=1))
        res = person.run(preq, tiny)  # warm-up: builds and loads the tiny set
        outside, engine = [], []
        for _ in range(RUNS):
            res = person.run(preq, tiny)
            total = sum(res.timings.values())
            engine.append(res.timings["engine"])
            outside.append(total - res.timings["engine"])
        engine_size = res.records[0].settings["engine_size"]
        tiny.store.close()

    lite_med = statistics.median(lite_s)
    out_med = statistics.median(outside)
    print(f"lite product ad 1080x1350: median {lite_med:.2f} s over {RUNS} warm runs ({', '.join(f'{s:.2f}' for s in lite_s)})")
    print(f"tiny person workflow at engine size {engine_size[0]}x{engine_size[1]}: outside the engine "
          f"median {out_med:.3f} s (engine {statistics.median(engine):.2f} s)")
    print("  last run stages: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in res.timings.items()))
    print(json.dumps({"bench": "ads", "lite_product_s": round(lite_med, 3), "target_lite_product_s": 2.0,
                      "tiny_person_outside_engine_s": round(out_med, 3), "target_outside_engine_s": 0.5,
                      "tiny_engine_size": engine_size,
                      "ok": lite_med <= 2.0 and out_med <= 0.5}))


if __name__ == "__main__":
    main()
