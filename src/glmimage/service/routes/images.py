"""OpenAI-compatible image endpoints: submit a job and wait for it (the jobs API is the asynchronous way)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from glmimage.service import submission
from glmimage.service.deps import BaseUrl, EngineDep, GenerateKey, ServicesDep, SessionDep
from glmimage.service.errors import ERROR_RESPONSES
from glmimage.service.routes.common import EditForm, params_output_options, wait_and_respond
from glmimage.service.schemas import GenerationParams, ImagesResponse

router = APIRouter(prefix="/v1/images", tags=["images (OpenAI-compatible)"], responses=ERROR_RESPONSES)


@router.post("/generations", response_model=ImagesResponse)
async def create_image(params: GenerationParams, services: ServicesDep, session: SessionDep, key: GenerateKey,
                       engine: EngineDep, base_url: BaseUrl) -> ImagesResponse:
    """Text to image; answers when the images are ready."""
    options = params_output_options(params)
    submission.check_rate(services, key)

    def submit():
        spec = submission.build_spec(services, session, engine, params, kind="generate")
        return submission.submit(services, session, key, spec, engine.model_id).id

    gen_id = await run_in_threadpool(submit)
    return await wait_and_respond(services, gen_id, params.response_format, base_url, options)


@router.post("/edits", response_model=ImagesResponse)
async def edit_image(form: EditForm, services: ServicesDep, session: SessionDep, key: GenerateKey,
                     engine: EngineDep, base_url: BaseUrl) -> ImagesResponse:
    """Image to image with 1 to 4 references (multipart: `image` or `image[]`)."""
    params, references, mask = form
    options = params_output_options(params)
    submission.check_rate(services, key)

    def submit():
        spec = submission.build_spec(services, session, engine, params, kind="edit", references=references,
                                     mask=mask)
        return submission.submit(services, session, key, spec, engine.model_id).id

    gen_id = await run_in_threadpool(submit)
    return await wait_and_respond(services, gen_id, params.response_format, base_url, options)
