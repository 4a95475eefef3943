"""Safe image loading: the one door every upload goes through.

`load_image(source)` accepts a path, raw bytes, a PIL image or a numpy array and returns a
`LoadedImage`: a plain RGB `PIL.Image` with no metadata, an optional alpha mask, and notices
(message keys + fields, translated by the UI). Unusable input raises `studio.errors.InputError`
with a key from `studio.i18n`, so the owner reads a Korean (or English) message.

What it guarantees, in order:
1. The format is identified by content (never by extension) and must be JPEG/MPO, PNG, WEBP,
   GIF, BMP or TIFF (HEIC/HEIF only when the `pillow_heif` plugin is importable).
2. The pixel count is read lazily from the header and compared with `max_pixels` BEFORE anything
   is decoded (decompression bombs). PIL's own `MAX_IMAGE_PIXELS` guard is neither relied on nor
   allowed to refuse an image that is within `max_pixels`; no PIL global is ever modified.
3. Images under `min_side` on a side are refused before decoding.
4. Animated images give their first frame plus a notice. A truncated JPEG is decoded as far as
   the data goes (notice); if less than half of it is readable, or another format is damaged,
   it is refused. `ImageFile.LOAD_TRUNCATED_IMAGES` is never touched.
5. EXIF orientation is applied; an embedded ICC profile is used to convert the colours to sRGB;
   then every piece of metadata (EXIF, GPS, XMP, ICC, comments) is dropped: the returned image is
   a fresh object with an empty `info`.
6. Any mode (1, L, P, PA, LA, RGBA, CMYK, I;16, I, F...) becomes RGB. Real transparency is
   returned separately as a uint8 mask (255 = opaque). Where the mask is 0 the RGB pixels are set
   to white, so invisible garbage colours never show; partially transparent pixels keep their
   (straight, un-premultiplied) colour unchanged.
7. Images longer than `max_side` on a side are downscaled with LANCZOS (aspect kept), with a notice.
"""

from __future__ import annotations

import io
import logging
import os
import struct
import threading
import time
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from studio.errors import InputError
from studio.i18n import t

log = logging.getLogger(__name__)

ImageSource = Union[str, os.PathLike, bytes, bytearray, memoryview, Image.Image, np.ndarray]

#: Formats PIL may open for us (identified by content). JPEG also yields "MPO" for multi-picture files.
ALLOWED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
#: Multi-image formats whose extra frames are not an animation (MPO: stereo/preview pictures).
_NOT_ANIMATION = frozenset({"MPO"})
#: ISO-BMFF brands used by HEIC/HEIF stills (iPhone photos).
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs",
                          b"mif1", b"msf1"})
#: A truncated JPEG is refused when less than this share of its rows could be decoded.
MIN_DECODED_FRACTION = 0.5
#: Errors PIL raises while parsing or decoding a damaged file.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, struct.error, zlib.error)


@dataclass(frozen=True)
class Notice:
    """Something the owner should know about a loaded image; translated late by the UI."""

    key: str
    fields: dict[str, Any] = field(default_factory=dict)

    def text(self, lang: str = "ko") -> str:
        return t(self.key, lang, **self.fields)


@dataclass
class LoadedImage:
    """A safely loaded upload.

    image: RGB, metadata-free (empty `info`, no EXIF/GPS/ICC), EXIF orientation applied.
    alpha: uint8 HxW mask (255 opaque) matching `image`, only when the source had real transparency.
    notices: what happened on the way (downscaled, first frame only, truncated...).
    source_format: the format identified from content ("JPEG", "PNG", "MPO"...; "PIL"/"ndarray"
        for in-memory inputs without a known format).
    original_size: (width, height) of the source after EXIF orientation, before any downscaling.
    """

    image: Image.Image
    alpha: np.ndarray | None
    notices: list[Notice]
    source_format: str
    original_size: tuple[int, int]

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size

    def messages(self, lang: str = "ko") -> list[str]:
        return [n.text(lang) for n in self.notices]

    def rgba(self) -> Image.Image:
        """The image with its alpha mask re-attached (fully opaque when there is none)."""
        out = self.image.copy()
        out.putalpha(Image.fromarray(self.alpha) if self.alpha is not None else 255)
        return out


