"""Prompt templates in the registry (versioned; see glmimage.prompts.templates for the syntax)."""

from __future__ import annotations

from fastapi import APIRouter, Query
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from glmimage.errors import InputError
from glmimage.prompts.templates import PromptTemplate
from glmimage.service.deps import AdminKey, AnyKey, SessionDep
from glmimage.service.errors import ERROR_RESPONSES, ApiError
from glmimage.service.schemas import TemplateCreate, TemplateOut
from glmimage.service.tables import Template

router = APIRouter(prefix="/v1/templates", tags=["registry"], responses=ERROR_RESPONSES)


def template_out(row: Template) -> TemplateOut:
    spec = PromptTemplate(name=row.name, version=row.version, source=row.source, defaults=dict(row.defaults or {}))
    return TemplateOut(id=row.id, name=row.name, version=row.version, source=row.source,
                       description=row.description, defaults=row.defaults or {}, variables=sorted(spec.variables),
                       created_at=row.created_at)


@router.post("", status_code=201, response_model=TemplateOut)
def add_template(body: TemplateCreate, session: SessionDep, key: AdminKey) -> TemplateOut:
    """Store the next version of `name` (versions are never edited in place)."""
    version = (session.scalar(select(func.max(Template.version)).where(Template.name == body.name)) or 0) + 1
    try:
        PromptTemplate(name=body.name, version=version, source=body.source, description=body.description,
                       defaults=body.defaults)  # parses: a broken template is refused now, not at first use
    except InputError as exc:
        raise ApiError(400, str(exc), "invalid_template", "source") from None
    row = Template(name=body.name, version=version, source=body.source, description=body.description,
                   defaults=body.defaults)
    session.add(row)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise ApiError(409, f"template {body.name!r} version {version} was just added by another request; retry",
                       "conflict") from None
    return template_out(row)


@router.get("", response_model=list[TemplateOut])
def list_templates(session: SessionDep, key: AnyKey,
                   name: str | None = Query(None, max_length=100)) -> list[TemplateOut]:
    query = select(Template).order_by(Template.name, Template.version)
    if name is not None:
        query = query.where(Template.name == name)
    return [template_out(row) for row in session.scalars(query)]
