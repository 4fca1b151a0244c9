"""OpenAI-compatible model listing: `GET /v1/models` and `GET /v1/models/{id}`, so `client.models.list()` and
`client.models.retrieve(...)` work. One process serves one model; the family name (`glm-image`) is accepted as
an alias of it wherever a `model` is named."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel

from glmimage.service.deps import AnyKey, EngineDep, ServicesDep
from glmimage.service.errors import ERROR_RESPONSES, ApiError
from glmimage.service.submission import MODEL_ALIASES

router = APIRouter(prefix="/v1/models", tags=["models (OpenAI-compatible)"], responses=ERROR_RESPONSES)
OWNER = "glmimage"


class ModelOut(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = OWNER


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelOut]


@router.get("", response_model=ModelList)
def list_models(services: ServicesDep, engine: EngineDep, _key: AnyKey) -> ModelList:
    """The model this service runs (its `model_id`; `glm-image` is accepted as an alias of it)."""
    return ModelList(data=[ModelOut(id=engine.model_id, created=services.started_at)])


@router.get("/{model_id:path}", response_model=ModelOut)
def retrieve_model(model_id: str, services: ServicesDep, engine: EngineDep, _key: AnyKey) -> ModelOut:
    """The served model by its id or an alias; 404 `model_not_found` for any other."""
    if model_id not in (engine.model_id, *MODEL_ALIASES):
        raise ApiError(404, f"model {model_id!r} is not served here; this service runs {engine.model_id!r}",
                       "model_not_found", "model")
    return ModelOut(id=model_id, created=services.started_at)
