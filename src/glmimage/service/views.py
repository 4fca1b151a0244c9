"""Tables -> response bodies. Queries load everything a response shows up front (sessions close before the
response is written)."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from glmimage.service.schemas import GenerationOut, JobKind, JobStatus, KeyOut, OutputOut, QAOut, ReviewStatus
from glmimage.service.tables import ApiKey, Generation, Output

GENERATION_LOAD = (
    selectinload(Generation.outputs).selectinload(Output.qa_results),
    selectinload(Generation.inputs),
)


def load_generation(session: Session, gen_id: str) -> Generation | None:
    return session.scalar(select(Generation).where(Generation.id == gen_id).options(*GENERATION_LOAD))


def load_existing_generation(session: Session, gen_id: str) -> Generation:
    """`load_generation` for an id known to exist (one just submitted or found); NoResultFound if not."""
    return session.scalars(select(Generation).where(Generation.id == gen_id).options(*GENERATION_LOAD)).one()


def asset_url(base_url: str, asset_hash: str) -> str:
    return f"{base_url.rstrip('/')}/v1/assets/{asset_hash}"


def output_out(out: Output, base_url: str, gen: Generation | None = None) -> OutputOut:
    """`gen`: the output's generation when the caller has it (else it must be loaded on `out`)."""
    gen = gen or out.generation
    return OutputOut(
        id=out.id, generation_id=out.generation_id, prompt=gen.prompt.text, use_case=gen.use_case, index=out.index,
        asset_hash=out.asset_hash, url=asset_url(base_url, out.asset_hash), seed=out.seed, plan_hash=out.plan_hash,
        qa_passed=out.qa_passed, text_score=out.text_score,
        # The column is a string; the response model checks the value is one of these.
        review_status=cast(ReviewStatus, out.review_status), review_reasons=list(out.review_reasons or []),
        review_note=out.review_note, reviewed_at=out.reviewed_at,
        qa=[QAOut(check=q.check, passed=q.passed, score=q.score, detail=q.detail) for q in out.qa_results],
    )


def generation_out(gen: Generation, base_url: str) -> GenerationOut:
    return GenerationOut(
        id=gen.id, kind=cast(JobKind, gen.kind), status=cast(JobStatus, gen.status), prompt=gen.prompt.text,
        width=gen.width, height=gen.height,
        steps=gen.steps, guidance=gen.guidance, seed=gen.seed, copy_bias=gen.copy_bias, keep=gen.keep,
        moderation=gen.moderation, mask_hash=gen.mask_hash, webhook_url=gen.webhook_url,
        webhook_status=cast(Any, gen.webhook_status),        num_images=gen.num_images, model_id=gen.model_id,
        use_case=gen.use_case, template_id=gen.template_id, brand_kit_id=gen.brand_kit_id, variables=gen.variables,
        parent_output_id=gen.parent_output_id, rerun_of_id=gen.rerun_of_id,
        reference_hashes=[i.asset_hash for i in gen.inputs], policy_flag=gen.policy_flag, attempts=gen.attempts,
        cancel_requested=gen.cancel_requested, error_code=gen.error_code, error=gen.error, batch_id=gen.batch_id,
        timings=gen.timings, created_at=gen.created_at, started_at=gen.started_at, finished_at=gen.finished_at,
        outputs=[output_out(o, base_url, gen) for o in gen.outputs],
    )


def key_out(key: ApiKey) -> KeyOut:
    return KeyOut(id=key.id, name=key.name, prefix=key.prefix, roles=sorted(key.role_set),
                  rate_limit_per_minute=key.rate_limit_per_minute, quota_images=key.quota_images,
                  images_used=key.images_used, created_at=key.created_at, revoked_at=key.revoked_at)
