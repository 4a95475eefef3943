"""Person, Product and Advanced workflows end to end on the lite and tiny engines.

Kept pixels: inside the keep mask (255) the output equals the framed upload exactly; the framing
itself is checked against an independent crop/resize of the upload.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from skimage import data

from studio.config import Settings
from studio.errors import CancelledError, InputError
from studio.runtime.jobs import CancelToken
from studio.schema import AdvancedRequest, GenerationOptions, PersonRequest, ProductRequest
from studio.services import build_services
from studio.store.metadata import read_metadata
from studio.vision.io import load_image
from studio.workflows import advanced, person, product

FAST = GenerationOptions(steps=2, seed=3, num_images=1)


@pytest.fixture(params=["lite", "tiny"])
def services(request, settings: Settings):
    svc = build_services(settings.with_(engine=request.param))
    yield svc
    svc.store.close()


def _kept_identical(result) -> None:
    out = np.asarray(result.images[0])
    framed = np.asarray(result.framed)
    keep = result.keep_mask == 255
    assert keep.sum() > 500, "the keep mask must hold the subject"
    assert np.array_equal(out[keep], framed[keep])
    # ...and everything else really was regenerated somewhere
    assert (np.abs(out.astype(int) - framed.astype(int)).sum(axis=2)[result.keep_mask == 0] > 0).mean() > 0.5


def _stored(services, result, workflow: str) -> None:
    assert services.store.count(workflow) == len(result.images)
    rec = result.records[0]
    assert rec.path.is_file() and rec.workflow == workflow and rec.seed == result.seeds[0]
    meta = read_metadata(rec.path)
    assert "parameters" in meta and str(rec.seed) in meta["parameters"]
    with Image.open(rec.path) as im:
        assert im.size == result.images[0].size


def test_person_keeps_the_face(services) -> None:
    img = load_image(data.astronaut()).image
    res = person.run(PersonRequest(image=img, industry="fitness", sns_size="kakao_channel", options=FAST), services)
    assert res.images[0].size == (800, 800)
    # astronaut is square: 800x800 would enlarge it 1.56x, over the 1.5x cap, so the frame holds
    # the whole upload resized by at most 1.5x (checked against an independent PIL resize)
    st = res.records[0].settings
    # a cut-out fills the frame (1.3-1.5x); an unsure cut-out on the no-weights path is a framed card
    # with headline room above (issue 18's designed fallback), smaller but never enlarged past 1.5x
    assert (1.3 <= st["upscale"] <= 1.5) if res.layout != "card" else (0.8 <= st["upscale"] <= 1.5)
    ox, oy = st["offset"]
    sw, sh = st["placed_size"]
    assert sw == sh == round(512 * st["upscale"])
    ref = Image.new("RGB", (800, 800))
    ref.paste(img.resize((sw, sh), Image.Resampling.LANCZOS), (ox, oy))
    cover = np.zeros((800, 800), bool)
    cover[max(oy, 0):oy + sh, max(ox, 0):ox + sw] = True
    assert cover.mean() > (0.8 if res.layout != "card" else 0.4)
    assert np.array_equal(np.asarray(res.framed)[cover], np.asarray(ref)[cover])
    if services.engines.active_name("inpaint") == "lite" and res.layout == "cutout":
        assert oy + sh == 800  # the body runs off the photo's bottom: it stays on the ad's bottom edge
    _kept_identical(res)
    _stored(services, res, "person")
    x0, y0, x1, y1 = res.records[0].settings["focus_box"]
    low = 260 if res.layout != "card" else 340   # a card sits below the headline room
    assert 260 < (x0 + x1) / 2 < 420 and 100 < (y0 + y1) / 2 < low  # the face, in output pixels
    if services.engines.active_name("inpaint") == "lite":
        assert any(n.key == "workflow.outfit_needs_flux" for n in res.notices)
    else:
        assert any(n.key == "workflow.no_pose" for n in res.notices)  # no pose weights in tests


def test_product_keeps_the_cup(services) -> None:
    img = load_image(data.coffee()).image  # 600x400
    res = product.run(ProductRequest(image=img, industry="cafe", style="warm", sns_size="ig_portrait",
                                     product_box=(90, 20, 520, 380), options=FAST), services)
    assert res.images[0].size == (1080, 1350)
    _kept_identical(res)
    _stored(services, res, "product")
    assert res.records[0].kept_owner_pixels


def test_advanced_keeps_face_and_product(services) -> None:
    img = load_image(data.astronaut()).image
    res = advanced.run(AdvancedRequest(image=img, sns_size="ig_square", product_box=(330, 330, 500, 500),
                                       options=FAST), services)
    assert res.images[0].size == (1080, 1080)
    _kept_identical(res)
    _stored(services, res, "advanced")


def test_no_face_is_a_clear_message(settings: Settings) -> None:
    svc = build_services(settings)
    cat = load_image(data.chelsea()).image
    with pytest.raises(InputError) as exc:
        person.run(PersonRequest(image=cat, options=FAST), svc)
    assert exc.value.key == "workflow.no_face" and "얼굴" in exc.value.message("ko")
    assert svc.store.count() == 0


def test_several_faces_pick_by_index(settings: Settings) -> None:
    svc = build_services(settings)
    face = load_image(data.astronaut()).image
    canvas = Image.new("RGB", (1100, 600), (235, 235, 235))
    canvas.paste(face, (20, 40))
    canvas.paste(face.resize((380, 380)), (680, 120))
    res0 = person.run(PersonRequest(image=canvas, sns_size="ig_square", options=FAST), svc)
    res1 = person.run(PersonRequest(image=canvas, sns_size="ig_square", face_index=1, options=FAST), svc)
    assert len(res0.faces) >= 2
    assert res0.faces[0].width >= res0.faces[1].width  # largest first
    assert any(n.key == "workflow.many_faces" for n in res1.notices)
    assert res0.records[0].settings["face_index"] == 0 and res1.records[0].settings["face_index"] == 1
    with pytest.raises(InputError) as exc:
        person.run(PersonRequest(image=canvas, face_index=7, options=FAST), svc)
    assert exc.value.key == "workflow.face_index"


def test_transparent_png_product_uses_its_alpha(settings: Settings, tmp_path) -> None:
    svc = build_services(settings)
    rgb = np.asarray(data.coffee())
    h, w = rgb.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    alpha = ((((xx - 300) / 200.0) ** 2 + ((yy - 190) / 160.0) ** 2) <= 1).astype(np.uint8) * 255
    path = tmp_path / "cup.png"
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(path)
    loaded = load_image(path)
    assert loaded.alpha is not None
    res = product.run(ProductRequest(image=loaded.image, alpha=loaded.alpha, sns_size="ig_square", options=FAST), svc)
    assert res.records[0].settings["cutout"] == "alpha"
    _kept_identical(res)


def test_huge_upload_is_downscaled_then_used(settings: Settings) -> None:
    svc = build_services(settings)
    cup = np.asarray(data.coffee())
    big = np.asarray(Image.fromarray(cup).resize((9000, 6000), Image.Resampling.BILINEAR))
    loaded = load_image(big)
    assert max(loaded.image.size) <= 8192 and any(n.key == "image.downscaled" for n in loaded.notices)
    scale = loaded.image.width / 600
    box = tuple(int(v * scale) for v in (90, 20, 520, 380))
    res = product.run(ProductRequest(image=loaded.image, product_box=box, sns_size="ig_portrait", options=FAST), svc)
    assert res.images[0].size == (1080, 1350)


def test_cancel_mid_run_stops_and_writes_nothing(settings: Settings) -> None:
    svc = build_services(settings.with_(engine="tiny"))
    token = CancelToken()
    seen: list[int] = []

    def progress(step: int, total: int, desc: str = "") -> None:
        seen.append(step)
        if step >= 1:
            token.cancel()

    img = load_image(data.astronaut()).image
    with pytest.raises(CancelledError):
        person.run(PersonRequest(image=img, sns_size="kakao_channel",
                                 options=GenerationOptions(steps=6, seed=1)), svc, progress=progress, cancel=token)
    assert seen and max(seen) <= 2, f"ran on after cancel: {seen}"
    assert svc.store.count() == 0


def test_advanced_gives_an_editing_engine_the_product_as_a_reference(settings: Settings, monkeypatch) -> None:
    """Issue 23: on an engine that takes reference pictures (Qwen-Image-Edit, FLUX.2 klein), Advanced
    sends the product as photographed along with the job; Person and Product send none."""
    svc = build_services(settings.with_(engine="tiny"))
    try:
        engine = svc.engines.get("inpaint", "tiny")
        seen: list[dict] = []
        real = engine.inpaint

        def spy(job, *a, **kw):
            seen.append(dict(job.extras))
            return real(job, *a, **kw)

        monkeypatch.setattr(engine, "inpaint", spy)
        monkeypatch.setattr(engine, "accepts_references", True, raising=False)
        img = load_image(data.astronaut()).image
        advanced.run(AdvancedRequest(image=img, sns_size="ig_square", product_box=(330, 330, 500, 500),
                                     options=FAST), svc)
        refs = seen[-1].get("references")
        assert refs and refs[0].size == (170, 170)
        assert np.array_equal(np.asarray(refs[0]), np.asarray(img.crop((330, 330, 500, 500)).convert("RGB")))
        person.run(PersonRequest(image=img, sns_size="ig_square", options=FAST), svc)
        assert "references" not in seen[-1]
    finally:
        svc.store.close()
