"""Pieces several route files share: the edit form, visibility, sync waiting, image payloads."""

from __future__ import annotations

import base64
from datetime import UTC
from typing import Annotated, Literal, NamedTuple

from fastapi import Depends, File, Form, UploadFile
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from glmimage.defaults import MAX_COPY_BIAS
from glmimage.models.sizes import size_for_edit
from glmimage.service.deps import ServicesDep, can_see_all
from glmimage.service.errors import ApiError
from glmimage.service.formats import PNG, OutputOptions, encode, output_options
from glmimage.service.schemas import SEED_MAX, GenerationParams, ImageData, ImagesResponse, Usage, UsageDetails
from glmimage.service.services import Services, ShuttingDown
from glmimage.service.submission import check_reference_images
from glmimage.service.tables import CANCELED, FAILED, SUCCEEDED, ApiKey, Asset, Generation
from glmimage.service.views import asset_url, generation_out, load_generation


def visible_generation(session: Session, gen_id: str, key: ApiKey) -> Generation:
    gen = load_generation(session, gen_id)
    if gen is None or (not can_see_all(key) and gen.api_key_id != key.id):
        raise ApiError(404, f"no generation {gen_id!r}", "not_found", "id")
    return gen


async def read_edit_form(
    services: ServicesDep,
    prompt: Annotated[str, Form(min_length=1, description="What to change; quoted text is rendered.")],
    image: Annotated[list[UploadFile] | None, File(description="1 to 4 reference images (PNG, JPEG, WebP).")] = None,
    image_array: Annotated[list[UploadFile] | None, File(alias="image[]", description="Same as `image` (the "
                                                         "OpenAI client's name for several images).")] = None,
    mask: Annotated[UploadFile | None, File(description=(
        "OpenAI's edit mask: a PNG of the first reference's size whose fully transparent pixels (alpha 0) mark "
        "where to edit; elsewhere the output keeps the reference."))] = None,
    n: Annotated[int, Form(ge=1)] = 1,
    size: Annotated[str, Form(max_length=32)] = "auto",
    response_format: Annotated[Literal["b64_json", "url"], Form()] = "b64_json",
    model: Annotated[str | None, Form(max_length=200)] = None,
    steps: Annotated[int | None, Form(ge=1)] = None,
    guidance: Annotated[float | None, Form(ge=0.0, le=20.0)] = None,
    seed: Annotated[int | None, Form(ge=0, le=SEED_MAX)] = None,
    copy_bias: Annotated[float | None, Form(ge=0.0, le=MAX_COPY_BIAS)] = None,
    keep: Annotated[bool | None, Form()] = None,
    use_case: Annotated[str, Form(max_length=50)] = "default",
    quality: Annotated[str | None, Form(max_length=20)] = None,
    output_format: Annotated[Literal["png", "jpeg", "webp"] | None, Form()] = None,
    output_compression: Annotated[int | None, Form(ge=0, le=100)] = None,
    background: Annotated[Literal["auto", "opaque", "transparent"] | None, Form()] = None,
    moderation: Annotated[str | None, Form(max_length=20)] = None,
    stream: Annotated[bool | None, Form(description="Server-sent events (OpenAI's image streaming).")] = None,
    partial_images: Annotated[int | None, Form(ge=0, le=3)] = None,
    webhook_url: Annotated[str | None, Form(max_length=2000)] = None,
    user: Annotated[str | None, Form(max_length=200)] = None,
) -> EditUpload:
    files = [*(image or []), *(image_array or [])]
    if not files:
        raise ApiError(400, "an edit needs at least one reference image in `image`", "missing_image", "image")
    check_reference_images(len(files), services)
    max_bytes = services.settings.max_upload_bytes
    # Read one byte past the limit: enough to know a file is too large without holding all of it.
    datas = [await f.read(max_bytes + 1) for f in files]
    mask_data = await mask.read(max_bytes + 1) if mask is not None else None
    try:
        params = GenerationParams(prompt=prompt, n=n, size=size, response_format=response_format, model=model,
                                  steps=steps, guidance=guidance, seed=seed, copy_bias=copy_bias, keep=keep,
                                  use_case=use_case, quality=quality, output_format=output_format,
                                  output_compression=output_compression, background=background,
                                  moderation=moderation, stream=stream, partial_images=partial_images,
                                  webhook_url=webhook_url,
                                  user=user)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(map(str, first["loc"])) or None
        raise ApiError(400, f"{param}: {first['msg']}" if param else first["msg"], "invalid_value", param) from None
    return EditUpload(params, datas, mask_data)


class EditUpload(NamedTuple):
    params: GenerationParams
    references: list[bytes]
    mask: bytes | None  # OpenAI's edit mask, unchecked yet (submission.read_mask)


EditForm = Annotated[EditUpload, Depends(read_edit_form)]


