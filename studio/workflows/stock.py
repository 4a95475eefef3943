"""Stock batches: many images with metadata for stock sites, on one pipeline, resumable.

    plan_batch(request, services)      -> Batch    prompts + seeds committed before any image
    run_batch(batch_id, services, ...) -> Summary  generates what is still pending

One batch, one loaded pipeline: the engines of the owner's fallback chain come from
`services.engines.get("text2image", name)` (built once and cached there), never per image. An
engine that fails to load or errors passes the item (and the rest of the batch) on to the next
engine of the chain; the engine used is recorded on every image and the owner gets a notice.

Per item: generate -> quality gate on the raw output (black/NaN, nearly uniform, blurred; a
rejected item is retried once with another fixed seed) -> near-duplicate check against the
batch's accepted images -> upscale (short side ≥ 2500 px) -> encode (JPEG/PNG) -> one history row
whose settings carry ``batch_id``/``batch_item`` (the resume key, see `studio.store.batches`),
the metadata and the engine used -> the item is marked done.

`produce_item` (generate, gate, upscale, encode) is pure: the Ray runner
(`studio.workflows.stock_ray`) calls it inside its workers, and `commit_item` on the driver.
"""

from __future__ import annotations

import io
import logging
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from PIL import Image

from studio.engines.base import EngineResult, Text2ImageJob
from studio.errors import CancelledError, InputError, StudioError
from studio.render import stock_post as post
from studio.runtime.jobs import CancelToken, ProgressFn, no_progress
from studio.schema import Notice
from studio.store.batches import DONE, FAILED, PENDING, REJECTED, Batch, BatchItem, BatchStore
from studio.store.history import NewRecord, Record
from studio.text.stock_meta import PLATFORMS, StockMeta, write_csv
from studio.text.stock_prompts import MODES, build_prompts

log = logging.getLogger(__name__)

MAX_COUNT = 500
RETRY_SEED_OFFSET = 1_000_003


@dataclass
class StockRequest:
    mode: str = "random"                      # random | keyword | llm
    count: int = 20
    industry: str = "background"
    keywords: str = ""
    chain: tuple[str, ...] = ("auto",)        # text2image engines, tried in order ("auto" = registry choice)
    width: int = 1024
    height: int = 1024
    seed: int = 0
    steps: int | None = None
    min_short: int = post.MIN_SHORT_SIDE      # 0 = no upscaling
    fmt: str = "jpeg"
    quality: int = 95
    gate: bool = True

    def validate(self) -> "StockRequest":
        if self.mode not in MODES:
            raise InputError("stock.bad_mode", mode=self.mode, modes=", ".join(MODES))
        if not 1 <= int(self.count) <= MAX_COUNT:
            raise InputError("stock.bad_count", count=self.count, max=MAX_COUNT)
        if self.fmt not in post.FORMATS:
            raise InputError("stock.bad_format", fmt=self.fmt)
        if not self.chain:
            raise InputError("stock.empty_chain")
        return self

    def to_dict(self) -> dict:
        d = asdict(self)
        d["chain"] = list(self.chain)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "StockRequest":
        d = dict(d)
        d["chain"] = tuple(d.get("chain", ("auto",)))
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


@dataclass
class Produced:
    """What generating one item gives (picklable: it crosses Ray's object store)."""
    idx: int
    ok: bool
    engine: str = ""
    seed: int = 0
    data: bytes = b""
    suffix: str = ".jpg"
    size: tuple[int, int] = (0, 0)
    phash: int = 0
    reason: str = ""                 # gate reason or error key when not ok
    upscale: str = "none"
    metrics: dict = field(default_factory=dict)
    notices: list[dict] = field(default_factory=list)   # [{"key":..., "fields":...}]
    drawn: dict = field(default_factory=dict)            # what the lite engine drew (family, motif, palette)
    tiles: bool = False                                  # the tiling test passed
    seam: float = 0.0                                    # its measure (wrap-around jump / inside jump)
    colours: list = field(default_factory=list)          # main colours by name [(en, ko)]
    signature: dict = field(default_factory=dict)        # near-duplicate signature (pHash, colours, thumb)


