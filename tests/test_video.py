"""Video ads: motion clips read back with PyAV (duration, fps, size, codec, pix_fmt, faststart, audio,
the subject inside every frame), cancel, bad input, history, showcase, CLI."""

from __future__ import annotations

import math
import wave
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from studio.engines.base import Image2VideoJob
from studio.errors import CancelledError, InputError
from studio.runtime.jobs import CancelToken

W, H = 270, 480   # 9:16 at scale 0.25
GREEN = (20, 200, 40)


def ad_image(colour=GREEN, size=(600, 900), centre=(300, 470), radius=150) -> tuple[Image.Image, np.ndarray]:
    """A textured warm backdrop with one saturated disc (the subject) and its mask."""
    rng = np.random.default_rng(0)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    bg = np.stack([180 + 40 * np.sin(xx / 23.0), 150 + 30 * np.cos(yy / 31.0), 120 + 20 * np.sin((xx + yy) / 17.0)], -1)
    bg = np.clip(bg + rng.normal(0, 6, bg.shape), 0, 255).astype(np.uint8)
    img = Image.fromarray(bg)
    mask = Image.new("L", size, 0)
    box = (centre[0] - radius, centre[1] - radius, centre[0] + radius, centre[1] + radius)
    ImageDraw.Draw(img).ellipse(box, fill=colour)
    ImageDraw.Draw(mask).ellipse(box, fill=255)
    return img, np.asarray(mask)


def subject_pixels(frame: np.ndarray, colour=GREEN) -> np.ndarray:
    diff = np.abs(frame.astype(int) - np.array(colour)).max(axis=2)
    return diff < 40


@pytest.fixture
def services(settings):
    from studio.services import build_services

    svc = build_services(settings)
    yield svc
    svc.store.close()


def write_wav(path: Path, seconds: float, rate: int = 22050) -> Path:
    n = int(seconds * rate)
    tone = (0.3 * np.sin(2 * math.pi * 440 * np.arange(n) / rate) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as wf:
        wf.setnchannels(1)
        wf.setsampwidth(2)
        wf.setframerate(rate)
        wf.writeframes(tone.tobytes())
    return path


def test_image2video_auto_is_motion_without_weights(settings) -> None:
    from studio.engines.registry import auto_choice

    choice = auto_choice("image2video", settings)
    assert choice.name == "motion"
    assert choice.reason_key == "engine.reason.no_weights"  # LTX-Video was passed over, and why


def test_parallax_clip_reads_back_as_h264_yuv420p_faststart_with_the_subject_in_every_frame(services) -> None:
    from studio.render.overlay import OverlaySpec
    from studio.render.video import read_frames
    from studio.workflows.video import VideoRequest, run

    img, mask = ad_image()
    spec = OverlaySpec(headline="오늘만 1+1", sub_copy="갓 볶은 원두", cta="지금 방문", layout="top_banner")
    out = run(VideoRequest(image=img, seconds=2, size="9:16", style="parallax", keep_mask=mask, overlay=spec,
                           scale=0.25, source_ai=True), services)  # moves an AI-made ad: disclosed
    p = out.probe
    assert (p.width, p.height) == (W, H)
    assert p.fps == 30 and p.frames == 60
    assert abs(p.duration - 2.0) < 0.05
    assert p.codec == "h264" and p.pix_fmt == "yuv420p"
    assert p.boxes.index("moov") < p.boxes.index("mdat"), p.boxes  # faststart
    assert p.audio_codec is None
    assert "AI" in p.metadata["comment"] and "DigitalSourceType" in p.metadata["comment"]

    areas, boxes = [], []
    for frame in read_frames(out.path):
        sub = subject_pixels(frame)
        ys, xs = np.nonzero(sub)
        assert len(xs) > 0
        x0, y0, x1, y1 = xs.min(), ys.min(), xs.max(), ys.max()
        assert x0 > 0 and y0 > 0 and x1 < W - 1 and y1 < H - 1, (x0, y0, x1, y1)  # never touches an edge
        areas.append(sub.sum())
        boxes.append((x0, y0, x1, y1))
    assert len(areas) == 60
    assert areas[-1] > areas[0] * 1.1           # the camera pushed in on the subject
    assert min(areas) >= areas[0] * 0.9         # never cut off
    # the background moved at its own, slower pace: compare a background patch first vs last frame
    frames = list(read_frames(out.path, every=59))
    assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).mean() > 3

    rec = services.store.get(out.record.id)
    assert rec.workflow == "video" and rec.path.suffix == ".mp4" and rec.engine == "motion"
    assert rec.settings["seconds"] == 2 and rec.settings["style"] == "parallax"
    assert "DigitalSourceType" in rec.settings["disclosure"]
    keys = [n["key"] for n in rec.settings["notices"]]
    assert "video.moved.parallax" in keys and "video.photo_kept" in keys


