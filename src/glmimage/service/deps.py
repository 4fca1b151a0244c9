"""Typed dependencies for the routes (`SessionDep`, `EngineDep`, `GenerateKey`, ...). Tests swap what they need
through `app.dependency_overrides` or by handing `create_app` a ready engine."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from glmimage.engine import Engine
from glmimage.service.auth import find_key
from glmimage.service.errors import ApiError
from glmimage.service.middleware import response_headers
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
    session: SessionDep, services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiKey:
    if credentials is None:
        raise ApiError(401, "missing API key: send `Authorization: Bearer <key>`", "missing_api_key")
    key = find_key(session, credentials.credentials)
    if key is None:
        raise ApiError(401, "unknown or revoked API key", "invalid_api_key")
    set_rate_headers(services, key)
    return key


def set_rate_headers(services: Services, key: ApiKey, images_used: int | None = None) -> None:
    """OpenAI's `x-ratelimit-*` headers from the key's limits: its requests per minute (a token bucket: `reset`
    is when it is full again) and, for a key with a quota, its images (which never reset by themselves)."""
    remaining, reset_s = services.limiter.state(key.id, key.rate_limit_per_minute)
    headers = response_headers()
    headers.update({"x-ratelimit-limit-requests": str(key.rate_limit_per_minute),
                    "x-ratelimit-remaining-requests": str(remaining),
                    "x-ratelimit-reset-requests": f"{math.ceil(reset_s)}s"})
    if key.quota_images is not None:
        used = key.images_used if images_used is None else images_used
        headers.update({"x-ratelimit-limit-images": str(key.quota_images),
                        "x-ratelimit-remaining-images": str(max(0, key.quota_images - used))})


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