class Seen(list):
    """The batch's accepted signatures, and the titles already used (both CSVs)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.titles_en: set[str] = set()
        self.titles_ko: set[str] = set()


@dataclass
class Summary:
    batch_id: str
    total: int
    done: int
    rejected: list[dict]
    failed: int
    status: str
    notices: list[Notice]
    records: list[int] = field(default_factory=list)


# --- engines ----------------------------------------------------------------------------------
def call_text2image(engine: Any, job: Text2ImageJob, progress: ProgressFn | None = None,
                    cancel: CancelToken | None = None) -> EngineResult:
    """Adapter: the new protocol (`text2image(job) -> EngineResult`) or the older `generate(...)`."""
    if hasattr(engine, "text2image"):
        out = engine.text2image(job, progress, cancel)
        return out if isinstance(out, EngineResult) else EngineResult(list(out))
    images = engine.generate(job.prompt, width=job.width, height=job.height, steps=job.steps, seed=job.seed,
                             num_images=1, progress=progress, cancel=cancel, guidance=job.guidance)
    return EngineResult(list(images))


class EngineChain:
    """The owner's fallback chain. `get(name)` builds an engine (cached by the caller's provider);
    a failure moves the chain on for the rest of the batch and leaves a notice."""

    def __init__(self, names: list[str], get: Callable[[str], Any],
                 release: Callable[[str], None] | None = None) -> None:
        if not names:
            raise InputError("stock.empty_chain")
        self.names = names
        self._get = get
        self._release = release
        self.pos = 0
        self.notices: list[dict] = []

    @property
    def current(self) -> str | None:
        return self.names[self.pos] if self.pos < len(self.names) else None

    def generate(self, job: Text2ImageJob, cancel: CancelToken | None = None) -> tuple[Image.Image, str, list]:
        while self.pos < len(self.names):
            name = self.names[self.pos]
            try:
                engine = self._get(name)
                result = call_text2image(engine, job, None, cancel)
                if not result.images:
                    raise RuntimeError("engine returned no image")
                notices = [n.as_record() for n in result.notices]
                first = result.images[0]
                drawn = first.info.get("drawn")
                img = first.convert("RGB")
                if drawn:
                    img.info["drawn"] = dict(drawn)
                return img, name, notices
            except CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any backend failure passes the work on
                nxt = self.names[self.pos + 1] if self.pos + 1 < len(self.names) else None
                detail = exc.message("en") if isinstance(exc, StudioError) else f"{type(exc).__name__}: {exc}"
                log.warning("stock: engine %s failed (%s); next: %s", name, detail[:300], nxt)
                self.notices.append(Notice("stock.engine_failed" if nxt else "stock.engine_failed_last",
                                           {"engine": name, "next": nxt or "-"}).as_record())
                if self._release is not None:
                    try:
                        self._release(name)
                    except Exception as rel_exc:  # noqa: BLE001 - releasing must not hide the failure
                        log.warning("stock: releasing %s failed: %s", name, rel_exc)
                self.pos += 1
        raise StudioError("stock.all_engines_failed", chain=" → ".join(self.names))


def resolve_chain(chain: tuple[str, ...] | list[str], auto_name: Callable[[], str]) -> list[str]:
    out: list[str] = []
    for name in chain:
        name = name.strip()
        if not name:
            continue
        if name == "auto":
            name = auto_name()
        if name not in out:
            out.append(name)
    if "lite" not in out:
        out.append("lite")   # the no-weights engine always closes the chain
    return out


# --- one item ---------------------------------------------------------------------------------
def produce_item(chain: EngineChain, item: BatchItem, request: StockRequest, upscaler: Any = None,
                 cancel: CancelToken | None = None) -> Produced:
    """Generate, gate (retry once with another seed), upscale and encode one item."""
    prompt = item.prompt
    seeds = [item.seed, item.seed + RETRY_SEED_OFFSET] if request.gate else [item.seed]
    gate = post.GateResult(True)
    img: Image.Image | None = None
    engine = ""
    notices: list[dict] = []
    seed = item.seed
    width, height = request.width, request.height
    if chain.current == "lite" and request.min_short:
        # the lite engine draws at the target size itself: crisp at 100 %, nothing upscaled
        width, height = post.target_size((width, height), request.min_short)
    for seed in seeds:
        job = Text2ImageJob(prompt=prompt["prompt_en"], width=width, height=height, seed=seed,
                            steps=request.steps)
        try:
            img, engine, notes = chain.generate(job, cancel)
        except CancelledError:
            raise
        except StudioError as exc:
            return Produced(item.idx, False, reason=exc.key, notices=chain.notices[:])
        notices.extend(notes)
        gate = post.quality_gate(img) if request.gate else post.GateResult(True, "", post.phash(img))
        if gate.ok:
            break
        log.info("stock item %d seed %d rejected by the gate: %s %s", item.idx, seed, gate.reason, gate.metrics)
    if not gate.ok or img is None:
        return Produced(item.idx, False, engine=engine, seed=seed, reason=gate.reason, metrics=gate.metrics,
                        notices=notices + chain.notices[:])
    drawn = dict(img.info.get("drawn") or {})
    seam = post.seam_ratio(img)
    from studio.text.stock_meta import colour_shares, dominant_colours

    colours = [list(c) for c in dominant_colours(img)]
    kind = f"{drawn.get('family')}:{drawn.get('motif') or '-'}:{drawn.get('style') or '-'}" \
        if drawn and engine == "lite" else ""
    sig = post.signature(img, kind, colour_shares(img))
    method = "none"
    if request.min_short:
        img, method = post.upscale(img, request.min_short, upscaler)
    data, suffix = post.encode(img, request.fmt, request.quality)
    return Produced(item.idx, True, engine=engine, seed=seed, data=data, suffix=suffix, size=img.size,
                    phash=gate.phash, upscale=method, metrics=gate.metrics, notices=notices + chain.notices[:],
                    drawn=drawn, tiles=seam <= post.SEAM_RATIO_MAX, seam=round(seam, 3), colours=colours,
                    signature=sig.to_dict())


def _seen_hashes(services: Any, batch_id: str) -> Seen:
    """The accepted images' near-duplicate signatures and titles (a resumed batch keeps both)."""
    out = Seen()
    for rec in _batch_records(services, batch_id):
        sig = rec.settings.get("signature")
        if sig:
            out.append(post.Signature.from_dict(sig))
        elif rec.settings.get("phash"):
            out.append(post.Signature(int(rec.settings["phash"], 16), tuple([1.0] + [0.0] * 63), bytes(1024)))
        meta = rec.settings.get("meta") or {}
        out.titles_en.add(str(meta.get("title_en", "")).lower())
        out.titles_ko.add(str(meta.get("title_ko", "")).lower())
    return out


