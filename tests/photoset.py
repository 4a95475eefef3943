"""The labelled photo set (tests/data/photoset/*.json): real photos shipped by installed packages,
each with its subject drawn as polygons. Used by benchmarks/lite_quality.py and the tests.

`source` is `skimage:<file>` (inside the installed scikit-image wheel) or
`debian:<package>:<absolute path>` (installed by scripts/test.sh).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

DATA = Path(__file__).resolve().parent / "data" / "photoset"


@dataclass
class Photo:
    name: str
    source: str
    mode: str          # "person" | "product"
    kind: str          # person, group, product-plain, product-busy, animal, scene
    polygons: list

    @property
    def path(self) -> Path:
        if self.source.startswith("skimage:"):
            import skimage

            return Path(os.path.dirname(skimage.__file__)) / "data" / self.source.split(":", 1)[1]
        return Path(self.source.split(":", 2)[2])

    @property
    def package(self) -> str:
        return "scikit-image" if self.source.startswith("skimage:") else self.source.split(":", 2)[1]

    def available(self) -> bool:
        return self.path.is_file()

    def image(self) -> Image.Image:
        with Image.open(self.path) as im:
            return im.convert("RGB")

    def mask(self, size: tuple[int, int]) -> np.ndarray:
        """The drawn subject, 255 inside (polygons filled)."""
        w, h = size
        out = np.zeros((h, w), np.uint8)
        for poly in self.polygons:
            cv2.fillPoly(out, [np.asarray(poly, np.int32).reshape(-1, 1, 2)], 255)
        return out

    def box(self, size: tuple[int, int], pad: float = 0.04) -> tuple[int, int, int, int]:
        """The box an owner would draw: the subject's bounds plus a little room."""
        ys, xs = np.nonzero(self.mask(size))
        w, h = size
        px, py = int(pad * w), int(pad * h)
        return (max(0, int(xs.min()) - px), max(0, int(ys.min()) - py),
                min(w, int(xs.max()) + 1 + px), min(h, int(ys.max()) + 1 + py))


def load_set() -> list[Photo]:
    out = []
    for f in sorted(DATA.glob("*.json")):
        d = json.loads(f.read_text())
        out.append(Photo(f.stem, d["source"], d["mode"], d["kind"], d["polygons"]))
    return out


def iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a >= 128, b >= 128
    union = float((a | b).sum())
    return float((a & b).sum()) / union if union else 1.0
