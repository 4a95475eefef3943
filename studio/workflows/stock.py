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
from studio.text.stock_meta import PLATFORMS, StockMeta, build_meta, write_csv
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
                return result.images[0].convert("RGB"), name, notices
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
    for seed in seeds:
        job = Text2ImageJob(prompt=prompt["prompt_en"], width=request.width, height=request.height, seed=seed,
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
    method = "none"
    if request.min_short:
        img, method = post.upscale(img, request.min_short, upscaler)
    data, suffix = post.encode(img, request.fmt, request.quality)
    return Produced(item.idx, True, engine=engine, seed=seed, data=data, suffix=suffix, size=img.size,
                    phash=gate.phash, upscale=method, metrics=gate.metrics, notices=notices + chain.notices[:])


def _seen_hashes(services: Any, batch_id: str) -> list[int]:
    out: list[int] = []
    for rec in _batch_records(services, batch_id):
        h = rec.settings.get("phash")
        if h:
            out.append(int(h, 16))
    return out


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
    for other in seen:
        if post.hamming(produced.phash, other) <= post.GateConfig().dup_bits:
            batches.mark(batch.id, item.idx, REJECTED, engine=produced.engine, reason="duplicate")
            return None
    meta = build_meta(item.prompt, request.industry)
    settings = {
        "batch_id": batch.id, "batch_item": item.idx, "phash": f"{produced.phash:016x}",
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
    seen.append(produced.phash)
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
    return Summary(batch.id, len(items), len(done), rejected, failed, batch.status, _notice_objs(batch.notices),
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
        upscaler = post.load_upscaler(services.settings.models_dir) if request.min_short else None
        seen = _seen_hashes(services, batch.id)
        progress(finished, total, "stock")
        status = "done"
        try:
            for item in pending:
                if cancel is not None and cancel.cancelled:
                    status = "cancelled"
                    break
                produced = produce_item(chain, item, request, upscaler, cancel)
                saved = commit_item(services, bs, batch, item, produced, seen, request)
                finished += 1
                progress(finished, total, "stock")
                if saved is not None and on_image is not None:
                    on_image(saved)
                if produced.reason == "stock.all_engines_failed":
                    status = "failed"
                    break
        except CancelledError:
            status = "cancelled"
        finally:
            if chain.notices:
                bs.add_notices(batch.id, chain.notices)
            bs.set_status(batch.id, status)
    return summarize(services, batch.id)


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
