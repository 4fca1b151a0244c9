"""Prompts in the registry: every distinct prompt once, with how often it was run."""

from __future__ import annotations

from fastapi import APIRouter, Query
from sqlalchemy import func, select

from glmimage.service.deps import AnyKey, SessionDep, can_see_all
from glmimage.service.errors import ERROR_RESPONSES
from glmimage.service.routes.generations import like_pattern
from glmimage.service.schemas import PromptOut
from glmimage.service.tables import Generation, Prompt

router = APIRouter(prefix="/v1/prompts", tags=["registry"], responses=ERROR_RESPONSES)


@router.get("", response_model=list[PromptOut])
def search_prompts(session: SessionDep, key: AnyKey, q: str | None = Query(None, max_length=500),
                   limit: int = Query(20, ge=1, le=100), offset: int = Query(0, ge=0, le=10**9)) -> list[PromptOut]:
    """Most-run first."""
    runs = func.count(Generation.id).label("runs")
    query = select(Prompt, runs).join(Generation, Generation.prompt_id == Prompt.id).group_by(Prompt.id)
    if not can_see_all(key):
        query = query.where(Generation.api_key_id == key.id)
    if q:
        for word in q.split():
            query = query.where(Prompt.text.ilike(like_pattern(word), escape="\\"))
    rows = session.execute(query.order_by(runs.desc(), Prompt.id).limit(limit).offset(offset)).all()
    return [PromptOut(id=p.id, text=p.text, generations=n, created_at=p.created_at) for p, n in rows]