def item_meta(item: BatchItem, produced: Produced, request: StockRequest, seen: Seen) -> StockMeta:
    """Metadata from what was made: the lite engine's drawing (kind, colours, tiling test), else the
    prompt actually used; the category follows the content; titles unique in the batch."""
    from studio.text.stock_meta import meta_from_drawn, meta_from_prompt, unique_title

    colours = [tuple(c) for c in produced.colours]
    if produced.drawn and produced.engine == "lite":
        meta = meta_from_drawn(produced.drawn, colours, produced.tiles)
    else:
        meta = meta_from_prompt(item.prompt, produced.tiles)
    extras_en = [f"with {c[0]}" for c in colours[2:]] + [f"{k}" for k in meta.keywords_en[3:8]]
    extras_ko = [f"({c[1]})" for c in colours[2:]] + [f"({k})" for k in meta.keywords_ko[1:6]]
    meta.title_en = unique_title(meta.title_en, seen.titles_en, extras_en, 70, False)
    meta.title_ko = unique_title(meta.title_ko or meta.title_en, seen.titles_ko, extras_ko, 50, True)
    return meta


def _batch_records(services: Any, batch_id: str) -> list[Record]:
    with services.store._lock:  # noqa: SLF001 - read-only query by the resume key
        rows = services.store.conn.execute(
            "SELECT id FROM generations WHERE workflow = 'stock' AND json_extract(settings, '$.batch_id') = ? "
            "ORDER BY json_extract(settings, '$.batch_item')", (batch_id,)).fetchall()
    return [services.store.get(r[0]) for r in rows]


