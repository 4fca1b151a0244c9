"""Single outputs: read, edit ("edit this one"), review; and the review queue."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from glmimage.service import submission
from glmimage.service.deps import (
    AnyKey,
    BaseUrl,
    EngineDep,
    GenerateKey,
    ReviewKey,
    ServicesDep,
    SessionDep,
    can_see_all,
)
from glmimage.service.errors import ERROR_RESPONSES, ApiError
from glmimage.service.schemas import (
    ID_MAX,
    EditOutputRequest,
    GenerationOut,
    GenerationParams,
    OutputList,
    OutputOut,
    ReviewRequest,
)
from glmimage.service.tables import (
    APPROVED,
    NEEDS_REVIEW,
    REJECTED,
    ApiKey,
    Asset,
    Generation,
    Output,
    utcnow,
)
from glmimage.service.views import generation_out, load_existing_generation, output_out

router = APIRouter(tags=["registry"], responses=ERROR_RESPONSES)
OutputId = Annotated[int, Path(ge=1, le=ID_MAX)]


def visible_output(session, output_id: int, key: ApiKey) -> Output:
    out = session.scalar(select(Output).where(Output.id == output_id).options(selectinload(Output.qa_results),
                                                                            selectinload(Output.generation)))
    if out is None or (not can_see_all(key) and out.generation.api_key_id != key.id):
        raise ApiError(404, f"no output {output_id}", "not_found", "output_id")
    return out


@router.get("/v1/outputs/{output_id}", response_model=OutputOut)
def get_output(output_id: OutputId, session: SessionDep, key: AnyKey, base_url: BaseUrl) -> OutputOut:
    return output_out(visible_output(session, output_id, key), base_url)


@router.post("/v1/outputs/{output_id}/edits", status_code=202, response_model=GenerationOut)
def edit_output(output_id: OutputId, body: EditOutputRequest, services: ServicesDep, session: SessionDep,
                key: GenerateKey, engine: EngineDep, base_url: BaseUrl) -> GenerationOut:
    """Queue an edit of this output (it becomes the reference image; its id the edit's parent)."""
    submission.check_rate(services, key)
    out = visible_output(session, output_id, key)
    params = GenerationParams(**body.model_dump())
    reference = session.get_one(Asset, out.asset_hash).data
    spec = submission.build_spec(services, session, engine, params, kind="edit", references=[reference],
                                 parent_output_id=out.id)
    gen = submission.submit(services, session, key, spec, engine.model_id)
    return generation_out(load_existing_generation(session, gen.id), base_url)


@router.post("/v1/outputs/{output_id}/review", response_model=OutputOut)
def review_output(output_id: OutputId, body: ReviewRequest, session: SessionDep, key: ReviewKey,
                  base_url: BaseUrl) -> OutputOut:
    """Approve or reject an output (a later decision replaces an earlier one)."""
    out = visible_output(session, output_id, key)
    out.review_status = APPROVED if body.decision == "approve" else REJECTED
    out.reviewed_by, out.reviewed_at, out.review_note = key.id, utcnow(), body.note
    session.commit()
    return output_out(visible_output(session, output_id, key), base_url)


@router.get("/v1/review/queue", response_model=OutputList)
def review_queue(session: SessionDep, key: ReviewKey, base_url: BaseUrl,
                 use_case: str | None = Query(None, max_length=50),
                 limit: int = Query(50, ge=1, le=200), offset: int = Query(0, ge=0, le=10**9)) -> OutputList:
    """Outputs waiting for a reviewer, oldest first."""
    query = select(Output).where(Output.review_status == NEEDS_REVIEW)
    if use_case is not None:
        query = query.join(Generation, Output.generation_id == Generation.id).where(Generation.use_case == use_case)
    total = session.scalars(select(func.count()).select_from(query.subquery())).one()
    rows = session.scalars(query.order_by(Output.created_at, Output.id).limit(limit).offset(offset)
                           .options(selectinload(Output.qa_results), selectinload(Output.generation))).all()
    return OutputList(total=total, data=[output_out(o, base_url) for o in rows])
