"""Headless subcommands of `launch.py` (no gradio).

Each subcommand is one module here with two functions:

- `add_arguments(parser)`: its own flags (the common flags such as --engine, --outputs-dir and
  --lang are added by launch.py to every subcommand);
- `run(settings, args) -> int`: the exit code (0 ok, 2 bad input with a clear message on stderr).

Modules must stay cheap to import (no torch, no model loads): launch.py imports them all to build
its parser. Register a new one in `SUBCOMMANDS`.
"""

from __future__ import annotations

# name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "setup": ("studio.cli.setup", "one-time preparation: fetch the bundled photo-recognition models (hash-checked) and compile the matting code"),
    "stock": ("studio.cli.stock", "a batch of stock images with metadata, CSV and ZIP (--mode, --keywords, --count, --out, --ray-address)"),
    "demo": ("studio.cli.demo", "write sample ads (coffee product, astronaut person) into outputs/ with the active engine"),
    "ad": ("studio.cli.ad", "make one ad from a photo without the browser; prints one JSON line (path, layout, confidence, faces, notices)"),
    "video": ("studio.cli.video", "make a vertical ad clip from an ad image (motion without weights, or LTX/Wan)"),
}