def commit_item(services: Any, batches: BatchStore, batch: Batch, item: BatchItem, produced: Produced,
                seen: list[int], request: StockRequest) -> Record | None:
    """On the driver: near-duplicate check, history row (with the resume key), item state."""
    if not produced.ok:
        state = FAILED if produced.reason.startswith("stock.") else REJECTED
        batches.mark(batch.id, item.idx, state, engine=produced.engine, reason=produced.reason)
        return None
    if not isinstance(seen, Seen):
        seen = Seen(seen)
    sig = post.Signature.from_dict(produced.signature) if produced.signature else \
        post.Signature(produced.phash, tuple([1.0] + [0.0] * 63), bytes(1024))
    dup = post.near_duplicate(sig, list(seen))
    if dup is not None:
        log.info("stock item %d is a near-duplicate: %s", item.idx, dup)
        batches.mark(batch.id, item.idx, REJECTED, engine=produced.engine, reason="duplicate")
        return None
    meta = item_meta(item, produced, request, seen)
    settings = {
        "batch_id": batch.id, "batch_item": item.idx, "phash": f"{produced.phash:016x}",
        "signature": produced.signature, "drawn": produced.drawn, "tiles": produced.tiles, "seam": produced.seam,
        "engine_used": produced.engine, "upscale": produced.upscale, "size": list(produced.size),
        "format": request.fmt, "quality": request.quality, "mode": request.mode, "meta": meta.to_dict(),
        "gate": produced.metrics, "notices": produced.notices, "chain": list(request.chain),
    }
    rec = NewRecord(workflow="stock", engine=produced.engine, seed=produced.seed,
                    prompt_ko=item.prompt.get("description_ko", ""), prompt_en=item.prompt.get("prompt_en", ""),
                    settings=settings, hashtags=list(meta.keywords_ko), kept_owner_pixels=False)
    stem = f"stock_{batch.short}_{item.idx:04d}"
    data = produced.data
    if produced.suffix == ".png":
        # PNG: our metadata chunks (parameters + AI disclosure) at the owner's compress level
        from datetime import datetime

        from studio.store.metadata import png_info

        with Image.open(io.BytesIO(data)) as im:
            im.load()
            buf = io.BytesIO()
            im.save(buf, "PNG", compress_level=int(min(9, max(0, request.quality if request.quality <= 9 else 6))),
                    pnginfo=png_info(rec, created_at=datetime.now().astimezone(), size=im.size))
        data = buf.getvalue()
    saved = services.store.save_file(data, produced.suffix, rec, stem=stem)
    batches.mark(batch.id, item.idx, DONE, record_id=saved.id, engine=produced.engine)
    seen.append(sig)
    return saved


# --- batches ----------------------------------------------------------------------------------
def batch_store(services: Any) -> BatchStore:
    return BatchStore(services.store.db_path)


def plan_batch(request: StockRequest, services: Any, *, llm: Any = None) -> Batch:
    """Build the prompts (deduplicated) and seeds, and commit the plan before generating anything."""
    request.validate()
    if request.mode == "llm" and llm is None:
        llm = services.llm
    plan = build_prompts(request.mode, int(request.count), seed=request.seed, industry=request.industry,
                         keywords=request.keywords, llm=llm, presets_dir=services.settings.presets_dir)
    if not plan.prompts:
        raise InputError("stock.no_prompts")
    items = [(p.to_dict(), int(request.seed) * 1000 + i) for i, p in enumerate(plan.prompts)]
    notices = [n.as_record() for n in plan.notices]
    first = resolve_chain(request.chain, lambda: services.engines.choice("text2image").name)[0]
    if first == "lite" and request.mode != "random" and request.keywords.strip():
        # said BEFORE anything is made: what the lite engine can't draw, and what it makes instead
        from studio.text.stock_prompts import lite_unfit_words

        unfit = lite_unfit_words(request.keywords)
        if unfit:
            notices.insert(0, Notice("stock.lite_cannot_draw", {"words": ", ".join(unfit)}).as_record())
    data = request.to_dict() | {"mode_used": plan.mode_used}
    with batch_store(services) as bs:
        return bs.create(data, items, notices)


def _notice_objs(raw: list[dict]) -> list[Notice]:
    out: list[Notice] = []
    for n in raw:
        notice = Notice.from_record(n)
        if notice not in out:
            out.append(notice)
    return out