def test_an_untouched_photo_moved_by_the_camera_carries_no_ai_disclosure(services, tmp_path) -> None:
    from studio.render.video import probe
    from studio.workflows.video import request_from_form, run

    img, _ = ad_image()
    src = tmp_path / "photo.png"
    img.save(src)  # no AI metadata: an owner's photo
    req = request_from_form(services, upload=str(src), style="zoom", seconds=2, scale=0.25, headline="오늘만 1+1")
    assert req.source_ai is False
    out = run(req, services)
    assert "comment" not in probe(out.path).metadata or "AI" not in probe(out.path).metadata["comment"]
    texts = " ".join(n.text("ko") + n.text("en") for n in out.notices)
    assert "grabcut" not in texts.lower() and "AI" not in texts
    assert [n.key for n in out.notices][0] == "video.moved.zoom"  # no cut-out mentioned on a zoom clip
    # the same photo saved with AI generation parameters is disclosed
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a cup of coffee\nSteps: 20, Sampler: Euler")
    img.save(tmp_path / "ai.png", pnginfo=info)
    req = request_from_form(services, upload=str(tmp_path / "ai.png"), style="zoom", seconds=2, scale=0.25)
    assert req.source_ai is True
    assert "AI" in probe(run(req, services).path).metadata["comment"]


def test_headline_is_on_the_first_frame_the_rest_comes_in_and_the_hole_is_filled(services) -> None:
    from studio.engines.motion import MotionEngine, Slide, _split_layers
    from studio.render.overlay import OverlaySpec

    img, mask = ad_image()
    spec = OverlaySpec(headline="오늘만 아메리카노 1+1", cta="지금 방문하세요", layout="bottom_bar", badge_text="50%")
    job = Image2VideoJob(image=img, width=W, height=H, seconds=3, fps=30,
                         extras={"style": "zoom", "slides": [Slide(img, mask, spec)]})
    frames = list(MotionEngine().image2video(job).frames)
    assert len(frames) == 90
    bottom = (slice(int(H * 0.7), H - 5), slice(5, W - 5))
    plain = list(MotionEngine().image2video(Image2VideoJob(
        image=img, width=W, height=H, seconds=3, fps=30,
        extras={"style": "zoom", "slides": [Slide(img, mask, None)]})).frames)
    # frame 0 (the thumbnail) already carries the plate and the headline
    assert np.abs(frames[0][bottom].astype(int) - plain[0][bottom].astype(int)).mean() > 20
    # the call to action comes in later: frame 0 and 2.5 s differ beyond the camera move
    assert np.abs(frames[0][bottom].astype(int) - frames[75][bottom].astype(int)).mean() > 3
    # once settled the text stays still: two late frames differ only by the slow camera below it
    assert np.abs(frames[80][bottom].astype(int) - frames[89][bottom].astype(int)).mean() < 8

    base = np.asarray(img.resize((W, H)))
    small_mask = np.asarray(Image.fromarray(mask).resize((W, H)))
    background, _ = _split_layers(base, small_mask)
    inside = small_mask > 200
    # no green left where the subject was: the hole is filled from the surroundings
    assert subject_pixels(background)[inside].mean() < 0.02


def test_music_gives_an_aac_stream_of_the_clips_length(services, tmp_path) -> None:
    from studio.workflows.video import VideoRequest, run

    img, mask = ad_image()
    music = write_wav(tmp_path / "song.wav", 1.0)
    out = run(VideoRequest(image=img, seconds=2, size="1:1", style="zoom", keep_mask=mask, music=music, scale=0.25),
              services)
    assert out.probe.audio_codec == "aac"
    assert (out.probe.width, out.probe.height) == (270, 270)
    assert "video.music_short" in [n.key for n in out.notices]
    import av

    with av.open(str(out.path)) as c:
        a = c.streams.audio[0]
        seconds = float(a.duration * a.time_base)
    assert abs(seconds - 2.0) < 0.1


