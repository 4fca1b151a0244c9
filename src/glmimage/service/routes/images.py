"""OpenAI-compatible image endpoints: submit a job and wait for it (the jobs API is the asynchronous way), or with
`stream: true` send its partial images and images as server-sent events (`streaming.py`)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from glmimage.service import submission
from glmimage.service.deps import BaseUrl, EngineDep, GenerateKey, ServicesDep, SessionDep
from glmimage.service.errors import ERROR_RESPONSES, ApiError
from glmimage.service.routes.common import EditForm, params_output_options, wait_and_respond
from glmimage.service.schemas import GenerationParams, ImagesResponse
from glmimage.service.services import Services
from glmimage.service.streaming import stream_job
from glmimage.service.tables import ApiKey

router = APIRouter(prefix="/v1/images", tags=["images (OpenAI-compatible)"], responses=ERROR_RESPONSES)
STREAM_RESPONSE: dict[int | str, dict[str, Any]] = {200: {"content": {"text/event-stream": {}},
                         "description": "The images, or with `stream: true` server-sent events (OpenAI's format)."}}


async def _respond(services: Services, session, key: ApiKey, engine, base_url: str, params: GenerationParams,
                   kind: str, references=(), mask: bytes | None = None):
    options = params_output_options(params)
    if params.partial_images is not None and not params.stream:
        raise ApiError(400, "partial_images needs stream: true", "invalid_value", "partial_images")
    submission.check_rate(services, key)
    loop = asyncio.get_running_loop()
    subscribed: list[tuple[str, asyncio.Queue]] = []

    def on_created(gen_id: str) -> None:  # before the job can be claimed, so no preview is missed
        if params.stream and params.partial_images:
            subscribed.append((gen_id, services.previews.subscribe(gen_id, loop)))

    def submit():
        spec = submission.build_spec(services, session, engine, params, kind=kind, references=references, mask=mask)
        try:
            gen = submission.submit(services, session, key, spec, engine.model_id, on_created=on_created)
        except BaseException:
            for gen_id, queue in subscribed:  # nothing was stored: nothing to stream
                services.previews.unsubscribe(gen_id, queue)
            raise
        return gen.id, f"{gen.width}x{gen.height}"

    gen_id, size = await run_in_threadpool(submit)
    if not params.stream:
        return await wait_and_respond(services, gen_id, params.response_format, base_url, options)
    queue = subscribed[0][1] if subscribed else None
    events = stream_job(services, gen_id, kind, queue, params.partial_images or 0, options, base_url, size)
    return StreamingResponse(events, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.post("/generations", response_model=ImagesResponse, responses=STREAM_RESPONSE)
async def create_image(params: GenerationParams, services: ServicesDep, session: SessionDep, key: GenerateKey,
                       engine: EngineDep, base_url: BaseUrl):
    """Text to image; answers when the images are ready (or streams them: `stream`, `partial_images`)."""
    return await _respond(services, session, key, engine, base_url, params, "generate")


@router.post("/edits", response_model=ImagesResponse, responses=STREAM_RESPONSE)
async def edit_image(form: EditForm, services: ServicesDep, session: SessionDep, key: GenerateKey,
                     engine: EngineDep, base_url: BaseUrl):
    """Image to image with 1 to 4 references (multipart: `image` or `image[]`; `mask`; `stream`)."""
    params, references, mask = form
    return await _respond(services, session, key, engine, base_url, params, "edit", references, mask)