class DecodeBudget:
    """A cap on the pixels being decoded at the same time, across every tab and session.

    Each `load_image` reserves its image's pixel count (read from the header, before decoding) and
    gives it back when done; a load that would exceed the cap waits, and after `wait_s` is refused
    with a message asking to try again. So several large uploads arriving together cost at most
    `max_pixels` worth of decoding memory (about 4 bytes a pixel, plus working copies), however
    many arrive. A resource guard like a lock, not a cache.
    """

    def __init__(self, max_pixels: int = 200_000_000, wait_s: float = 60.0) -> None:
        self.max_pixels = max_pixels
        self.wait_s = wait_s
        self.in_use = 0
        self.peak = 0
        self._cond = threading.Condition()

    @contextmanager
    def reserve(self, pixels: int) -> Iterator[None]:
        need = max(1, min(int(pixels), self.max_pixels))
        deadline = time.monotonic() + self.wait_s
        with self._cond:
            while self.in_use + need > self.max_pixels:
                left = deadline - time.monotonic()
                if left <= 0:
                    log.warning("decode budget exhausted (%d of %d pixels in use)", self.in_use, self.max_pixels)
                    raise InputError("input.busy_images")
                self._cond.wait(left)
            self.in_use += need
            self.peak = max(self.peak, self.in_use)
        try:
            yield
        finally:
            with self._cond:
                self.in_use -= need
                self._cond.notify_all()


#: The process-wide budget every upload goes through (two 100 MP photos decode at once, a third waits).
DECODE_BUDGET = DecodeBudget()


# --------------------------------------------------------------------------------------------
# public entry point
# --------------------------------------------------------------------------------------------

def load_image(source: ImageSource | None, *, name: str | None = None, min_side: int = 256,
               max_side: int = 8192, max_pixels: int = 100_000_000,
               budget: DecodeBudget | None = None) -> LoadedImage:
    """Load an upload safely; raise `InputError` (translatable) when it cannot be used."""
    if min_side < 1 or max_side < min_side or max_pixels < 1:
        raise ValueError(f"bad limits: min_side={min_side} max_side={max_side} max_pixels={max_pixels}")
    limits = _Limits(min_side, max_side, max_pixels, budget or DECODE_BUDGET)
    notices: list[Notice] = []

    if source is None or (isinstance(source, str) and not source.strip()):
        raise InputError("image.missing")
    if isinstance(source, np.ndarray):
        img = _from_array(source)
        _check_size(img.size, limits)
        return _finish(img, notices, "ndarray", limits)
    if isinstance(source, Image.Image):
        return _from_pil(source, notices, limits)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        data = _read_path(path)
        display = _display_name(name if name is not None else path.name)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        display = _display_name(name if name is not None else "upload")
    else:
        raise TypeError(f"load_image() cannot read a {type(source).__name__}")
    return _from_bytes(data, display, notices, limits)


# --------------------------------------------------------------------------------------------
# sources
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Limits:
    min_side: int
    max_side: int
    max_pixels: int
    budget: DecodeBudget


def _display_name(name: str) -> str:
    base = os.path.basename(str(name).replace("\\", "/")) or "upload"
    return base if len(base) <= 80 else base[:77] + "..."


