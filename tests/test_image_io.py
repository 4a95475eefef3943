"""Safe image loading: every bad-input case is built inside the test (no fixture files)."""

from __future__ import annotations

import io
import re
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageCms, ImageFile
from skimage import data as skdata

from studio.errors import InputError
from studio.vision import io as vio
from studio.vision.io import LoadedImage, Notice, load_image

HANGUL = re.compile(r"[\uac00-\ud7a3]")


# ---------------------------------------------------------------- helpers

def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def bomb_png(w: int, h: int) -> bytes:
    """A valid-looking PNG whose IHDR claims w x h RGB pixels, a few hundred bytes on disk."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 4096)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat)
            + png_chunk(b"IEND", b""))


def refused(key: str, source, **kw) -> InputError:
    with pytest.raises(InputError) as info:
        load_image(source, **kw)
    assert info.value.key == key, (info.value.key, info.value.fields)
    return info.value


def astronaut_jpeg(progressive: bool = False) -> bytes:
    return encode(Image.fromarray(skdata.astronaut()), "JPEG", quality=90, progressive=progressive)


@pytest.fixture
def no_decode(monkeypatch):
    """`no_decode()` makes any later pixel decode fail loudly: a refusal came from the header alone."""
    def boom(self, *a, **k):
        raise RuntimeError("pixels were decoded")

    def arm() -> None:
        Image.init()  # some plugins build small images when imported; import them before patching
        monkeypatch.setattr(ImageFile.ImageFile, "load", boom)
        monkeypatch.setattr(Image.Image, "load", boom)

    return arm


# ---------------------------------------------------------------- decompression bombs

@pytest.mark.parametrize("pil_limit", ["default", None])
def test_bomb_header_rejected_before_decode(no_decode, monkeypatch, pil_limit):
    if pil_limit is None:  # PIL's own guard switched off: our check alone must refuse it
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    blob = bomb_png(30000, 30000)
    assert len(blob) < 1000
    no_decode()
    err = refused("image.bomb", blob)
    assert (err.fields["w"], err.fields["h"]) == (30000, 30000)
    assert err.fields["mp"] == pytest.approx(900.0)
    assert HANGUL.search(err.message("ko")) and "30000" in err.message("ko")


def test_bomb_under_pil_limit_but_over_max_pixels(no_decode):
    blob = encode(Image.new("RGB", (600, 600)), "PNG")
    no_decode()
    err = refused("image.bomb", blob, max_pixels=100_000)
    assert err.fields["w"] == 600


def test_big_but_allowed_image_not_refused_by_pil_global(monkeypatch):
    """Image.MAX_IMAGE_PIXELS must not refuse (error) or warn about an image within max_pixels."""
    blob = encode(Image.new("RGB", (400, 300), (10, 200, 30)), "PNG")  # 120k pixels
    for pil_limit in (1000, 100_000):  # 2x limit exceeded (PIL error) / 1x exceeded (PIL warning)
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", pil_limit)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            out = load_image(blob, min_side=100)
        assert out.image.size == (400, 300)
        assert out.image.getpixel((5, 5)) == (10, 200, 30)
    assert Image.MAX_IMAGE_PIXELS == 100_000  # untouched by the loader (monkeypatch restores it)


# ---------------------------------------------------------------- format identification

def test_zero_byte_file_and_bytes(tmp_path: Path):
    empty = tmp_path / "photo.jpg"
    empty.write_bytes(b"")
    err = refused("image.empty", empty)
    assert HANGUL.search(err.message("ko"))
    refused("image.empty", b"")


def test_text_file_named_png_gets_korean_message(tmp_path: Path):
    fake = tmp_path / "menu.png"
    fake.write_text("오늘의 메뉴: 아메리카노 3000원\n" * 20, encoding="utf-8")
    err = refused("image.not_image", fake)
    assert err.fields["name"] == "menu.png"
    ko = err.message("ko")
    assert "이미지 파일이 아닙니다" in ko and "menu.png" in ko
    assert "not an image" in err.message("en")


def test_content_wins_over_extension(tmp_path: Path):
    p = tmp_path / "photo.jpg"
    p.write_bytes(encode(Image.new("RGB", (300, 300), (1, 2, 3)), "PNG"))
    out = load_image(str(p))
    assert out.source_format == "PNG"
    assert out.image.getpixel((0, 0)) == (1, 2, 3)


def test_real_but_unsupported_format():
    err = refused("image.unsupported", encode(Image.new("RGB", (300, 300)), "PCX"))
    assert err.fields["fmt"] == "PCX"
    assert HANGUL.search(err.message("ko"))


def test_heic_without_plugin_says_so(monkeypatch):
    monkeypatch.setattr(vio, "_heif_available", lambda: False)
    heic = struct.pack(">I", 24) + b"ftypheic" + b"\x00\x00\x00\x00mif1heic" + b"\x00" * 64
    err = refused("image.io.heic_no_plugin", heic)
    assert "pillow-heif" in err.message("ko") and HANGUL.search(err.message("ko"))


def test_missing_sources(tmp_path: Path):
    refused("image.missing", None)
    refused("image.missing", "")
    refused("image.missing", tmp_path / "nope.jpg")
    refused("image.io.unreadable", tmp_path)  # a directory


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF"])
def test_allowed_formats_load(fmt):
    im = Image.new("RGB", (260, 270), (200, 40, 40))
    out = load_image(encode(im, fmt))
    assert out.source_format == fmt
    assert out.image.mode == "RGB" and out.image.size == (260, 270)
    assert np.abs(np.asarray(out.image, dtype=int) - (200, 40, 40)).max() < 40


# ---------------------------------------------------------------- modes -> RGB + alpha

def test_cmyk_jpeg_to_rgb():
    cyan = Image.new("CMYK", (300, 300), (255, 0, 0, 0))
    out = load_image(encode(cyan, "JPEG", quality=95))
    assert out.image.mode == "RGB" and out.alpha is None
    r, g, b = np.asarray(out.image, dtype=int)[150, 150]
    assert r < 30 and g > 225 and b > 225


def test_16bit_png_scaled_not_clipped():
    ramp = np.tile(np.linspace(0, 65535, 300).astype(np.uint16), (260, 1))
    blob = encode(Image.fromarray(ramp), "PNG")
    assert Image.open(io.BytesIO(blob)).mode.startswith("I")  # really a 16-bit file
    out = np.asarray(load_image(blob).image, dtype=int)
    assert out.shape == (260, 300, 3)
    assert out[0, 0, 0] <= 1 and out[0, -1, 0] >= 254
    mid = ramp[0, 150] / 257
    assert abs(out[0, 150, 0] - mid) <= 1  # PIL's plain convert would clip this to 255
    assert (out[..., 0] == out[..., 2]).all()


def test_palette_png_with_transparency_gives_alpha_mask():
    p = Image.new("P", (300, 260), 0)
    p.putpalette([7, 8, 9, 255, 0, 0] + [0] * 762)  # index 0: garbage colour, index 1: red
    p.paste(1, (150, 0, 300, 260))
    blob = encode(p, "PNG", transparency=0)
    out = load_image(blob)
    assert out.alpha is not None and out.alpha.dtype == np.uint8 and out.alpha.shape == (260, 300)
    assert (out.alpha[:, :150] == 0).all() and (out.alpha[:, 150:] == 255).all()
    rgb = np.asarray(out.image)
    assert (rgb[:, :150] == 255).all()  # fully transparent -> white, not (7, 8, 9)
    assert (rgb[:, 150:] == (255, 0, 0)).all()


def test_la_image():
    lum = np.full((260, 280), 90, np.uint8)
    a = np.zeros((260, 280), np.uint8)
    a[:, 100:] = 128
    a[:, 200:] = 255
    blob = encode(Image.fromarray(np.dstack([lum, a])), "PNG")
    assert Image.open(io.BytesIO(blob)).mode == "LA"
    out = load_image(blob)
    np.testing.assert_array_equal(out.alpha, a)
    rgb = np.asarray(out.image)
    assert (rgb[:, :100] == 255).all()
    assert (rgb[:, 100:] == 90).all()  # half-transparent keeps its own grey


def test_rgba_partial_and_opaque():
    arr = np.zeros((256, 256, 4), np.uint8)
    arr[..., :3] = (1, 2, 3)          # garbage under full transparency
    arr[:, 128:] = (10, 20, 30, 128)  # half transparent
    out = load_image(encode(Image.fromarray(arr), "PNG"))
    assert out.source_format == "PNG"
    assert (out.alpha[:, :128] == 0).all() and (out.alpha[:, 128:] == 128).all()
    rgb = np.asarray(out.image)
    assert (rgb[:, :128] == 255).all() and (rgb[:, 128:] == (10, 20, 30)).all()
    arr[..., 3] = 255
    assert load_image(encode(Image.fromarray(arr), "PNG")).alpha is None  # no real transparency
    rgba = out.rgba()
    assert rgba.mode == "RGBA" and rgba.getpixel((200, 5)) == (10, 20, 30, 128)


@pytest.mark.parametrize("mode", ["1", "L"])
def test_bilevel_and_grey(mode):
    im = Image.new(mode, (256, 256), 0)
    im.paste(255 if mode == "L" else 1, (0, 0, 128, 256))
    out = load_image(encode(im, "PNG"))
    assert out.image.mode == "RGB"
    assert out.image.getpixel((10, 10)) == (255, 255, 255) and out.image.getpixel((200, 10)) == (0, 0, 0)


# ---------------------------------------------------------------- EXIF, privacy

def exif_jpeg(orientation: int | None = None, gps: bool = False, size=(400, 300)) -> bytes:
    arr = np.full((size[1], size[0], 3), 30, np.uint8)
    arr[:40, :40] = (255, 0, 0)  # marked top-left corner as stored
    exif = Image.Exif()
    if orientation:
        exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "PhoneMaker"
    if gps:
        g = exif.get_ifd(ExifTags.IFD.GPSInfo)
        g[ExifTags.GPS.GPSLatitudeRef] = "N"
        g[ExifTags.GPS.GPSLatitude] = (37.0, 33.0, 59.0)
        g[ExifTags.GPS.GPSLongitudeRef] = "E"
        g[ExifTags.GPS.GPSLongitude] = (126.0, 58.0, 40.0)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return encode(Image.fromarray(arr), "JPEG", quality=95, exif=exif.tobytes(), icc_profile=icc,
                  comment=b"secret shop note")


def test_exif_orientation_6_applied():
    out = load_image(exif_jpeg(orientation=6))
    assert out.image.size == (300, 400) and out.original_size == (300, 400)  # dimensions swapped
    rgb = np.asarray(out.image, dtype=int)
    assert rgb[10, -10, 0] > 200 and rgb[10, -10, 1] < 60  # marked corner now top-right
    assert rgb[10, 10, 0] < 60
    plain = np.asarray(load_image(exif_jpeg()).image, dtype=int)
    assert plain.shape == (300, 400, 3) and plain[10, 10, 0] > 200


def test_exif_gps_icc_comment_never_reach_output():
    blob = exif_jpeg(orientation=6, gps=True)
    src = Image.open(io.BytesIO(blob))
    assert src.getexif().get_ifd(ExifTags.IFD.GPSInfo)  # precondition: GPS is in the upload
    assert "icc_profile" in src.info and "comment" in src.info
    out = load_image(blob).image
    assert out.info == {}
    assert len(out.getexif()) == 0
    for fmt in ("JPEG", "PNG"):
        saved = encode(out, fmt)
        assert b"Exif" not in saved and b"PhoneMaker" not in saved and b"secret" not in saved
        back = Image.open(io.BytesIO(saved))
        assert not back.getexif().get_ifd(ExifTags.IFD.GPSInfo)
        assert "icc_profile" not in back.info


def test_pil_input_not_mutated_and_metadata_dropped():
    src = Image.open(io.BytesIO(exif_jpeg(orientation=6, gps=True)))
    src.load()
    out = load_image(src)
    assert src.size == (400, 300) and "exif" in src.info  # caller's object untouched
    assert out.image.size == (300, 400) and out.image.info == {}
    assert out.source_format == "JPEG"


# ---------------------------------------------------------------- animation, truncation

def test_animated_gif_first_frame_and_notice():
    frames = [Image.new("RGB", (260, 260), c) for c in ((0, 0, 255), (0, 255, 0), (255, 0, 0))]
    blob = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    out = load_image(blob)
    assert out.source_format == "GIF"
    assert out.image.getpixel((100, 100)) == (0, 0, 255)
    assert [n.key for n in out.notices] == ["image.animated"]
    assert HANGUL.search(out.messages("ko")[0]) and "first frame" in out.messages("en")[0]


def test_truncated_jpeg_loaded_with_notice():
    blob = astronaut_jpeg()
    out = load_image(blob[: int(len(blob) * 0.8)])
    assert out.image.size == (512, 512)
    keys = [n.key for n in out.notices]
    assert keys == ["image.truncated_loaded"]
    top = np.asarray(out.image, dtype=int)[:100]
    ref = np.asarray(load_image(blob).image, dtype=int)[:100]
    assert np.abs(top - ref).mean() < 3  # the part that was there decoded normally
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_truncated_jpeg_mostly_missing_refused():
    blob = astronaut_jpeg()
    err = refused("image.truncated", blob[: int(len(blob) * 0.2)])
    assert HANGUL.search(err.message("ko"))
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_truncated_png_refused():
    blob = encode(Image.fromarray(skdata.coffee()), "PNG")
    refused("image.truncated", blob[: len(blob) // 2])
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


# ---------------------------------------------------------------- size limits

def test_too_small_refused_with_korean_message(no_decode):
    blob = encode(Image.new("RGB", (300, 100)), "PNG")
    no_decode()
    err = refused("image.too_small", blob)
    assert (err.fields["w"], err.fields["h"], err.fields["min"]) == (300, 100, 256)
    assert "너무 작습니다" in err.message("ko") and "256" in err.message("ko")


def test_too_large_downscaled_with_notice():
    out = load_image(encode(Image.new("RGB", (8200, 400), (5, 6, 7)), "PNG"))
    assert out.image.size == (8192, 400) and out.original_size == (8200, 400)
    assert out.notices == [Notice("image.downscaled", {"w": 8192, "h": 400})]
    assert "8192×400" in out.notices[0].text("ko") and HANGUL.search(out.notices[0].text("ko"))


def test_downscale_keeps_aspect_and_alpha():
    arr = np.zeros((512, 768, 4), np.uint8)
    arr[..., :3] = 200
    arr[:, 384:, 3] = 255
    out = load_image(Image.fromarray(arr), max_side=384)
    assert out.image.size == (384, 256) and out.alpha.shape == (256, 384)
    assert out.alpha[:, :180].max() == 0 and out.alpha[:, 200:].min() == 255


def test_extreme_aspect_after_downscale_refused():
    refused("image.io.extreme_aspect", encode(Image.new("L", (2000, 300)), "PNG"), max_side=1000)


# ---------------------------------------------------------------- in-memory inputs

def test_bytes_path_and_array_inputs_agree(tmp_path: Path):
    arr = skdata.astronaut()
    blob = encode(Image.fromarray(arr), "PNG")
    p = tmp_path / "a.png"
    p.write_bytes(blob)
    results: list[LoadedImage] = [load_image(blob), load_image(bytearray(blob)), load_image(p),
                                  load_image(str(p)), load_image(arr), load_image(Image.fromarray(arr))]
    for r in results:
        np.testing.assert_array_equal(np.asarray(r.image), arr)
        assert r.alpha is None and r.notices == [] and r.image.info == {}
    assert [r.source_format for r in results] == ["PNG"] * 4 + ["ndarray", "PIL"]


def test_array_dtypes_and_shapes():
    base = np.linspace(0, 1, 256 * 256, dtype=np.float32).reshape(256, 256)
    for arr, corner in [(base, 255), ((base * 65535).astype(np.uint16), 255),
                        ((base * 255).astype(np.uint8)[..., None], 255), (base > 0.5, 255)]:
        out = load_image(arr)
        assert out.image.mode == "RGB" and out.image.size == (256, 256)
        assert out.image.getpixel((255, 255)) == (corner,) * 3 and out.image.getpixel((0, 0)) == (0, 0, 0)
    err = refused("image.io.bad_array", np.zeros((256, 256, 2), np.uint8))
    assert HANGUL.search(err.message("ko"))
    refused("image.too_small", np.zeros((10, 400, 3), np.uint8))


def test_errors_carry_translatable_keys():
    err = refused("image.too_small", encode(Image.new("RGB", (10, 10)), "PNG"))
    assert "too small" in str(err)  # logs/tracebacks in English, UI translates the key
    assert err.message("ko") != err.message("en")
    with pytest.raises(TypeError):
        load_image(12345)  # a programming error, not an owner's input
