"""Asynchronous jobs: submit (202), status, cancel, result."""

from __future__ import annotations

from typing import Any, Literal, cast

from fastapi import APIRouter, Query
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from glmimage.service import jobs as job_store
from glmimage.service import submission
from glmimage.service.deps import AnyKey, BaseUrl, EngineDep, GenerateKey, ServicesDep, SessionDep
from glmimage.service.errors import ERROR_RESPONSES, ApiError
from glmimage.service.formats import output_options
from glmimage.service.routes.common import EditForm, images_response, visible_generation
from glmimage.service.schemas import (
    GenerationOut,
    GenerationParams,
    ImagesResponse,
    WebhookDeliveryOut,
    WebhookLog,
)
from glmimage.service.tables import WebhookDelivery
from glmimage.service.views import generation_out, load_existing_generation

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=ERROR_RESPONSES)


def no_stream(params: GenerationParams) -> None:
    if params.stream or params.partial_images is not None:
        raise ApiError(400, "stream and partial_images are for /v1/images/generations and /v1/images/edits; a job "
                            "is polled (GET /v1/jobs/{id})", "invalid_value", "stream")


@router.post("", status_code=202, response_model=GenerationOut)
def submit_job(params: GenerationParams, services: ServicesDep, session: SessionDep, key: GenerateKey,
               engine: EngineDep, base_url: BaseUrl) -> GenerationOut:
    """Queue a text-to-image job; poll `GET /v1/jobs/{id}`."""
    no_stream(params)
    submission.check_rate(services, key)
    spec = submission.build_spec(services, session, engine, params, kind="generate")
    gen = submission.submit(services, session, key, spec, engine.model_id)
    return generation_out(load_existing_generation(session, gen.id), base_url)


@router.post("/edits", status_code=202, response_model=GenerationOut)
async def submit_edit_job(form: EditForm, services: ServicesDep, session: SessionDep, key: GenerateKey,
                          engine: EngineDep, base_url: BaseUrl) -> GenerationOut:
    """Queue an edit (multipart, like `/v1/images/edits`)."""
    params, references, mask = form
    no_stream(params)
    submission.check_rate(services, key)

    def submit():
        spec = submission.build_spec(services, session, engine, params, kind="edit", references=references,
                                     mask=mask)
        gen = submission.submit(services, session, key, spec, engine.model_id)
        return generation_out(load_existing_generation(session, gen.id), base_url)

    return await run_in_threadpool(submit)


@router.get("/{job_id}", response_model=GenerationOut)
def get_job(job_id: str, session: SessionDep, key: AnyKey, base_url: BaseUrl) -> GenerationOut:
    return generation_out(visible_generation(session, job_id, key), base_url)


@router.post("/{job_id}/cancel", response_model=GenerationOut)
def cancel_job(job_id: str, session: SessionDep, key: GenerateKey, base_url: BaseUrl) -> GenerationOut:
    """Queued: canceled now. Running: canceled when its batch ends (its images are discarded)."""
    gen = visible_generation(session, job_id, key)
    if job_store.is_terminal(gen.status):
        raise ApiError(409, f"job {job_id} already {gen.status}", "job_finished")
    job_store.request_cancel(session, gen)
    session.commit()
    return generation_out(load_existing_generation(session, job_id), base_url)


@router.get("/{job_id}/result", response_model=ImagesResponse)
def job_result(job_id: str, services: ServicesDep, session: SessionDep, key: AnyKey, base_url: BaseUrl,
               response_format: str = Query("b64_json", pattern="^(b64_json|url)$"),
               output_format: Literal["png", "jpeg", "webp"] = "png",
               output_compression: int | None = Query(None, ge=0, le=100)) -> ImagesResponse:
    """The images of a finished job, OpenAI-style (in `output_format`); 409 while it is queued or running."""
    options = output_options(output_format, output_compression)
    return images_response(services, visible_generation(session, job_id, key), response_format, base_url, options)


@router.get("/{job_id}/webhooks", response_model=WebhookLog)
def job_webhooks(job_id: str, session: SessionDep, key: AnyKey) -> WebhookLog:
    """The job's webhook and every attempt to deliver it, oldest first."""
    gen = visible_generation(session, job_id, key)
    rows = session.scalars(select(WebhookDelivery).where(WebhookDelivery.generation_id == gen.id)
                           .order_by(WebhookDelivery.id)).all()
    return WebhookLog(
        webhook_url=gen.webhook_url, webhook_status=cast(Any, gen.webhook_status),
        next_attempt_at=gen.webhook_next_at if gen.webhook_status == "pending" else None,
        data=[WebhookDeliveryOut(attempt=r.attempt, event=r.event, status_code=r.status_code, error=r.error,
                                 delivered=r.delivered, duration_ms=r.duration_ms, created_at=r.created_at)
              for r in rows])
