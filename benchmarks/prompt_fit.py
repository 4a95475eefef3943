"""Prompt fitting cost on very long prompts (the estimator tokenizer). Prints ONE line of JSON.

Before: one token count per dropped word, so cost grew with the square of the length (20 KB took
55 s). Now the removal order is fixed and the shortest fitting removal is found by bisection.
Targets: a 200 KB prompt fits in under 2 s, and 10x the text costs under 20x the time (near-linear).
The owner-facing limit (studio/text/limits.py) stops such prompts long before; this measures the
algorithm itself, bypassing the limit. Run: python benchmarks/prompt_fit.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from studio.text.prompts import P_SCENE, P_SUBJECT, Fragment, PromptTokenizers, _fit  # noqa: E402


def seconds(n_bytes: int) -> float:
    tok = PromptTokenizers()
    words = ("sunlit wooden table latte art warm morning " * (n_bytes // 40 + 1))[:n_bytes].split()
    half = len(words) // 2
    frags = [Fragment(" ".join(words[:half]), P_SUBJECT, 0)] + [
        Fragment(" ".join(words[half + i: half + i + 8]), P_SCENE, i) for i in range(0, len(words) - half, 8)]
    t0 = time.perf_counter()
    text, _dropped = _fit(frags, lambda s: tok.count_clip(s) <= tok.clip_budget)
    took = time.perf_counter() - t0
    if tok.count_clip(text) > tok.clip_budget:
        raise SystemExit("fit did not fit")
    return took


def main() -> None:
    s20, s200 = seconds(20_000), seconds(200_000)
    ratio = s200 / max(s20, 1e-6)
    print(json.dumps({"fit_20kb_s": round(s20, 3), "fit_200kb_s": round(s200, 3), "ratio_10x": round(ratio, 1),
                      "target_200kb_s": 2.0, "target_ratio": 20.0, "ok": s200 < 2.0 and ratio < 20.0}))


if __name__ == "__main__":
    main()