def _read_path(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        log.info("upload path does not exist: %s", path)
        raise InputError("image.missing") from None
    except OSError as exc:  # a directory, no permission, I/O error
        log.warning("cannot read upload %s: %s", path, exc)
        raise InputError("image.io.unreadable", name=_display_name(path.name)) from exc


def _from_bytes(data: bytes, name: str, notices: list[Notice], limits: _Limits) -> LoadedImage:
    if not data:
        raise InputError("image.empty")
    im = _identify(data, name)
    fmt = im.format or "?"
    decoded: Image.Image | None = None
    try:
        _check_size(im.size, limits)  # header only: nothing decoded yet
        _check_target(im.size, limits)
        if getattr(im, "is_animated", False) and fmt not in _NOT_ANIMATION:
            notices.append(Notice("image.animated", {"frames": getattr(im, "n_frames", 0)}))
        with limits.budget.reserve(im.size[0] * im.size[1]):
            decoded = _decode(im, name, data, notices)
            return _finish(decoded, notices, fmt, limits)  # returns a fresh, detached image
    finally:
        im.close()
        if decoded is not None and decoded is not im:
            decoded.close()


def _from_pil(src: Image.Image, notices: list[Notice], limits: _Limits) -> LoadedImage:
    fmt = src.format or "PIL"
    _check_size(src.size, limits)  # for a lazily opened image this is still before decoding
    _check_target(src.size, limits)
    if getattr(src, "is_animated", False) and fmt not in _NOT_ANIMATION:
        notices.append(Notice("image.animated", {"frames": getattr(src, "n_frames", 0)}))
        try:
            src.seek(0)
        except (EOFError, OSError, ValueError) as exc:
            raise InputError("image.truncated") from exc
    with limits.budget.reserve(src.size[0] * src.size[1]):
        try:
            im = src.copy()  # decodes a lazy image; all later steps work on this copy, not the caller's
        except _DECODE_ERRORS as exc:
            log.info("in-memory image could not be decoded: %s", exc)
            raise InputError("image.truncated") from exc
        return _finish(im, notices, fmt, limits)


def _from_array(arr: np.ndarray) -> Image.Image:
    a = arr
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))) or a.size == 0:
        raise InputError("image.io.bad_array", shape="×".join(map(str, arr.shape)), dtype=str(arr.dtype))
    if a.dtype == np.uint8:
        pass
    elif a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif a.dtype == np.uint16:
        a = _u16_to_u8(a)
    elif np.issubdtype(a.dtype, np.floating):
        a = np.nan_to_num(a.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        scale = 255.0 if a.max(initial=0.0) <= 1.0 else 1.0  # 0..1 floats, else already 0..255
        a = np.clip(np.rint(a * scale), 0, 255).astype(np.uint8)
    elif np.issubdtype(a.dtype, np.integer):
        a = np.clip(a, 0, 255).astype(np.uint8)
    else:
        raise InputError("image.io.bad_array", shape="×".join(map(str, arr.shape)), dtype=str(arr.dtype))
    return Image.fromarray(np.ascontiguousarray(a))


# --------------------------------------------------------------------------------------------
# identification and decoding
# --------------------------------------------------------------------------------------------

_heif_state: dict[str, bool] = {}


def _heif_available() -> bool:
    """Register the optional HEIF plugin once; False when pillow_heif is not installed."""
    if "ok" not in _heif_state:
        try:
            from pillow_heif import register_heif_opener
        except ImportError:
            _heif_state["ok"] = False
        else:
            register_heif_opener()
            _heif_state["ok"] = True
    return _heif_state["ok"]


def _is_heif(data: bytes) -> bool:
    return len(data) >= 12 and data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS


def _identify(data: bytes, name: str) -> Image.Image:
    """Open lazily (header only) with an allowed format, or raise the right InputError."""
    allowed = ALLOWED_FORMATS
    if _is_heif(data):
        if not _heif_available():
            raise InputError("image.io.heic_no_plugin")
        allowed = allowed + ("HEIF",)
    try:
        with warnings.catch_warnings():  # max_pixels is checked right after; PIL's warning is noise
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data), formats=allowed)
    except Image.DecompressionBombError:
        # PIL's own guard (2 x Image.MAX_IMAGE_PIXELS) fired inside open(). Our limit decides,
        # so read the header size without that guard; refuse only if it exceeds max_pixels.
        im = _open_unguarded(data, allowed)
        if im is None:  # cannot happen for a file PIL just identified; refuse to be safe
            log.warning("header size unreadable after PIL bomb guard; refusing")
            mp = 2 * (Image.MAX_IMAGE_PIXELS or 0) / 1e6
            raise InputError("image.bomb", w="?", h="?", mp=mp) from None
        return im
    except UnidentifiedImageError:
        pass
    except _DECODE_ERRORS as exc:  # an allowed format whose header is damaged
        log.info("damaged image header in %s: %s", name, exc)
        raise InputError("image.truncated") from exc
    other = _identify_any(data)
    if other is not None:
        raise InputError("image.unsupported", fmt=other)
    raise InputError("image.not_image", name=name)