@pytest.mark.parametrize("content,name", [(b"this is not music at all\n" * 40, "notes.mp3"), (None, "picture.mp3")])
def test_a_music_file_that_is_not_audio_gets_a_clear_message(services, tmp_path, content, name) -> None:
    from studio.workflows.video import VideoRequest, run

    path = tmp_path / name
    if content is None:
        ad_image()[0].save(path, format="PNG")  # a picture: ffmpeg opens it, but it has no audio stream
    else:
        path.write_bytes(content)
    img, mask = ad_image()
    with pytest.raises(InputError) as err:
        run(VideoRequest(image=img, seconds=2, keep_mask=mask, music=path, scale=0.25), services)
    assert err.value.key == "video.bad_music"
    assert name in err.value.message("ko") and "오디오" in err.value.message("ko")
    assert services.store.count() == 0


@pytest.mark.parametrize("changes,key", [({"image": None}, "video.no_image"), ({"seconds": 0}, "video.bad_seconds"),
                                         ({"seconds": 16}, "video.bad_seconds"), ({"size": "2:1"}, "video.bad_size"),
                                         ({"style": "spin"}, "video.bad_style")])
def test_bad_input_is_refused_before_any_work(services, changes, key) -> None:
    from studio.workflows.video import VideoRequest, run

    img, _ = ad_image()
    req = VideoRequest(image=img, seconds=2, scale=0.25)
    for k, v in changes.items():
        setattr(req, k, v)
    with pytest.raises(InputError) as err:
        run(req, services)
    assert err.value.key == key
    assert "{" not in err.value.message("ko") and "{" not in err.value.message("en")


def test_cancel_stops_within_one_frame(services) -> None:
    from studio.workflows.video import VideoRequest, run

    img, mask = ad_image()
    token = CancelToken()
    seen: list[int] = []

    def progress(step: int, total: int, desc: str = "") -> None:
        seen.append(step)
        if step == 5:
            token.cancel()

    with pytest.raises(CancelledError):
        run(VideoRequest(image=img, seconds=3, keep_mask=mask, scale=0.25), services, progress, token)
    assert max(seen) == 5          # not one more frame after the cancel
    assert services.store.count() == 0


def test_showcase_joins_slides_with_a_crossfade_and_ends_on_the_shop_card(services) -> None:
    from studio.engines.motion import EndCard
    from studio.render.video import read_frames
    from studio.workflows.video import VideoRequest, run

    red = (210, 30, 30)
    first, m1 = ad_image()
    second, _ = ad_image(colour=red, centre=(280, 420))
    logo = Image.new("RGBA", (200, 80), (255, 255, 255, 0))
    ImageDraw.Draw(logo).rounded_rectangle((0, 0, 199, 79), 20, fill=(250, 200, 40, 255))
    out = run(VideoRequest(image=first, seconds=4, keep_mask=m1, more_images=[second], scale=0.25, style="zoom",
                           end_card=EndCard("카페 온기", "매일 08-22시", logo)), services)
    frames = list(read_frames(out.path))
    assert len(frames) == 120
    assert subject_pixels(frames[10]).sum() > 1000 and subject_pixels(frames[10], red).sum() == 0
    assert subject_pixels(frames[70], red).sum() > 1000 and subject_pixels(frames[70]).sum() == 0
    last = frames[-1]
    assert last.mean() < frames[70].mean()  # the darkened end card
    yellow = np.abs(last.astype(int) - np.array((250, 200, 40))).max(axis=2) < 40
    assert yellow.sum() > 200  # the logo is on it
    assert out.record.settings["slides"] == 2 and out.record.settings["end_card"] is True


def test_frames_are_streamed_not_held(settings) -> None:
    from studio.engines.motion import MotionEngine

    img, mask = ad_image()
    res = MotionEngine().image2video(Image2VideoJob(image=img, width=W, height=H, seconds=5, keep_mask=mask))
    assert res.count == 150 and not isinstance(res.frames, list)
    first = next(iter(res.frames))
    assert first.shape == (H, W, 3) and first.dtype == np.uint8


def test_cli_writes_the_clip_and_refuses_a_missing_image(settings, tmp_path, capsys) -> None:
    import launch
    from studio.render.video import probe

    img, _ = ad_image()
    src = tmp_path / "ad.png"
    img.save(src)
    out = tmp_path / "clip.mp4"
    common = ["--outputs-dir", str(tmp_path / "outputs"), "--models-dir", str(settings.models_dir)]
    rc = launch.main(["video", "--image", str(src), "--style", "zoom", "--seconds", "2", "--scale", "0.25",
                      "--out", str(out), *common])
    assert rc == 0 and out.is_file()
    p = probe(out)
    assert (p.width, p.height, p.codec) == (W, H, "h264") and abs(p.duration - 2) < 0.05
    rc = launch.main(["video", "--image", str(tmp_path / "nope.png"), "--seconds", "2", *common])
    assert rc == 2
    assert capsys.readouterr().err.strip()
