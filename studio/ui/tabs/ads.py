"""The Person, Product and Advanced tabs share one builder: upload, pickers, mask preview,
advanced accordion, generate with live progress and cancel, results gallery.

Handlers build the typed request BY KEYWORD and call the workflow; StudioErrors become gr.Error.
Uploads reach `studio.vision.io.load_image` untouched (see `upload_image`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable

import gradio as gr
import numpy as np
from PIL import Image, ImageDraw

from studio.errors import InputError
from studio.i18n import Ref, t
from studio.runtime.jobs import CancelToken
from studio.schema import AdRequest, GenerationOptions
from studio.services import Services
from studio.ui.common import esc, form_handler, guarded, upload_image
from studio.ui.tabs.engines_panel import engine_choices, switch_engine_note

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TabSpec:
    workflow: str                 # "person" | "product" | "advanced"
    faces: bool
    product: bool
    pose: bool


SPECS = {
    "person": TabSpec("person", faces=True, product=False, pose=True),
    "product": TabSpec("product", faces=False, product=True, pose=False),
    "advanced": TabSpec("advanced", faces=True, product=True, pose=True),
}


def parse_box(text: str | None, lang: str) -> tuple[int, int, int, int] | None:
    """'x0,y0,x1,y1' in pixels of the upload; anything else (inf, nan, negatives, 3 numbers, a
    400-digit number) is refused with the message saying how to write it."""
    import math

    from studio.text.limits import limit

    text = limit(text, "box")
    if not text.strip():
        return None
    try:
        nums = [float(p) for p in text.replace(" ", "").split(",")]
    except ValueError as exc:
        raise InputError("ui.ads.bad_box") from exc
    if len(nums) != 4 or not all(math.isfinite(n) and 0 <= n <= 100_000 for n in nums):
        raise InputError("ui.ads.bad_box")
    x0, y0, x1, y1 = (int(round(n)) for n in nums)
    x0, x1 = sorted((x0, x1))
    y0, y1 = sorted((y0, y1))
    if x1 - x0 < 4 or y1 - y0 < 4:
        raise InputError("ui.ads.bad_box")
    return (x0, y0, x1, y1)


def preview_image(image: Image.Image, keep: np.ndarray | None, faces: list, face_index: int,
                  box: tuple[int, int, int, int] | None) -> Image.Image:
    """The upload dimmed outside what will be kept, faces numbered, the product box drawn."""
    base = image.convert("RGB")
    if keep is not None:
        dim = Image.blend(base, Image.new("RGB", base.size, (20, 20, 20)), 0.6)
        base = Image.composite(base, dim, Image.fromarray(keep, "L"))
    draw = ImageDraw.Draw(base)
    lw = max(2, base.width // 300)
    for i, f in enumerate(faces):
        colour = (255, 196, 0) if i == face_index else (180, 180, 180)
        draw.rectangle(f.box, outline=colour, width=lw)
        draw.text((f.box[0] + 4, f.box[1] + 4), str(i + 1), fill=colour)
    if box:
        draw.rectangle(box, outline=(0, 200, 255), width=lw)
    return base


def _missing_cutout_model(services: Services) -> bool:
    from studio.vision.matting import find_weights

    return not find_weights(services.settings.models_dir)


@dataclass(frozen=True)
class AdForm:
    """The ad tab's widget values, by name (what the owner set)."""

    upload: Any = None
    industry: str = ""
    style: str = ""
    prompt_ko: str = ""
    prompt_en: str = ""
    sns: str = "ig_portrait"
    count: float = 1
    face: Any = 0
    box: str = ""
    brush: Any = None           # the touch-up brush (gr.ImageEditor value): green keeps, red removes
    steps: float = 28
    guidance: float = 30
    cn_scale: float | None = None   # None: the model card's value (catalogue)
    cn_start: float = 0.0
    cn_end: float | None = None
    feather: float = 12
    dilate: float = 8
    seed: Any = -1
    hair: bool = True
    all_people: bool = False
    shadow: bool = True
    reflection: bool = False
    detail: bool = True
    detail_strength: float = 0.6


def _number(value: Any, field: str, lo: float, hi: float, default: float) -> float:
    import math

    if value is None or value == "":
        return default
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise InputError("input.bad_number", what=Ref(f"field.{field}"), value=str(value)[:20], min=lo, max=hi) from exc
    if not math.isfinite(number) or not lo <= number <= hi:
        raise InputError("input.bad_number", what=Ref(f"field.{field}"), value=str(value)[:20], min=lo, max=hi)
    return number


