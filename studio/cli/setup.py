"""`python launch.py setup`: the one-time preparation (README's first command runs it).

Fetches the learned vision models that install with the studio (MediaPipe's TFLite files from the
pinned `mediapipe==0.10.21` wheel, hash-checked; see studio.runtime.bundled_models) and compiles
the matting code once, so that the first ad is as fast as the later ones. Does nothing when all is
in place. Progress is printed in the chosen language.
"""

from __future__ import annotations

import argparse

from studio.config import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    return None


def run(settings: Settings, args: argparse.Namespace) -> int:
    from studio.runtime.warmup import prepare

    prepare(settings.models_dir, say=lambda m: print(m, flush=True), lang=settings.lang)
    return 0
