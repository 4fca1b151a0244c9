"""API keys: create (the secret is shown once), list, revoke; and `me` for any key."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from sqlalchemy import select

from glmimage.service.auth import LastAdminKeyError, create_key, revoke_key
from glmimage.service.deps import AdminKey, AnyKey, ServicesDep, SessionDep
from glmimage.service.errors import ERROR_RESPONSES, ApiError
from glmimage.service.schemas import ID_MAX, KeyCreate, KeyCreated, KeyOut
from glmimage.service.tables import ApiKey
from glmimage.service.views import key_out

router = APIRouter(prefix="/v1", tags=["keys"], responses=ERROR_RESPONSES)


@router.post("/keys", status_code=201, response_model=KeyCreated)
def add_key(body: KeyCreate, services: ServicesDep, session: SessionDep, key: AdminKey) -> KeyCreated:
    s = services.settings
    row, secret = create_key(
        session, body.name, body.roles,
        rate_limit_per_minute=body.rate_limit_per_minute or s.default_rate_limit_per_minute,
        quota_images=body.quota_images if body.quota_images is not None else s.default_quota_images,
    )
    session.commit()
    return KeyCreated(**key_out(row).model_dump(), key=secret)


@router.get("/keys", response_model=list[KeyOut])
def list_keys(session: SessionDep, key: AdminKey) -> list[KeyOut]:
    return [key_out(k) for k in session.scalars(select(ApiKey).order_by(ApiKey.id))]


@router.delete("/keys/{key_id}", response_model=KeyOut)
def delete_key(key_id: Annotated[int, Path(ge=1, le=ID_MAX)], session: SessionDep, key: AdminKey) -> KeyOut:
    """Revoke a key (kept for the record: generations point at it). The last admin key cannot be revoked (409):
    nobody could manage keys after it."""
    try:
        row = revoke_key(session, key_id)
    except LastAdminKeyError as exc:
        raise ApiError(409, str(exc), "last_admin_key", "key_id") from None
    if row is None:
        raise ApiError(404, f"no key {key_id}", "not_found", "key_id")
    session.commit()
    return key_out(row)


@router.get("/me", response_model=KeyOut)
def whoami(key: AnyKey) -> KeyOut:
    return key_out(key)