def build_request(spec: TabSpec, form: AdForm, loaded: Any, lang: str) -> AdRequest:
    """The typed request of this tab, built by keyword from the form."""
    from studio.text.limits import limit

    seed = int(_number(form.seed, "seed", -1, 2**32 - 1, -1))
    options = GenerationOptions(steps=form.steps, guidance=form.guidance, controlnet_scale=form.cn_scale,
                                control_start=form.cn_start, control_end=form.cn_end, mask_dilate=form.dilate,
                                mask_feather=form.feather, seed=seed, num_images=form.count).clean()
    face_index = int(_number(form.face, "face", 0, 99, 0)) if spec.faces else 0
    common = dict(image=loaded.image, industry=form.industry, style=form.style,
                  prompt_ko=limit(form.prompt_ko, "prompt_ko"),
                  prompt_en=limit(form.prompt_en, "prompt_en") or None, sns_size=form.sns, options=options)
    box = parse_box(form.box, lang) if spec.product else None
    from studio.workflows.registry import workflow

    strokes = brush_strokes(form.brush, loaded.image.size) if spec.product else None
    return workflow(spec.workflow).make_request(
        **common, face_index=face_index, include_hair=bool(form.hair), keep_all_people=bool(form.all_people),
        alpha=loaded.alpha, product_box=box, shadow=bool(form.shadow), reflection=bool(form.reflection),
        strokes=strokes, **_detail(form))


def _detail(form: "AdForm") -> dict:
    """The detail pass settings (API callers by position may leave them out: the defaults)."""
    return {"detail": True if form.detail is None else bool(form.detail),
            "detail_strength": 0.6 if form.detail_strength is None else float(form.detail_strength)}


BRUSH_KEEP, BRUSH_REMOVE = "#00ff00", "#ff0000"   # the same colours as `launch.py ad --strokes`


def brush_strokes(value: Any, size: tuple[int, int]) -> np.ndarray | None:
    """The touch-up brush's paint (an ImageEditor value: its layers, RGBA) as strokes on the photo
    (STROKE_KEEP / STROKE_REMOVE per pixel, at `size`), or None when nothing was painted. Later
    layers paint over earlier ones."""
    from studio.vision.matting import check_strokes, strokes_from_image

    if not isinstance(value, dict):
        return None
    out: np.ndarray | None = None
    for layer in value.get("layers") or []:
        if layer is None:
            continue
        arr = np.asarray(layer.convert("RGBA") if isinstance(layer, Image.Image) else layer)
        if arr.ndim != 3 or arr.shape[2] not in (3, 4):
            continue
        if arr.shape[2] == 3:   # a layer without alpha: only its coloured paint counts
            arr = np.dstack([arr, np.full(arr.shape[:2], 255, np.uint8)])
        s = strokes_from_image(arr, size)
        if s is None:
            continue
        out = s if out is None else np.where(s > 0, s, out).astype(np.uint8)
    return check_strokes(out, size)


def saved_note(records: Any, lang: str) -> str | None:
    """'1 saved (#12), 1 not (the disk is full)' when only some results could be stored."""
    from studio.workflows.overlay import failure_reason

    failed = list(getattr(records, "failed", []) or [])
    if not failed:
        return None
    ids = ", ".join(f"#{r.id}" for r in records) or "—"
    return t("store.partial", lang, saved=len(records), failed=len(failed), why=failure_reason(failed[0][1], lang),
             ids=ids)