def _open_unguarded(data: bytes, formats: tuple[str, ...]) -> Image.Image | None:
    """Header-only open through the format's factory, without PIL's global pixel guard.

    Mirrors `Image.open`'s identification loop; used only after PIL refused the size, so that
    `max_pixels` (not `Image.MAX_IMAGE_PIXELS`) decides and the refusal can name the real size.
    """
    if any(fmt not in Image.OPEN for fmt in formats):
        Image.init()
    prefix = data[:16]
    for fmt in formats:
        entry = Image.OPEN.get(fmt)
        if entry is None:
            continue
        factory, accept = entry
        verdict = accept(prefix) if accept is not None else True
        if not verdict or isinstance(verdict, str):  # a str is PIL's "looks like it, but no"
            continue
        try:
            return factory(io.BytesIO(data), "")
        except (SyntaxError, IndexError, TypeError, struct.error):
            continue
    return None


def _identify_any(data: bytes) -> str | None:
    """Name a real but unsupported image format (PSD, ICO, TGA, AVIF...), else None."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                return im.format or "?"
    except Image.DecompressionBombError:
        return "?"
    except UnidentifiedImageError:
        return None
    except _DECODE_ERRORS:
        return None


def _check_size(size: tuple[int, int], limits: _Limits) -> None:
    w, h = int(size[0]), int(size[1])
    if w * h > limits.max_pixels:
        raise InputError("image.bomb", w=w, h=h, mp=w * h / 1e6)
    if min(w, h) < limits.min_side:
        raise InputError("image.too_small", w=w, h=h, min=limits.min_side)


def _target_size(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    w, h = size
    longest = max(w, h)
    if longest <= max_side:
        return w, h
    scale = max_side / longest
    return max(1, round(w * scale)), max(1, round(h * scale))


def _check_target(size: tuple[int, int], limits: _Limits) -> None:
    tw, th = _target_size(size, limits.max_side)
    if min(tw, th) < limits.min_side:
        raise InputError("image.io.extreme_aspect", w=size[0], h=size[1])


def _decode(im: Image.Image, name: str, data: bytes, notices: list[Notice]) -> Image.Image:
    """Decode the first frame. A truncated JPEG is retried with an end marker appended."""
    size = im.size
    try:
        im.load()
        return im
    except _DECODE_ERRORS as exc:
        first_error = exc
    if im.format not in ("JPEG", "MPO"):
        log.info("could not decode %s (%s): %s", name, im.format, first_error)
        raise InputError("image.truncated") from first_error
    # Same recovery PIL does under LOAD_TRUNCATED_IMAGES, without touching that global:
    # an EOI marker makes libjpeg finish, filling missing blocks with flat grey.
    try:
        retry = Image.open(io.BytesIO(data + b"\xff\xd9"), formats=("JPEG",))
        if retry.size != size:
            raise InputError("image.truncated")
        retry.load()
    except _DECODE_ERRORS as exc:
        log.info("truncated JPEG %s could not be recovered: %s", name, exc)
        raise InputError("image.truncated") from first_error
    fraction = _decoded_fraction(retry)
    if fraction < MIN_DECODED_FRACTION:
        log.info("truncated JPEG %s: only %.0f%% decodable; refusing", name, fraction * 100)
        raise InputError("image.truncated")
    log.info("truncated JPEG %s loaded (%.0f%% of rows decoded)", name, fraction * 100)
    notices.append(Notice("image.truncated_loaded", {"percent": round(fraction * 100)}))
    return retry


def _decoded_fraction(im: Image.Image) -> float:
    """Share of rows above the flat fill libjpeg leaves where a truncated file's data ended."""
    a = np.asarray(im)
    if a.ndim == 2:
        a = a[:, :, None]
    fill = a[-1, 0]
    flat_rows = np.all(a == fill, axis=(1, 2))  # rows made only of the fill colour
    not_flat = np.flatnonzero(~flat_rows)
    last_real = int(not_flat[-1]) + 1 if not_flat.size else 0
    return last_real / a.shape[0]


# --------------------------------------------------------------------------------------------
# normalisation
# --------------------------------------------------------------------------------------------

def _finish(im: Image.Image, notices: list[Notice], fmt: str, limits: _Limits) -> LoadedImage:
    im = _exif_transpose(im)
    original_size = im.size
    _check_size(original_size, limits)  # defensive: a decoder may report a different size
    rgb, alpha = _to_rgb(im)
    target = _target_size(rgb.size, limits.max_side)
    if target != rgb.size:
        rgb = rgb.resize(target, Image.Resampling.LANCZOS)
        if alpha is not None:
            alpha = np.asarray(Image.fromarray(alpha).resize(target, Image.Resampling.LANCZOS))
        notices.append(Notice("image.downscaled", {"w": target[0], "h": target[1]}))
    if alpha is not None:
        rgb_arr = np.array(rgb, dtype=np.uint8)
        rgb_arr[alpha == 0] = 255  # invisible pixels -> white, never garbage colours
        rgb = Image.fromarray(rgb_arr)
        alpha = np.ascontiguousarray(alpha, dtype=np.uint8)
    clean = _strip_metadata(rgb)
    return LoadedImage(image=clean, alpha=alpha, notices=notices, source_format=fmt,
                       original_size=original_size)