def summarize(services: Any, batch_id: str) -> Summary:
    with batch_store(services) as bs:
        batch = bs.get(batch_id)
        items = bs.items(batch.id)
    done = [i for i in items if i.state == DONE]
    rejected = [{"item": i.idx, "reason": i.reason, "engine": i.engine} for i in items if i.state == REJECTED]
    failed = sum(1 for i in items if i.state == FAILED)
    total = min(len(items), int(batch.request.get("count", len(items)) or len(items)))
    return Summary(batch.id, total, len(done), rejected, failed, batch.status, _notice_objs(batch.notices),
                   [i.record_id for i in done if i.record_id is not None])


def run_batch(batch_id: str, services: Any, *, progress: ProgressFn | None = None,
              cancel: CancelToken | None = None, on_image: Callable[[Record], None] | None = None) -> Summary:
    """Generate the batch's pending items in-process (resumes a batch that was interrupted)."""
    progress = progress or no_progress
    with batch_store(services) as bs:
        batch = bs.get(batch_id)
        request = StockRequest.from_dict(batch.request)
        bs.sync_done(batch.id)
        items = bs.items(batch.id)
        pending = [i for i in items if i.state == PENDING]
        total = len(items)
        finished = total - len(pending)
        bs.set_status(batch.id, "running")
        names = resolve_chain(request.chain, lambda: services.engines.choice("text2image").name)
        chain = EngineChain(names, lambda n: services.engines.get("text2image", n),
                            lambda n: services.engines.release("text2image", n))
        upscaler = post.load_upscaler(services.settings.models_dir, allowed=post.allowed_for(services.settings)) if request.min_short else None
        seen = _seen_hashes(services, batch.id)
        progress(finished, total, "stock")
        status = "done"
        refill = Refill(services, request, [i.prompt for i in items],
                        sum(1 for i in items if i.state == REJECTED),
                        live=[i.prompt for i in items if i.state != REJECTED])
        queue = list(pending)
        try:
            while queue:
                item = queue.pop(0)
                if cancel is not None and cancel.cancelled:
                    status = "cancelled"
                    break
                produced = produce_item(chain, item, request, upscaler, cancel)
                saved = commit_item(services, bs, batch, item, produced, seen, request)
                finished += 1
                if saved is not None and on_image is not None:
                    on_image(saved)
                if produced.reason == "stock.all_engines_failed":
                    status = "failed"
                    break
                if saved is None and not produced.reason.startswith("stock."):
                    # rejected (gate or near-duplicate): a NEW prompt takes its place
                    new = refill.next_item(bs, batch.id, item.prompt)
                    if new is not None:
                        queue.append(new)
                        total += 1
                progress(finished, total, "stock")
            if refill.exhausted:
                bs.add_notices(batch.id, [Notice("stock.refill_exhausted",
                                                 {"tried": refill.used}).as_record()])
        except CancelledError:
            status = "cancelled"
        finally:
            if chain.notices:
                bs.add_notices(batch.id, chain.notices)
            bs.set_status(batch.id, status)
    return summarize(services, batch.id)


def _lead(prompt_en: str) -> str:
    return str(prompt_en).split(",")[0].strip().lower()