def _image_payloads(session: Session, gen: Generation, response_format: str, base_url: str,
                    options: OutputOptions) -> list[ImageData]:
    if response_format == "url":
        return [ImageData(url=asset_url(base_url, o.asset_hash) + options.query(), revised_prompt=gen.prompt.text)
                for o in gen.outputs]
    hashes = [o.asset_hash for o in gen.outputs]
    data = dict(session.execute(select(Asset.hash, Asset.data).where(Asset.hash.in_(hashes))).all())
    return [ImageData(b64_json=base64.b64encode(encode(data[h], options)).decode(), revised_prompt=gen.prompt.text)
            for h in hashes]


PLANNER_CELL = 32  # pixels per side of one planner code (the 1/32 grid)


def _text_tokens(services: Services, text: str) -> int:
    """The prompt's length in the planner's tokenizer; its UTF-8 bytes where no tokenizer can be had (a model
    still loading)."""
    try:
        tokenizer = services.engine.get(timeout=0).pipe.processor.tokenizer
        return len(tokenizer(text)["input_ids"])
    except Exception:  # noqa: BLE001 - usage is an estimate; it must not fail a finished job's response
        return len(text.encode())


def usage_of(services: Services, session: Session, gen: Generation) -> Usage:
    """OpenAI's `usage` in the planner's terms: the prompt's tokens, one image token per planner code of each
    reference (its snapped size at 1/32) and of each output (the codes the planner writes)."""
    limits = services.engine.get(timeout=0).limits if services.engine.ready else None
    image_in = 0
    hashes = [i.asset_hash for i in gen.inputs]
    sizes = session.execute(select(Asset.width, Asset.height).where(Asset.hash.in_(hashes))).all() if hashes else []
    for width, height in sizes:
        w, h = size_for_edit((width, height), limits) if limits is not None else (width, height)
        image_in += (w // PLANNER_CELL) * (h // PLANNER_CELL)
    text_in = _text_tokens(services, gen.prompt.text)
    out = len(gen.outputs) * (gen.width // PLANNER_CELL) * (gen.height // PLANNER_CELL)
    return Usage(input_tokens=text_in + image_in, output_tokens=out, total_tokens=text_in + image_in + out,
                 input_tokens_details=UsageDetails(text_tokens=text_in, image_tokens=image_in),
                 output_tokens_details=UsageDetails(text_tokens=0, image_tokens=out))


def params_output_options(params: GenerationParams) -> OutputOptions:
    return output_options(params.output_format, params.output_compression, params.background, params.quality)


def images_response(services: Services, gen: Generation, response_format: str, base_url: str,
                    options: OutputOptions = PNG) -> ImagesResponse:
    """The OpenAI-style body of a finished generation; errors for one that did not succeed."""
    if gen.status == CANCELED:
        raise ApiError(409, f"job {gen.id} was canceled: {gen.error}", "job_canceled")
    if gen.status == FAILED:
        if gen.error_code == "invalid_request":
            raise ApiError(400, f"job {gen.id} failed: {gen.error}", "invalid_request")
        raise ApiError(500, f"job {gen.id} failed: {gen.error}", gen.error_code or "generation_failed")
    if gen.status != SUCCEEDED:
        raise ApiError(409, f"job {gen.id} is {gen.status}; poll GET /v1/jobs/{gen.id}", "job_not_finished")
    with services.db.sessions() as session:
        data = _image_payloads(session, gen, response_format, base_url, options)
        usage = usage_of(services, session, gen)
    return ImagesResponse(created=int(gen.created_at.replace(tzinfo=UTC).timestamp()), data=data,
                          size=f"{gen.width}x{gen.height}", output_format=options.format,
                          background="opaque", quality=options.quality, usage=usage,
                          glmimage=generation_out(gen, base_url))


async def wait_and_respond(services: Services, gen_id: str, response_format: str, base_url: str,
                           options: OutputOptions = PNG) -> ImagesResponse:
    gen = await wait_outcome(services, gen_id)
    return await run_in_threadpool(images_response, services, gen, response_format, base_url, options)


async def wait_outcome(services: Services, gen_id: str) -> Generation:
    """The finished generation; 503 at shutdown, 504 after `sync_timeout_s` (the job is kept either way)."""
    timeout = services.settings.sync_timeout_s
    try:
        gen = await services.wait_for_job(gen_id, timeout)
    except ShuttingDown:
        raise ApiError(503, f"the server is shutting down; job {gen_id} is kept and runs after the restart (or on "
                            f"another worker): poll GET /v1/jobs/{gen_id}", "shutting_down",
                       headers={"Retry-After": "5"}) from None
    if gen is None:
        raise ApiError(504, f"job {gen_id} did not finish within {timeout:g} s; it keeps running: poll "
                            f"GET /v1/jobs/{gen_id}", "timeout")
    return gen
