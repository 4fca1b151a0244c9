"""Running jobs: claim a batch from the database, run it on the engine, check and record every image.

Batching. Text-to-image jobs with the same size, sampling and image count run as one `engine.generate` call over
their prompts. The engine seeds prompt k of such a call with `seed + k * n` (planner and latents), so job k of a
batch is exactly what running it alone with that seed gives; the seed is recorded on the job. A job that brought
its own seed therefore only leads a batch, and the jobs that join it are those without one (jobs.claim_batch).

`LocalWorker` is the default: one thread in the API process, woken on every submit. `glmimage serve worker` runs
the same `JobRunner` under RQ on other processes or machines (rq_queue.py).
"""

from __future__ import annotations

import io
import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Final, Literal, Self, TypedDict

from PIL import Image, PngImagePlugin

from glmimage.engine.glyph_text import extract_glyph_texts
from glmimage.engine.seeds import plan_seeds
from glmimage.errors import GlmImageError
from glmimage.io import METADATA_KEY
from glmimage.prompts.brand import BrandKit as BrandKitSpec
from glmimage.service import jobs as job_store
from glmimage.service.db import Database
from glmimage.service.governance import GovernancePolicy
from glmimage.service.metrics import Metrics
from glmimage.service.qa import CheckResult, OcrTextChecker, QAConfig, TextChecker, run_checks
from glmimage.service.safety import SafetyPolicy
from glmimage.service.settings import Settings
from glmimage.service.tables import BrandKit, Generation, Output, QAResult

if TYPE_CHECKING:  # the engine (and torch) is imported where it is loaded, not with the service modules
    from glmimage.engine import Engine
    from glmimage.service.previews import PreviewBus

log = logging.getLogger("glmimage.service.worker")
SEED_RANGE = 2**31  # seeds people can read, type and pass around in JSON
PNG_TEXT_KEYS = ("prompt", "seed", "model_id", "steps", "guidance", "plan_hash")  # as glmimage.io.save_png


def worker_id(kind: str) -> str:
    """The name a worker records on the jobs it runs: host, process and kind ("local", "rq")."""
    return f"{socket.gethostname()}:{os.getpid()}:{kind}"


def load_engine(settings: Settings) -> Engine:
    """The engine for `settings`: its model on its device, in its dtype."""
    from glmimage.engine import Engine
    from glmimage.engine.options import EngineOptions, resolve_device

    device, dtype = resolve_device(settings.device, settings.dtype)
    return Engine.from_pretrained(settings.resolved_model, device=device, dtype=dtype,
                                  options=EngineOptions(compile=settings.compile))


class _Default(Enum):
    """A sentinel type: its one member can be told apart from None (which means "no text check")."""

    TEXT_CHECKER = "default text checker"


DEFAULT_TEXT_CHECKER: Final = _Default.TEXT_CHECKER  # "the OCR if the settings ask for it"
TextCheckerArg = TextChecker | None | Literal[_Default.TEXT_CHECKER]


@dataclass
class WorkerContext:
    """What running jobs needs; built once per process."""

    db: Database
    settings: Settings
    get_engine: Callable[[], Engine]
    metrics: Metrics
    safety: SafetyPolicy
    governance: GovernancePolicy
    qa_config: QAConfig = field(default_factory=QAConfig)
    text_checker: TextChecker | None = None
    on_finished: Callable[[str], None] = lambda job_id: None
    previews: PreviewBus | None = None  # where partial images go (streaming requests in this process)

    @classmethod
    def from_settings(cls, settings: Settings, db: Database, metrics: Metrics, get_engine: Callable[[], Engine],
                      text_checker: TextCheckerArg = DEFAULT_TEXT_CHECKER, **kwargs) -> WorkerContext:
        """The policies and checks `settings` name. `text_checker`: the OCR when settings.ocr, unless given."""
        if text_checker is DEFAULT_TEXT_CHECKER:
            text_checker = OcrTextChecker() if settings.ocr else None
        return cls(db=db, settings=settings, get_engine=get_engine, metrics=metrics,
                   safety=SafetyPolicy.load(settings.safety_policy or None),
                   governance=GovernancePolicy.load(settings.governance_policy or None), qa_config=QAConfig(),
                   text_checker=text_checker, **kwargs)


