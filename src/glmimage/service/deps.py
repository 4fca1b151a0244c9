"""Typed dependencies for the routes (`SessionDep`, `EngineDep`, `GenerateKey`, ...). Tests swap what they need
through `app.dependency_overrides` or by handing `create_app` a ready engine."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from glmimage.engine import Engine
from glmimage.service.auth import find_key
from glmimage.service.errors import ApiError
from glmimage.service.services import Services
from glmimage.service.tables import ApiKey


def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_session(services: ServicesDep) -> Iterator[Session]:
    with services.db.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_engine(services: ServicesDep) -> Engine:
    try:
        return services.engine.get(timeout=0)
    except RuntimeError as exc:
        raise ApiError(503, str(exc), "model_not_ready") from None


EngineDep = Annotated[Engine, Depends(get_engine)]

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer gik_...`")


def current_key(
    session: SessionDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> ApiKey:
    if credentials is None:
        raise ApiError(401, "missing API key: send `Authorization: Bearer <key>`", "missing_api_key")
    key = find_key(session, credentials.credentials)
    if key is None:
        raise ApiError(401, "unknown or revoked API key", "invalid_api_key")
    return key


def require(role: str):
    """A dependency that admits keys holding `role` (admin holds every role)."""

    def check(key: Annotated[ApiKey, Depends(current_key)]) -> ApiKey:
        if role not in key.role_set and "admin" not in key.role_set:
            raise ApiError(403, f"this key lacks the {role!r} role (it has {sorted(key.role_set)})",
                           "insufficient_role")
        return key

    return check


AnyKey = Annotated[ApiKey, Depends(current_key)]
GenerateKey = Annotated[ApiKey, Depends(require("generate"))]
ReviewKey = Annotated[ApiKey, Depends(require("review"))]
AdminKey = Annotated[ApiKey, Depends(require("admin"))]


def get_base_url(request: Request, services: ServicesDep) -> str:
    """Where `url` responses point: GLMIMAGE_PUBLIC_URL, else the address the request came in on."""
    return services.settings.public_url or str(request.base_url)


BaseUrl = Annotated[str, Depends(get_base_url)]


def can_see_all(key: ApiKey) -> bool:
    """Reviewers and admins see every generation; a generate-only key sees its own."""
    return bool(key.role_set & {"review", "admin"})
