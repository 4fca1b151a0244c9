"""The registry of generations: search, read, and re-run ("same prompt, new seed")."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query
from sqlalchemy import func, select

from glmimage.service import jobs as job_store
from glmimage.service import submission
from glmimage.service.deps import (
    AnyKey,
    BaseUrl,
    EngineDep,
    GenerateKey,
    ServicesDep,
    SessionDep,
    can_see_all,
)
from glmimage.service.errors import ERROR_RESPONSES
from glmimage.service.routes.common import visible_generation
from glmimage.service.schemas import ID_MAX, GenerationList, GenerationOut, RerunRequest
from glmimage.service.tables import Asset, Generation, Output, Prompt
from glmimage.service.views import GENERATION_LOAD, generation_out, load_existing_generation

router = APIRouter(prefix="/v1/generations", tags=["registry"], responses=ERROR_RESPONSES)


def like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@router.get("", response_model=GenerationList)
def search_generations(
    session: SessionDep, key: AnyKey, base_url: BaseUrl,
    q: str | None = Query(None, max_length=500, description="Words the prompt contains (case-insensitive)."),
    status: Literal["queued", "running", "succeeded", "failed", "canceled"] | None = None,
    review_status: Literal["approved", "needs_review", "rejected"] | None = None,
    kind: Literal["generate", "edit"] | None = None,
    use_case: str | None = Query(None, max_length=50),
    prompt_id: int | None = Query(None, ge=1, le=ID_MAX),
    seed: int | None = Query(None, ge=0, le=2**63 - 1),
    limit: int = Query(20, ge=1, le=100),
    offset: int = Query(0, ge=0, le=10**9),
) -> GenerationList:
    """Newest first."""
    query = select(Generation).join(Prompt, Generation.prompt_id == Prompt.id)
    if q:
        for word in q.split():
            query = query.where(Prompt.text.ilike(like_pattern(word), escape="\\"))
    filters = {Generation.status: status, Generation.kind: kind, Generation.use_case: use_case,
               Generation.prompt_id: prompt_id, Generation.seed: seed}
    for column, value in filters.items():
        if value is not None:
            query = query.where(column == value)
    if review_status is not None:
        query = query.where(Generation.outputs.any(Output.review_status == review_status))
    if not can_see_all(key):
        query = query.where(Generation.api_key_id == key.id)
    total = session.scalars(select(func.count()).select_from(query.subquery())).one()
    rows = session.scalars(
        query.order_by(Generation.created_at.desc(), Generation.id).limit(limit).offset(offset)
        .options(*GENERATION_LOAD)
    ).unique().all()
    return GenerationList(total=total, data=[generation_out(g, base_url) for g in rows])


@router.get("/{gen_id}", response_model=GenerationOut)
def get_generation(gen_id: str, session: SessionDep, key: AnyKey, base_url: BaseUrl) -> GenerationOut:
    return generation_out(visible_generation(session, gen_id, key), base_url)


@router.post("/{gen_id}/rerun", status_code=202, response_model=GenerationOut)
def rerun_generation(gen_id: str, body: RerunRequest, services: ServicesDep, session: SessionDep, key: GenerateKey,
                     engine: EngineDep, base_url: BaseUrl) -> GenerationOut:
    """Queue the same prompt and parameters again with a new seed (or the one given)."""
    submission.check_rate(services, key)
    source = visible_generation(session, gen_id, key)
    # The policies may have changed since: check again.
    policy_flag = submission.check_prompt_text(services, source.prompt.text, source.moderation)
    # The source's steps and guidance (those it ran with, once it succeeded) carry over where the policy lets
    # users set them; where it does not, the policy fixes them again.
    rules = services.parameters.rules
    steps, guidance, n = submission.apply_parameter_policy(
        services, source.prompt.text, size=(source.width, source.height),
        steps=source.steps if rules["steps"].settable else None,
        guidance=source.guidance if rules["guidance"].settable else None, seed=body.seed,
        n=body.n or source.num_images)
    spec = job_store.JobSpec(
        kind=source.kind, prompt=source.prompt.text, width=source.width, height=source.height, num_images=n,
        steps=steps, guidance=guidance, seed=body.seed, copy_bias=source.copy_bias, keep=source.keep,
        moderation=source.moderation, use_case=source.use_case,
        response_format=source.response_format,
        references=[session.get_one(Asset, i.asset_hash).data for i in source.inputs], policy_flag=policy_flag,
        mask=session.get_one(Asset, source.mask_hash).data if source.mask_hash else None,
        webhook_url=source.webhook_url if services.settings.webhook_host_list else None,  # webhooks still on
        template_id=source.template_id, brand_kit_id=source.brand_kit_id, variables=source.variables,
        parent_output_id=source.parent_output_id, rerun_of_id=source.id,
    )
    gen = submission.submit(services, session, key, spec, engine.model_id)
    return generation_out(load_existing_generation(session, gen.id), base_url)