class _Sampling(TypedDict):
    """The engine arguments every job of a batch shares."""

    width: int
    height: int
    steps: int | None
    guidance: float | None
    seed: int
    num_images: int


@dataclass
class _Rendered:
    """One job's images after the engine, checked, ready to write."""

    job: Generation
    seed: int
    pngs: list[bytes]
    metadata: list[dict]
    checks: list[list[CheckResult]]
    timings: dict


def encode_png(image: Image.Image, metadata: dict | None = None) -> bytes:
    """PNG bytes carrying `metadata` the way the CLI's files do (`glmimage.io.save_png`: the whole record as JSON
    under "glmimage", plus readable prompt/seed/model/steps/guidance/plan chunks), so `read_png_metadata` reads
    both alike."""
    info = PngImagePlugin.PngInfo()
    if metadata is not None:
        info.add_itxt(METADATA_KEY, json.dumps(metadata, sort_keys=True))
        for key in PNG_TEXT_KEYS:
            if key in metadata:
                info.add_itxt(key, str(metadata[key]))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


class JobRunner:
    def __init__(self, ctx: WorkerContext, worker_id: str) -> None:
        self.ctx = ctx
        self.worker_id = worker_id

    def run_batch(self, job_id: str | None = None) -> list[str]:
        """Claim a batch (led by `job_id` if given and still queued) and run it. Returns the job ids handled."""
        ctx = self.ctx
        with ctx.db.sessions() as session:
            jobs = job_store.claim_batch(session, self.worker_id, ctx.settings.batch_max_images, job_id)
            for job in jobs:  # load what the worker needs before the session closes
                _ = job.prompt.text, [i.asset_hash for i in job.inputs]
        if not jobs:
            return []
        ctx.metrics.batch_jobs.observe(len(jobs))
        for job in jobs:
            if job.started_at is not None:  # always, once claimed
                ctx.metrics.job_seconds.labels("queue").observe((job.started_at - job.created_at).total_seconds())
        with _Heartbeat(ctx.db, [j.id for j in jobs], self.worker_id, ctx.settings.heartbeat_s):
            self._run(jobs)
        return [j.id for j in jobs]

    def _run(self, jobs: list[Generation]) -> None:
        try:
            rendered = self._render(jobs)
        except GlmImageError as exc:
            if len(jobs) > 1:  # one bad request must not fail the jobs it was batched with
                for job in jobs:
                    self._run([job])
                return
            self._fail(jobs[0], "invalid_request", str(exc))
            return
        except Exception as exc:
            log.exception("engine failed on batch %s", [j.id for j in jobs])
            for job in jobs:
                self._fail(job, "engine_error", f"{type(exc).__name__}: {exc}")
            return
        for item in rendered:
            self._record(item)

    # -- 1. engine -------------------------------------------------------------------------------------------
    def _render(self, jobs: list[Generation]) -> list[_Rendered]:
        engine = self.ctx.get_engine()
        first = jobs[0]
        base_seed = first.seed if first.seed is not None else secrets.randbelow(SEED_RANGE)
        sampling: _Sampling = {"width": first.width, "height": first.height, "steps": first.steps,
                               "guidance": first.guidance, "seed": base_seed, "num_images": first.num_images}
        previews = self.ctx.previews
        if previews is not None and any(previews.wanted(j.id) for j in jobs):
            result = self._render_with_previews(engine, jobs, sampling, previews)
        elif first.kind == "edit":
            refs = self._references(first)
            result = engine.edit(first.prompt.text, refs, copy_bias=first.copy_bias, keep=first.keep,
                                 keep_mask=self._mask(first), **sampling)
        else:
            result = engine.generate([j.prompt.text for j in jobs], **sampling)
        n = first.num_images
        return [self._check(job, base_seed + k * n, result.images[k * n:(k + 1) * n],
                            result.metadata[k * n:(k + 1) * n]) for k, job in enumerate(jobs)]

    def _references(self, job: Generation) -> list[Image.Image]:
        from glmimage.service.tables import Asset

        with self.ctx.db.sessions() as session:
            assets = [session.get_one(Asset, i.asset_hash) for i in job.inputs]
            return [Image.open(io.BytesIO(a.data)).convert("RGB") for a in assets]

    def _render_with_previews(self, engine: Engine, jobs: list[Generation], sampling: _Sampling,
                              previews: PreviewBus):
        """What `engine.generate` / `engine.edit` do (the same plans, seeds and images), in their two stages, with a
        preview between them for the jobs streaming: each one's plan rendered with a single decoder step."""
        first, seed, n = jobs[0], sampling["seed"], sampling["num_images"]
        width, height = sampling["width"], sampling["height"]
        if first.kind == "edit":
            plans = [engine.plan(first.prompt.text, seed=seed, images=self._references(first),
                                 copy_bias=first.copy_bias, width=width, height=height)]
            keep = _edit_keep(engine, first.keep, self._mask(first))
        else:
            plans = engine.plan_many([j.prompt.text for j in jobs], seeds=plan_seeds(seed, len(jobs), n),
                                     width=width, height=height)
            keep = None
        for job, plan in zip(jobs, plans):
            if previews.wanted(job.id):
                preview = engine.decode(plan, seed=seed, steps=1, guidance=sampling["guidance"], keep=keep)
                previews.publish(job.id, encode_png(preview.images[0]))
        return engine.decode(plans, seed=seed, steps=sampling["steps"], guidance=sampling["guidance"],
                             num_images=n, keep=keep)

    def _mask(self, job: Generation):
        """The keep mask of a masked edit (True where the reference stays), or None."""
        if job.mask_hash is None:
            return None
        from glmimage.engine.keep import mask_from_alpha
        from glmimage.service.tables import Asset

        with self.ctx.db.sessions() as session:
            return mask_from_alpha(Image.open(io.BytesIO(session.get_one(Asset, job.mask_hash).data)))

    # -- 2. checks (outside any transaction: OCR takes a while and SQLite has one writer) ---------------------
    def _check(self, job: Generation, seed: int, images: list, metadata: list[dict]) -> _Rendered:
        ctx = self.ctx
        brand = self._brand(job)
        expected = extract_glyph_texts(job.prompt.text)
        # The text read back is screened at the job's moderation level (a level since removed: as written).
        safety = ctx.safety.at_level(job.moderation) if (job.moderation or "auto") in ctx.safety.levels else ctx.safety
        checks = [run_checks(img, width=job.width, height=job.height, expected_texts=expected,
                             config=ctx.qa_config, text_checker=ctx.text_checker, safety=safety, brand=brand)
                  for img in images]
        timings = {
            "planner": metadata[0]["timings"]["planner"],
            "decoder": round(sum(m["timings"]["decoder"] for m in metadata), 4),
            "vae": round(sum(m["timings"]["vae"] for m in metadata), 4),
        }
        pngs = [encode_png(img, {**meta, "generation_id": job.id}) for img, meta in zip(images, metadata)]
        return _Rendered(job, seed, pngs, metadata, checks, timings)

    def _brand(self, job: Generation) -> BrandKitSpec | None:
        if job.brand_kit_id is None:
            return None
        with self.ctx.db.sessions() as session:
            return brand_spec(session.get_one(BrandKit, job.brand_kit_id))

    # -- 3. record ------------------------------------------------------------------------------------------
    def _record(self, item: _Rendered) -> None:
        ctx, job = self.ctx, item.job
        decisions = [ctx.governance.decide(job.use_case, checks, job.policy_flag) for checks in item.checks]
        with ctx.db.session() as session:
            gen = session.get_one(Generation, job.id)  # claimed by this worker, so there
            for index, (png, meta, checks, decision) in enumerate(zip(item.pngs, item.metadata, item.checks,
                                                                       decisions)):
                asset = job_store.store_asset(session, png)
                session.add(Output(
                    generation_id=gen.id, index=index, asset_hash=asset.hash, seed=meta["seed"],
                    plan_hash=meta.get("plan_hash"), meta=meta, qa_passed=all(c.passed for c in checks),
                    text_score=next((c.score for c in checks if c.check == "text"), None),
                    review_status=decision.status, review_reasons=decision.reasons,
                    qa_results=[QAResult(check=c.check, passed=c.passed, score=c.score, detail=c.detail)
                                for c in checks],
                ))
            # The steps and guidance the engine used, for jobs that left them to the model's defaults.
            effective = item.metadata[0]
            succeeded = job_store.mark_succeeded(session, gen, self.worker_id, item.seed, item.timings,
                                                 steps=effective.get("steps"), guidance=effective.get("guidance"))
            if not succeeded:
                session.rollback()  # canceled meanwhile, or taken from us as stale: keep nothing
        if not succeeded:
            with ctx.db.session() as session:
                canceled = job_store.settle_canceled(session, job.id, self.worker_id)
            log.info("discarded results of job %s (%s)", job.id, "canceled" if canceled else "no longer ours",
                     extra={"job_id": job.id})
            if canceled:
                ctx.metrics.jobs_finished.labels("canceled").inc()
            ctx.on_finished(job.id)
            return
        m = ctx.metrics
        m.jobs_finished.labels("succeeded").inc()
        m.images.labels(job.kind).inc(len(item.pngs))
        for stage in ("planner", "decoder", "vae"):
            m.stage_seconds.labels(stage).observe(item.timings[stage])
        m.job_seconds.labels("run").observe(sum(item.timings.values()))
        for checks in item.checks:
            m.qa_outputs.labels("passed" if all(c.passed for c in checks) else "failed").inc()
            for c in checks:
                m.qa_checks.labels(c.check, "pass" if c.passed else "fail").inc()
        log.info("job %s succeeded", job.id, extra={"job_id": job.id, "batch_id": job.batch_id,
                                                    "images": len(item.pngs), "timings": item.timings})
        ctx.on_finished(job.id)

    def _fail(self, job: Generation, code: str, reason: str) -> None:
        with self.ctx.db.session() as session:
            failed = job_store.mark_failed(session, job.id, code, reason, worker_id=self.worker_id)
        if failed:
            self.ctx.metrics.jobs_finished.labels("failed").inc()
            log.warning("job %s failed: %s", job.id, reason, extra={"job_id": job.id, "code": code})
        self.ctx.on_finished(job.id)


