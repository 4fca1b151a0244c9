"""The job store: submit, claim, finish, fail, cancel and recover generations, all through the database.

Every state change is one conditional UPDATE (`... WHERE status = 'queued'`, `... AND worker_id = me`), so two
workers never take the same job and a job recovered from a dead worker cannot be finished twice. This holds on
SQLite and on PostgreSQL without advisory locks.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from PIL import Image
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from glmimage.service.auth import refund_quota
from glmimage.service.db import rows_matched
from glmimage.service.tables import (
    CANCELED,
    FAILED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    TERMINAL_STATES,
    Asset,
    Generation,
    GenerationInput,
    Prompt,
    utcnow,
)

KINDS = ("generate", "edit")


@dataclass(frozen=True)
class JobSpec:
    """A validated request, ready to queue. References are PNG/JPEG/WebP bytes, already checked to decode."""

    kind: str
    prompt: str
    width: int
    height: int
    num_images: int
    steps: int | None = None
    guidance: float | None = None
    seed: int | None = None
    copy_bias: float | None = None  # edits only; None = the model's setting
    keep: bool | None = None
    moderation: str | None = None  # the safety policy's level; None = "auto"
    mask: bytes | None = None  # edits: an OpenAI edit mask (PNG, alpha 0 = edit), checked against the reference
    webhook_url: str | None = None  # POSTed a signed event when the job ends (webhooks.py)
    use_case: str = "default"
    response_format: str = "b64_json"
    references: list[bytes] = field(default_factory=list)
    policy_flag: str | None = None
    template_id: int | None = None
    brand_kit_id: int | None = None
    variables: dict | None = None
    parent_output_id: int | None = None
    rerun_of_id: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind {self.kind!r} is not one of {KINDS}")
        if (self.kind == "edit") != bool(self.references):
            raise ValueError("an edit needs reference images and a generation takes none")
        if self.kind != "edit" and (self.copy_bias is not None or self.keep is not None or self.mask is not None):
            raise ValueError("copy_bias, keep and mask are edit settings; a generation takes none of them")


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def get_or_create_prompt(session: Session, text: str) -> Prompt:
    digest = text_hash(text)
    prompt = session.scalar(select(Prompt).where(Prompt.text_hash == digest))
    if prompt is not None:
        return prompt
    try:
        with session.begin_nested():  # another request may insert the same prompt at the same moment
            prompt = Prompt(text=text, text_hash=digest)
            session.add(prompt)
        return prompt
    except IntegrityError:
        return session.scalars(select(Prompt).where(Prompt.text_hash == digest)).one()


def store_asset(session: Session, data: bytes) -> Asset:
    """Store image bytes once under their sha256 (decodes them to record the format and size)."""
    digest = hashlib.sha256(data).hexdigest()
    asset = session.get(Asset, digest)
    if asset is not None:
        return asset
    with Image.open(io.BytesIO(data)) as im:
        mime = Image.MIME.get(im.format or "", "application/octet-stream")
        width, height = im.size
    try:
        with session.begin_nested():
            asset = Asset(hash=digest, mime=mime, width=width, height=height, size_bytes=len(data), data=data)
            session.add(asset)
        return asset
    except IntegrityError:  # another request stored the same bytes at the same moment: theirs is there now
        return session.get_one(Asset, digest)


def submit(session: Session, spec: JobSpec, *, model_id: str, api_key_id: int | None) -> Generation:
    """Insert a queued generation (the caller commits, together with the quota it reserved)."""
    gen = Generation(
        id=uuid.uuid4().hex, kind=spec.kind, status=QUEUED, prompt=get_or_create_prompt(session, spec.prompt),
        width=spec.width, height=spec.height, steps=spec.steps, guidance=spec.guidance, seed=spec.seed,
        copy_bias=spec.copy_bias, keep=spec.keep, moderation=spec.moderation, num_images=spec.num_images,
        model_id=model_id, use_case=spec.use_case,
        response_format=spec.response_format, template_id=spec.template_id, brand_kit_id=spec.brand_kit_id,
        variables=spec.variables, parent_output_id=spec.parent_output_id, rerun_of_id=spec.rerun_of_id,
        policy_flag=spec.policy_flag, api_key_id=api_key_id, attempts=0, cancel_requested=False,
        created_at=utcnow(),
    )
    if spec.mask is not None:
        gen.mask_hash = store_asset(session, spec.mask).hash
    if spec.webhook_url is not None:
        gen.webhook_url, gen.webhook_status, gen.webhook_attempts = spec.webhook_url, "pending", 0
    for position, data in enumerate(spec.references):
        gen.inputs.append(GenerationInput(position=position, asset_hash=store_asset(session, data).hash))
    session.add(gen)
    session.flush()
    return gen


def _compatible(first: Generation):
    """Filters for queued jobs that can share `first`'s batch: text-to-image with the same size, sampling and
    image count, and no seed of their own (the batch gives them theirs)."""
    return (
        Generation.status == QUEUED,
        Generation.kind == "generate",
        Generation.id != first.id,
        Generation.model_id == first.model_id,
        Generation.width == first.width,
        Generation.height == first.height,
        Generation.num_images == first.num_images,
        Generation.steps.is_(None) if first.steps is None else Generation.steps == first.steps,
        Generation.guidance.is_(None) if first.guidance is None else Generation.guidance == first.guidance,
        Generation.seed.is_(None),
    )


def claim_batch(session: Session, worker_id: str, max_images: int, job_id: str | None = None) -> list[Generation]:
    """Take the oldest queued job (or `job_id` if still queued) and the compatible jobs queued after it, up to
    `max_images` images in all; mark them running for `worker_id`. Commits. Returns [] if there is nothing."""
    first = (session.get(Generation, job_id) if job_id else None) or session.scalar(
        select(Generation).where(Generation.status == QUEUED).order_by(Generation.created_at, Generation.id).limit(1)
    )
    if first is None or first.status != QUEUED:
        return []
    candidates = [first]
    room = max_images // first.num_images - 1
    if first.kind == "generate" and room > 0:
        candidates += session.scalars(
            select(Generation).where(*_compatible(first)).order_by(Generation.created_at, Generation.id).limit(room)
        ).all()
    batch_id, now = uuid.uuid4().hex, utcnow()
    claimed = []
    for gen in candidates:
        matched = rows_matched(
            session,
            update(Generation)
            .where(Generation.id == gen.id, Generation.status == QUEUED)
            .values(status=RUNNING, worker_id=worker_id, batch_id=batch_id, attempts=Generation.attempts + 1,
                    started_at=now, heartbeat_at=now),
        )
        if matched == 1:
            claimed.append(gen.id)
    session.commit()
    session.expire_all()
    if not claimed:
        return []
    jobs = {g.id: g for g in session.scalars(select(Generation).where(Generation.id.in_(claimed)))}
    return [jobs[i] for i in claimed]


def heartbeat(session: Session, job_ids: list[str], worker_id: str) -> None:
    session.execute(
        update(Generation)
        .where(Generation.id.in_(job_ids), Generation.status == RUNNING, Generation.worker_id == worker_id)
        .values(heartbeat_at=utcnow())
    )


def mark_succeeded(session: Session, gen: Generation, worker_id: str, seed: int, timings: dict, *,
                   steps: int | None = None, guidance: float | None = None) -> bool:
    """Running -> succeeded, only if this worker still owns the job and nobody asked to cancel it. `steps` and
    `guidance`: what the engine used, recorded where the job left them to the model (None)."""
    values = {"status": SUCCEEDED, "seed": seed, "timings": timings, "finished_at": utcnow(), "error": None,
              "error_code": None}
    if steps is not None:
        values["steps"] = func.coalesce(Generation.steps, steps)
    if guidance is not None:
        values["guidance"] = func.coalesce(Generation.guidance, guidance)
    matched = rows_matched(
        session,
        update(Generation)
        .where(Generation.id == gen.id, Generation.status == RUNNING, Generation.worker_id == worker_id,
               Generation.cancel_requested.is_(False))
        .values(**values),
    )
    return matched == 1


def mark_failed(session: Session, gen_id: str, code: str, reason: str, *, worker_id: str | None = None) -> bool:
    """Running (or queued) -> failed, refunding the images the key reserved. With `worker_id`, only if that
    worker still owns the job."""
    conditions = [Generation.id == gen_id, Generation.status.in_((QUEUED, RUNNING))]
    if worker_id is not None:
        conditions.append(Generation.worker_id == worker_id)
    return _finish_unsuccessfully(session, conditions, FAILED, code, reason)


def settle_canceled(session: Session, gen_id: str, worker_id: str) -> bool:
    """A running job whose cancel was requested: -> canceled, refunded, outputs discarded."""
    conditions = [Generation.id == gen_id, Generation.status == RUNNING, Generation.worker_id == worker_id,
                  Generation.cancel_requested.is_(True)]
    return _finish_unsuccessfully(session, conditions, CANCELED, "canceled", "canceled by the client while running")


def _finish_unsuccessfully(session: Session, conditions: list, status: str, code: str, reason: str) -> bool:
    # Lock the generation row only, and read just what the refund needs: the joined eager load of `prompt` is an
    # outer join, and PostgreSQL refuses FOR UPDATE on the nullable side of one (SQLite ignores FOR UPDATE).
    row = session.execute(
        select(Generation.api_key_id, Generation.num_images).where(*conditions).with_for_update(of=Generation)
    ).first()
    if row is None:
        return False
    matched = rows_matched(
        session,
        update(Generation).where(*conditions)
        .values(status=status, error_code=code, error=reason, finished_at=utcnow()),
    )
    if matched != 1:
        return False
    refund_quota(session, row.api_key_id, row.num_images)
    return True


def request_cancel(session: Session, gen: Generation) -> Generation:
    """Queued: canceled at once. Running: flagged; the worker discards the result when the batch ends (the
    engine cannot stop mid-denoise). Finished: unchanged (the caller reports a conflict)."""
    if gen.status == QUEUED:
        _finish_unsuccessfully(session, [Generation.id == gen.id, Generation.status == QUEUED], CANCELED,
                               "canceled", "canceled by the client")
        session.refresh(gen)  # a worker may have claimed it a moment ago: then it is running now
    if gen.status == RUNNING:
        session.execute(update(Generation).where(Generation.id == gen.id, Generation.status == RUNNING)
                        .values(cancel_requested=True))
        session.refresh(gen)
    return gen


@dataclass
class Recovery:
    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # job id -> why it could not be recovered this time


def recover_stale(session: Session, stale_before: datetime, max_attempts: int) -> Recovery:
    """Running jobs whose worker stopped heart-beating before `stale_before` (a crash, a restart): back to the
    queue while they have attempts left, else failed with the reason. Each job in its own savepoint: one that
    cannot be recovered is reported in `errors` and left for the next sweep, and the others still are. Commits."""
    recovery = Recovery()
    stale = session.scalars(
        select(Generation).where(Generation.status == RUNNING, Generation.heartbeat_at < stale_before)
    ).all()
    for gen in stale:
        gen_id = gen.id
        try:
            with session.begin_nested():
                outcome = _recover_one(session, gen, stale_before, max_attempts)
        except Exception as exc:  # noqa: BLE001 - reported to the caller, which logs it and tells /readyz
            recovery.errors[gen_id] = f"{type(exc).__name__}: {exc}"
            continue
        if outcome is not None:
            getattr(recovery, outcome).append(gen_id)
    session.commit()
    return recovery


def _recover_one(session: Session, gen: Generation, stale_before: datetime, max_attempts: int) -> str | None:
    """"requeued", "failed" (given up or canceled) or None (someone else changed the job meanwhile)."""
    gen_id, worker, attempts, cancel = gen.id, gen.worker_id, gen.attempts, gen.cancel_requested
    lost = f"worker {worker} stopped while running attempt {attempts} of {max_attempts}"
    if cancel:
        closed = _finish_unsuccessfully(session, [Generation.id == gen_id, Generation.status == RUNNING], CANCELED,
                                        "canceled", "canceled by the client; its worker stopped")
        return "failed" if closed else None
    if attempts < max_attempts:
        matched = rows_matched(
            session,
            update(Generation).where(Generation.id == gen_id, Generation.status == RUNNING,
                                     Generation.heartbeat_at < stale_before)
            .values(status=QUEUED, worker_id=None, batch_id=None, error=f"retrying: {lost}"),
        )
        return "requeued" if matched == 1 else None
    closed = _finish_unsuccessfully(session, [Generation.id == gen_id, Generation.status == RUNNING],
                                    FAILED, "worker_lost", f"gave up: {lost}")
    return "failed" if closed else None


def queued_ids(session: Session) -> list[str]:
    return list(session.scalars(
        select(Generation.id).where(Generation.status == QUEUED).order_by(Generation.created_at, Generation.id)
    ))


def count_by_status(session: Session) -> dict[str, int]:
    rows = session.execute(select(Generation.status, func.count()).group_by(Generation.status)).all()
    return {status: count for status, count in rows}


def is_terminal(status: str) -> bool:
    return status in TERMINAL_STATES