class Refill:
    """New prompts for rejected items: the batch's own mode asked for more prompts (no LLM call:
    keyword or random mode), skipping every prompt the batch already holds. At most `budget`
    replacements per batch (default: twice the count asked for), then the batch says so."""

    def __init__(self, services: Any, request: StockRequest, prompts: list[dict], used: int = 0,
                 budget: int | None = None, live: list[dict] | None = None) -> None:
        """`prompts`: every prompt the batch holds (never planned twice); `live`: those not rejected
        (the mix of kinds the refills keep; default all)."""
        from studio.text.stock_prompts import norm_key

        self.services = services
        self.request = request
        self.keys = {norm_key(p.get("prompt_en", "")) for p in prompts}
        self.used = used
        self.budget = 2 * int(request.count) if budget is None else budget
        self.exhausted = False
        self._pool: list = []
        self._round = 0
        self.leads: dict[str, int] = {}          # kind word leading a prompt -> items holding it
        self.rejects: dict[str, int] = {}        # kind word -> its rejects (one that keeps failing
        for p in (prompts if live is None else live):   # stops being preferred)
            lead = _lead(p.get("prompt_en", ""))
            self.leads[lead] = self.leads.get(lead, 0) + 1

    def _more(self) -> None:
        from studio.text.stock_prompts import build_prompts

        mode = "keyword" if self.request.keywords.strip() else "random"
        n = int(self.request.count) * 2 + 8
        self._round += 1
        plan = build_prompts(mode, n, seed=int(self.request.seed) + 7919 * self._round,
                             industry=self.request.industry, keywords=self.request.keywords,
                             presets_dir=self.services.settings.presets_dir)
        self._pool.extend(plan.prompts)

    def next_item(self, bs: BatchStore, batch_id: str, like: dict | None = None) -> BatchItem | None:
        """A new item for a rejected one (`like`: its prompt). The prompt chosen leads with the kind
        word the batch holds least of (counting the plan and refills, less the rejects), so refills
        keep the batch's mix of kinds instead of piling up the kind that passes most easily."""
        from studio.text.stock_prompts import norm_key

        if self.used >= self.budget:
            self.exhausted = True
            return None
        if like:
            lead = _lead(like.get("prompt_en", ""))
            self.leads[lead] = self.leads.get(lead, 0) - 1
            self.rejects[lead] = self.rejects.get(lead, 0) + 1
        if not self._pool:
            self._more()
        fresh = [p for p in self._pool if norm_key(p.prompt_en) not in self.keys]
        if fresh:
            best = min(fresh, key=lambda p: (self.rejects.get(_lead(p.prompt_en), 0) >= 4,
                                             self.leads.get(_lead(p.prompt_en), 0)))
            self._pool.remove(best)
            self._pool.insert(0, best)
        for _ in range(3):
            while self._pool:
                p = self._pool.pop(0)
                key = norm_key(p.prompt_en)
                if key and key not in self.keys:
                    self.keys.add(key)
                    self.used += 1
                    self.leads[_lead(p.prompt_en)] = self.leads.get(_lead(p.prompt_en), 0) + 1
                    d = p.to_dict() | {"refill": True}
                    return bs.add_item(batch_id, d, int(self.request.seed) * 1000 + 500_000 + self.used)
            self._more()
        self.exhausted = True
        return None


def resume_latest(services: Any, **kwargs: Any) -> Summary | None:
    with batch_store(services) as bs:
        batch = bs.latest(unfinished=True)
    return run_batch(batch.id, services, **kwargs) if batch else None


# --- export -----------------------------------------------------------------------------------
def export_files(services: Any, batch_id: str) -> tuple[list[tuple[str, Path]], dict[str, bytes]]:
    """([(export file name, stored file)], {csv name: bytes}) for the batch's accepted images."""
    with batch_store(services) as bs:
        batch = bs.get(batch_id)
    files: list[tuple[str, Path]] = []
    rows: list[tuple[str, StockMeta]] = []
    for rec in _batch_records(services, batch.id):
        name = f"stock_{batch.short}_{int(rec.settings['batch_item']):04d}{rec.path.suffix}"
        files.append((name, rec.path))
        rows.append((name, StockMeta.from_dict(rec.settings.get("meta", {}))))
    csvs = {f"{pid}_{batch.short}.csv": write_csv(pid, rows) for pid in PLATFORMS}
    return files, csvs


def export_zip(services: Any, batch_id: str, target: Path) -> Path:
    """A ZIP of the batch's images and one CSV per platform (written atomically)."""
    files, csvs = export_files(services, batch_id)
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, path in files:
            zf.write(path, name, compress_type=zipfile.ZIP_STORED)  # JPEG/PNG don't compress further
        for name, data in csvs.items():
            zf.writestr(name, data)
    tmp.replace(target)
    return target


def export_dir(services: Any, batch_id: str, out: Path) -> dict[str, Any]:
    """Copy the images, write the CSVs and the ZIP into `out` (the CLI's --out)."""
    import shutil

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files, csvs = export_files(services, batch_id)
    for name, path in files:
        shutil.copyfile(path, out / name)
    for name, data in csvs.items():
        (out / name).write_bytes(data)
    with batch_store(services) as bs:
        short = bs.get(batch_id).short
    z = export_zip(services, batch_id, out / f"stock_{short}.zip")
    return {"images": [n for n, _ in files], "csv": sorted(csvs), "zip": z.name}