def _edit_keep(engine: Engine, keep: bool | None, mask):
    """The `keep` that `engine.edit(keep=keep, keep_mask=mask)` hands to `engine.decode`."""
    if mask is None:
        return keep  # decode reads None as the model's setting, as edit does
    from glmimage.engine.keep import KeepConfig, masked

    return masked(engine.edit_keep if keep is None else KeepConfig(), mask)  # keep=False with a mask: refused


def brand_spec(row: BrandKit) -> BrandKitSpec:
    return BrandKitSpec(name=row.name, palette=tuple(row.palette), typography=tuple(row.typography),
                        voice=tuple(row.voice), required_words=tuple(row.required_words),
                        forbidden_words=tuple(row.forbidden_words), max_palette_distance=row.max_palette_distance)


class _Heartbeat:
    """While a batch runs, touch its jobs every `interval` seconds so sweepers know the worker lives."""

    def __init__(self, db: Database, job_ids: list[str], worker_id: str, interval: float) -> None:
        self._db, self._ids, self._worker, self._interval = db, job_ids, worker_id, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="glmimage-heartbeat", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                with self._db.session() as session:
                    job_store.heartbeat(session, self._ids, self._worker)
            except Exception:
                log.exception("heartbeat failed")


class LocalWorker:
    """The in-process worker: one thread (the engine runs one call at a time anyway)."""

    def __init__(self, runner: JobRunner, batch_wait_s: float, poll_s: float = 1.0) -> None:
        self.runner = runner
        self._batch_wait_s = batch_wait_s
        self._poll_s = poll_s  # also picks up jobs queued by recovery or by another API process
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="glmimage-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def notify(self) -> None:
        self._wake.set()

    def pause(self) -> None:
        """Stop taking new batches (the one running finishes). Tests use it to queue jobs up."""
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> bool:
        """Ask the thread to stop after the current batch; False if it is still running after `timeout`."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.is_set():
            woke = self._wake.wait(self._poll_s)
            self._wake.clear()
            if self._paused.is_set():
                continue
            if woke and self._batch_wait_s:
                time.sleep(self._batch_wait_s)  # let requests sent together arrive and share the batch
            try:
                while not self._stop.is_set() and not self._paused.is_set() and self.runner.run_batch():
                    pass
            except Exception:
                log.exception("worker loop error")
                self._stop.wait(self._poll_s)
