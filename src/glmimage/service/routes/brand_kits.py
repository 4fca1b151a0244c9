"""Brand kits in the registry (the fields of glmimage.prompts.brand.BrandKit)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from glmimage.errors import InputError
from glmimage.prompts.brand import BrandKit as BrandKitSpec
from glmimage.service.deps import AdminKey, AnyKey, SessionDep
from glmimage.service.errors import ERROR_RESPONSES, ApiError
from glmimage.service.schemas import BrandKitCreate, BrandKitOut
from glmimage.service.tables import BrandKit

router = APIRouter(prefix="/v1/brand-kits", tags=["registry"], responses=ERROR_RESPONSES)


def brand_kit_out(row: BrandKit) -> BrandKitOut:
    return BrandKitOut(id=row.id, name=row.name, palette=row.palette, typography=row.typography, voice=row.voice,
                       required_words=row.required_words, forbidden_words=row.forbidden_words,
                       max_palette_distance=row.max_palette_distance, created_at=row.created_at)


@router.post("", status_code=201, response_model=BrandKitOut)
def add_brand_kit(body: BrandKitCreate, session: SessionDep, key: AdminKey) -> BrandKitOut:
    # The same fields, lists as the spec's tuples.
    fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in body.model_dump().items()}
    try:  # the prompt layer's checks: colours parse, no word both required and forbidden
        spec = BrandKitSpec(**fields)
    except InputError as exc:
        raise ApiError(400, str(exc), "invalid_brand_kit") from None
    row = BrandKit(name=spec.name, palette=list(spec.palette), typography=list(spec.typography),
                   voice=list(spec.voice), required_words=list(spec.required_words),
                   forbidden_words=list(spec.forbidden_words), max_palette_distance=spec.max_palette_distance)
    session.add(row)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise ApiError(409, f"a brand kit named {body.name!r} exists", "conflict", "name") from None
    return brand_kit_out(row)


@router.get("", response_model=list[BrandKitOut])
def list_brand_kits(session: SessionDep, key: AnyKey) -> list[BrandKitOut]:
    return [brand_kit_out(row) for row in session.scalars(select(BrandKit).order_by(BrandKit.name))]