def build_ad_tab(services: Services, spec: TabSpec) -> dict[str, Any]:
    lang = services.lang
    presets = services.presets
    wf = spec.workflow
    from studio.presets import pose_defaults

    card = pose_defaults()  # the pose ControlNet's model-card values (presets/models.json)

    with gr.Row(equal_height=False):
        with gr.Column(scale=6):
            with gr.Row():
                upload = upload_image(label=t("ads.upload", lang), sources=["upload", "clipboard"], height=200,
                                      elem_id=f"{wf}-upload")
                preview = gr.Image(label=t("ads.preview", lang), interactive=False, height=200,
                                   elem_id=f"{wf}-preview")
            notes_in = gr.Markdown(elem_id=f"{wf}-upload-notes")
            if spec.product:
                gr.Markdown(t("ui.ads.box_click_hint", lang), elem_id=f"{wf}-box-hint")
            get_model = gr.Button(t("rembg.download.button", lang), size="sm", elem_id=f"{wf}-get-cutout-model",
                                  visible=spec.product and _missing_cutout_model(services))
            with gr.Row():
                industry = gr.Dropdown(choices=[(i.name(lang), i.id) for i in presets.industries],
                                       value=presets.industries[0].id, label=t("ads.industry", lang), min_width=120, scale=1,
                                       elem_id=f"{wf}-industry")
                style = gr.Dropdown(choices=[(s.name(lang), s.id) for s in presets.styles],
                                    value=presets.styles[0].id, label=t("ads.style", lang), min_width=120, scale=1,
                                    elem_id=f"{wf}-style")
                sns = gr.Dropdown(choices=[(f"{s.name(lang)} ({s.width}×{s.height})", s.id) for s in presets.sns_sizes],
                                  value="ig_portrait", label=t("ads.sns", lang), min_width=260, scale=2,
                                  elem_id=f"{wf}-sns")
            with gr.Row():   # one row: Generate stays on the first screen at 1366x768
                prompt_ko = gr.Textbox(label=t("ads.prompt_ko", lang), lines=1, max_lines=3, scale=3, min_width=200,
                                       placeholder=t("ads.prompt_ko_hint", lang), elem_id=f"{wf}-prompt-ko")
                shop = gr.Textbox(label=t("ui.handoff.shop", lang), max_lines=1, scale=2, min_width=160,
                                  placeholder=t("ui.handoff.shop_hint", lang), elem_id=f"{wf}-shop")
            with gr.Row(equal_height=True):
                generate = gr.Button(t("ads.generate", lang), variant="primary", size="lg", scale=4,
                                     elem_id=f"{wf}-generate")
                cancel = gr.Button(t("ads.cancel", lang), variant="secondary", size="sm", scale=1, min_width=80,
                                   elem_id=f"{wf}-cancel")
            # the owner's choices, in plain words: whose face to keep (and "keep everyone" right next to it),
            # how many pictures, and for products the shadow/reflection
            with gr.Row(elem_id=f"{wf}-choices"):
                face_pick = gr.Dropdown(choices=[("1", 0)], value=0, label=t("ads.face", lang), visible=spec.faces,
                                        elem_id=f"{wf}-face", min_width=110)
                all_people = gr.Checkbox(value=False, label=t("ads.all_people", lang), visible=spec.faces,
                                         elem_id=f"{wf}-all-people", min_width=190)
                hair = gr.Checkbox(value=True, label=t("ads.hair", lang), visible=spec.faces, elem_id=f"{wf}-hair",
                                   min_width=150)
                count = gr.Slider(1, 4, value=1, step=1, label=t("ads.count", lang), min_width=220,
                                  elem_id=f"{wf}-count")
            with gr.Row(visible=spec.product and not spec.faces):
                shadow = gr.Checkbox(value=True, label=t("ads.shadow", lang), visible=spec.product and not spec.faces)
                reflection = gr.Checkbox(value=False, label=t("ads.reflection", lang), visible=spec.product and not spec.faces)
            with gr.Accordion(t("ads.brush", lang), open=False, visible=spec.product, elem_id=f"{wf}-brush-panel"):
                gr.Markdown(t("ads.brush_hint", lang))
                brush = gr.ImageEditor(label=t("ads.brush", lang), type="numpy", image_mode="RGBA", sources=[],
                                       transforms=(), layers=False, format="png", height=360,
                                       brush=gr.Brush(colors=[BRUSH_KEEP, BRUSH_REMOVE], default_color=BRUSH_KEEP,
                                                      color_mode="fixed"),
                                       eraser=gr.Eraser(), elem_id=f"{wf}-brush")
            corner = gr.State(None)
            # Everything technical lives in one closed panel. Other issues' expert controls go INSIDE it
            # (elem_id f"{wf}-expert"); owner-facing options go in the rows above.
            with gr.Accordion(t("ui.expert.title", lang), open=False, elem_id=f"{wf}-expert"):
                gr.Markdown(t("ui.expert.note", lang), elem_id=f"{wf}-expert-note")
                with gr.Row():  # the owner's engine switch for this task (the Models tab has all tasks)
                    engine_pick = gr.Dropdown(choices=engine_choices(services, "inpaint"),
                                              value=services.engines.active_name("inpaint"), scale=2,
                                              label=t("engines.choice_label", lang,
                                                      task=t("engine.task.inpaint", lang)),
                                              elem_id=f"{wf}-engine")
                    engine_note = gr.Markdown(elem_id=f"{wf}-engine-note")
                box_txt = gr.Textbox(label=t("ads.box", lang), visible=spec.product, info=t("ui.ads.box_hint", lang),
                                     elem_id=f"{wf}-box")
                prompt_en = gr.Textbox(label=t("ads.prompt_en", lang), lines=3, elem_id=f"{wf}-prompt-en")
                make_prompt = gr.Button(t("ads.make_prompt", lang), size="sm")
                with gr.Row():
                    steps = gr.Slider(1, 50, value=28, step=1, label=t("ads.steps", lang))
                    guidance = gr.Slider(1, 60, value=30, step=0.5, label=t("ads.guidance", lang))
                with gr.Row(visible=spec.pose):
                    cn_scale = gr.Slider(0, 1.5, value=card["conditioning_scale"], step=0.05, label=t("ads.cn_scale", lang))
                    cn_start = gr.Slider(0, 1, value=0.0, step=0.05, label=t("ads.cn_start", lang))
                    cn_end = gr.Slider(0, 1, value=card["guidance_end"], step=0.05, label=t("ads.cn_end", lang))
                with gr.Row():
                    feather = gr.Slider(0, 64, value=12, step=1, label=t("ads.feather", lang))
                    dilate = gr.Slider(0, 64, value=8, step=1, label=t("ads.dilate", lang))
                    seed = gr.Number(value=-1, precision=0, label=t("ads.seed", lang))
                with gr.Row(visible=spec.faces):  # the detail pass (issue 24): AI engines only
                    detail = gr.Checkbox(value=True, label=t("ads.detail_pass", lang),
                                         info=t("ads.detail_pass_info", lang), elem_id=f"{wf}-detail_pass")
                    detail_strength = gr.Slider(0.1, 1.0, value=0.6, step=0.05, label=t("ads.detail_strength", lang),
                                                elem_id=f"{wf}-detail_strength")
        with gr.Column(scale=5):
            results = gr.Gallery(label=t("ads.results", lang), columns=2, height=440, buttons=["download"],
                                 interactive=False,
                                 elem_id=f"{wf}-results")
            with gr.Row(elem_classes=["handoff-row"]):  # hand the newest result to the next tab
                to_overlay = gr.Button(t("ui.handoff.to_overlay", lang), size="sm", elem_id=f"{wf}-to-overlay")
                to_video = gr.Button(t("ui.handoff.to_video", lang), size="sm", elem_id=f"{wf}-to-video")
            notes_out = gr.Markdown(elem_id=f"{wf}-notes")
            files = gr.File(label=t("ads.files", lang), file_count="multiple", interactive=False)

    form_fields = [("upload", upload), ("industry", industry), ("style", style), ("prompt_ko", prompt_ko),
                   ("prompt_en", prompt_en), ("sns", sns), ("count", count), ("face", face_pick), ("box", box_txt),
                   ("steps", steps), ("guidance", guidance), ("cn_scale", cn_scale), ("cn_start", cn_start),
                   ("cn_end", cn_end), ("feather", feather), ("dilate", dilate), ("seed", seed), ("hair", hair),
                   ("all_people", all_people), ("shadow", shadow), ("reflection", reflection),
                   ("detail", detail), ("detail_strength", detail_strength),
                   ("brush", brush)]   # last: callers of the API by position keep working

    def _load(path: str | None):
        from studio.vision.io import load_image

        if not path:
            raise InputError("image.missing")
        return load_image(path)

    def _keep_preview(loaded, face_index: int, box, all_people: bool = False, strokes=None):
        """Exactly the keep mask the generation will use (one function computes it for both)."""
        from studio.workflows.registry import preview_keep, workflow

        img = loaded.image
        if spec.faces:
            found = services.vision.detect_faces(img)
            if not found:
                return [], np.zeros((img.height, img.width), np.uint8)
            face_index = min(face_index, len(found) - 1)
        req = workflow(wf).make_request(image=img, face_index=face_index, keep_all_people=all_people,
                                        alpha=loaded.alpha, product_box=box, strokes=strokes)
        return preview_keep(req, services)

    @guarded(lang)
    def on_upload(path: str | None, face_index: int, box_text: str, all_people: bool = False, brush_value=None):
        if not path:
            return None, "", gr.update(choices=[("1", 0)], value=0)
        loaded = _load(path)
        box = parse_box(box_text, lang) if spec.product else None
        strokes = brush_strokes(brush_value, loaded.image.size) if spec.product else None
        faces, keep = _keep_preview(loaded, int(face_index or 0), box, bool(all_people), strokes)
        notes = [n.text(lang) for n in loaded.notices]
        if spec.faces:
            notes.append(t("ui.ads.faces_found", lang, n=len(faces)) if faces else t("workflow.no_face", lang))
        choices = [(f"{i + 1}", i) for i in range(max(1, len(faces)))]
        value = int(face_index or 0) if int(face_index or 0) < len(choices) else 0
        offer = _cutout_offer()
        if offer:
            notes.append(offer)
        return (preview_image(loaded.image, keep, faces, value, box), "  \n".join(esc(n) for n in notes),
                gr.update(choices=choices, value=value))

    def _cutout_offer() -> str:
        """When no cut-out model is in models/rembg: say so, and what the download button gets."""
        from studio.runtime import rembg_models
        from studio.vision.matting import find_weights

        if find_weights(services.settings.models_dir):
            return ""
        m = rembg_models.model(rembg_models.DEFAULT)
        return t("rembg.download.offer", lang, model=t("ui.cutout.model", lang), size=f"{m.size_mb} MB")

    @guarded(lang)
    def on_get_cutout_model(progress=gr.Progress()):
        from studio.runtime import rembg_models

        def report(done: int, total: int, desc: str = "") -> None:
            progress((done, max(total, 1)), desc=t("rembg.download.progress", lang, model=desc))

        path = rembg_models.download(services.settings.models_dir, rembg_models.DEFAULT, progress=report)
        services.reload_vision()   # the next cut-out uses the new model
        return esc(t("rembg.download.done", lang, model=rembg_models.DEFAULT, path=str(path)))

    @guarded(lang)
    def on_click_preview(path: str | None, first, evt: gr.SelectData):
        if not path or evt is None or evt.index is None:
            return gr.update(), first
        x, y = int(evt.index[0]), int(evt.index[1])
        if first is None:
            gr.Info(title=t("ui.info.title", lang), message=t("ui.ads.box_first", lang))
            return gr.update(), (x, y)
        x0, y0 = first
        return f"{min(x0, x)},{min(y0, y)},{max(x0, x)},{max(y0, y)}", None

    @guarded(lang)
    def on_make_prompt(industry_id: str, style_id: str, text_ko: str):
        from studio.schema import AdRequest
        from studio.workflows.prompting import prompt_for

        req = AdRequest(image=Image.new("RGB", (256, 256)), industry=industry_id, style=style_id, prompt_ko=text_ko)
        from studio.workflows.registry import workflow

        subject = workflow(wf).subject
        return prompt_for(req, services, services.engines.get("inpaint"), subject=subject).prompt_en

    @guarded(lang)
    def on_generate(values: dict[str, Any], request: gr.Request | None, progress: Any):
        import time

        form = AdForm(**values)
        loaded = _load(form.upload)
        req = build_request(spec, form, loaded, lang)
        from studio.workflows.registry import workflow

        run = workflow(wf).runner()
        token: CancelToken = services.jobs.token(_session_key(request, wf))
        first = _first_run_words()
        if first:  # the first ad after start loads the tools/models: say what and for how long
            what, secs = first
            gr.Info(title=t("firstrun.title", lang), message=t("firstrun.body", lang, what=what, secs=secs),
                    duration=min(120, 2 * secs))
            progress((0, 1), desc=t("firstrun.progress", lang, what=what, secs=secs))

        def report(step: int, total: int, desc: str = "") -> None:
            progress((step, max(total, 1)), desc=desc or services.engines.active_name("inpaint"))

        t0 = time.perf_counter()
        result = run(req, services, progress=report, cancel=token)
        services.warm_tasks = {*getattr(services, "warm_tasks", set()), "ads"}
        secs = time.perf_counter() - t0
        notes = [n.text(lang) for n in loaded.notices] + [n.text(lang) for n in result.notices]
        partial_note = saved_note(result.records, lang)
        notes.append(partial_note or t("ui.ads.done", lang, n=len(result.records), secs=secs))
        gallery = [(str(r.path), f"#{r.id}") for r in result.records]  # the hand-off buttons read the id
        return gallery, "  \n".join(esc(n) for n in notes), result.prompt_en, [str(r.path) for r in result.records]

    def _first_run_words() -> tuple[str, int] | None:
        """(what is prepared, about how many seconds) before this process's first ad; None after it.
        Measured: the first Lite ad after install took 73 s before issue 18 moved the one-time
        matting compile into setup; now a fresh process makes its first ad in about 2 s
        (benchmarks/lite_quality.py `first_ad_s`), so the owner is promised at most 10. The
        FLUX engine loads tens of GB onto the graphics card first."""
        if "ads" in getattr(services, "warm_tasks", set()):
            return None
        engine = services.engines.active_name("inpaint")
        if engine in ("flux", "flux_schnell", "flux_dev"):
            return t("firstrun.what.flux", lang), 180
        return t("firstrun.what.lite", lang), 10

    def on_cancel(request: gr.Request):
        services.jobs.cancel(_session_key(request, wf))
        gr.Info(title=t("ui.info.title", lang), message=t("job.cancelled", lang))

    get_model.click(on_get_cutout_model, None, [notes_in], api_name=f"{wf}_get_cutout_model",
                    concurrency_id="downloads", concurrency_limit=1)
    preview_inputs = [upload, face_pick, box_txt, all_people, brush]
    preview_outputs = [preview, notes_in, face_pick]
    upload.change(on_upload, preview_inputs, preview_outputs, api_name=f"{wf}_prepare")
    if spec.product:
        # the brush paints on the photo itself; a new photo starts with a clean canvas
        def on_brush_photo(path: str | None):
            if not path:
                return None
            img = _load(path).image
            return {"background": np.asarray(img.convert("RGBA")), "layers": [], "composite": None}

        upload.change(guarded(lang)(on_brush_photo), [upload], [brush], api_name=False)
        brush.apply(on_upload, preview_inputs, preview_outputs, api_name=False)
    face_pick.input(on_upload, preview_inputs, preview_outputs, api_name=False)
    box_txt.submit(on_upload, preview_inputs, preview_outputs, api_name=False)
    all_people.input(on_upload, preview_inputs, preview_outputs, api_name=False)
    if spec.product:
        preview.select(on_click_preview, [upload, corner], [box_txt, corner], api_name=False).then(
            on_upload, preview_inputs, preview_outputs, api_name=False)
    make_prompt.click(on_make_prompt, [industry, style, prompt_ko], [prompt_en], api_name=f"{wf}_prompt")
    gen_event = generate.click(
        form_handler([name for name, _ in form_fields], on_generate,
                     optional=("detail", "detail_strength", "brush")),
        [component for _, component in form_fields],
        [results, notes_out, prompt_en, files],
        api_name=f"{wf}_generate", concurrency_id="gpu", concurrency_limit=1)
    cancel.click(on_cancel, None, None, api_name=f"{wf}_cancel", cancels=[gen_event], queue=False)
    engine_pick.input(guarded(lang)(partial(switch_engine_note, services, "inpaint")), [engine_pick], [engine_note],
                      api_name=f"{wf}_engine", concurrency_id="gpu", concurrency_limit=1)
    # the gallery's "use these settings again" fills these (not the upload: the photo is not stored);
    # "_handoff": what the 문구 넣기 / 영상 만들기 buttons carry (wired in studio.ui.handoff)
    parts: dict[str, Any] = {name: comp for name, comp in form_fields if name not in ("upload", "brush")}
    parts["_handoff"] = {"results": results, "industry": industry, "shop": shop, "words": prompt_ko,
                         "to_overlay": to_overlay, "to_video": to_video}
    return parts


def _session_key(request: gr.Request | None, wf: str) -> str:
    session = getattr(request, "session_hash", None) or "local"
    return f"{session}:{wf}"


def builder(workflow: str) -> Callable[[Services], dict[str, Any]]:
    def build(services: Services) -> dict[str, Any]:
        return build_ad_tab(services, SPECS[workflow])

    return build