def _exif_transpose(im: Image.Image) -> Image.Image:
    try:
        out = ImageOps.exif_transpose(im)
    except _DECODE_ERRORS as exc:  # unreadable EXIF: keep the pixels as stored
        log.warning("EXIF orientation unreadable, ignored: %s", exc)
        return im
    return out if out is not None else im


def _u16_to_u8(a: np.ndarray) -> np.ndarray:
    return ((a.astype(np.uint32) + 128) // 257).astype(np.uint8)


def _wide_gray_to_l(im: Image.Image) -> Image.Image:
    """16-bit / 32-bit / float greyscale -> 8-bit L, scaled (PIL's convert would clip at 255)."""
    a = np.asarray(im)
    if im.mode.startswith("I;16"):
        return Image.fromarray(_u16_to_u8(a.astype(np.uint16)))
    a = a.astype(np.float64)
    top = float(a.max(initial=0.0))
    if im.mode == "F" and top <= 1.0:
        a = a * 255.0
    elif top > 255.0:
        a = a / (257.0 if top <= 65535.0 else top / 255.0)
    return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8))


def _to_rgb(im: Image.Image) -> tuple[Image.Image, np.ndarray | None]:
    """Split any PIL mode into (colour image to be made RGB, alpha mask or None)."""
    mode = im.mode
    icc = im.info.get("icc_profile")
    alpha: np.ndarray | None = None
    if mode in ("LA", "La"):
        la = im.convert("LA") if mode == "La" else im
        alpha = np.asarray(la.getchannel("A"))
        color = la.convert("L")
    elif mode in ("RGBA", "RGBa"):
        rgba = im.convert("RGBA") if mode == "RGBa" else im
        alpha = np.asarray(rgba.getchannel("A"))
        color = rgba.convert("RGB")
    elif mode in ("P", "PA") or (mode in ("L", "RGB", "1") and "transparency" in im.info):
        has_alpha = (mode == "PA" or "transparency" in im.info
                     or (mode == "P" and im.palette is not None and im.palette.mode == "RGBA"))
        if has_alpha:
            rgba = im.convert("RGBA")
            alpha = np.asarray(rgba.getchannel("A"))
            color = rgba.convert("RGB")
        else:
            color = im.convert("RGB")
    elif mode.startswith("I") or mode == "F":
        color = _wide_gray_to_l(im)
    elif mode == "1":
        color = im.convert("L")
    else:  # L, RGB, CMYK, YCbCr, LAB, HSV, RGBX
        color = im
    if alpha is not None and int(alpha.min()) == 255:
        alpha = None  # an alpha channel that is opaque everywhere is no transparency
    if icc and color.mode in ("RGB", "CMYK", "L"):
        color = _icc_to_srgb(color, icc)
    return (color if color.mode == "RGB" else color.convert("RGB")), alpha


def _icc_to_srgb(im: Image.Image, icc: bytes) -> Image.Image:
    """Use the embedded profile for colours before it is dropped; fall back to a plain convert."""
    try:
        from PIL import ImageCms
    except ImportError:  # Pillow built without littlecms
        return im
    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if im.mode == "RGB" and "srgb" in (ImageCms.getProfileDescription(src) or "").lower():
            return im
        out = ImageCms.profileToProfile(im, src, ImageCms.createProfile("sRGB"), outputMode="RGB")
    except (OSError, ValueError, TypeError, ImageCms.PyCMSError) as exc:
        log.info("ICC profile not applied (%s); plain conversion used", exc)
        return im
    return out if out is not None else im


def _strip_metadata(rgb: Image.Image) -> Image.Image:
    """A fresh RGB image holding only pixels: no EXIF, GPS, XMP, ICC, comments or palette."""
    out = Image.frombytes("RGB", rgb.size, rgb.tobytes())
    out.info.clear()
    return out
