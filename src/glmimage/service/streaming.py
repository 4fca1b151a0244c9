"""Streaming images (OpenAI's `stream: true` with `partial_images`) as server-sent events.

Events, in OpenAI's image streaming format (`openai` clients read them with `stream=True`):
`image_generation.partial_image` / `image_edit.partial_image` while the job runs, then one
`image_generation.completed` / `image_edit.completed` per image, each with the job's `usage`. A failure after the
stream started is an `error` event with the usual error body.

Partial images come from the worker through a `PreviewBus` (previews.py; in-process: the local worker; RQ workers
in other processes send none, and the stream carries the completed images only). The worker publishes one preview
per job that asks for them: its plan rendered with a single decoder step, after planning and before the full decode
(the engine has no hook for previews in the middle of its denoising loop yet). OpenAI's contract allows this:
fewer partial images than asked may arrive before the final one.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator

from starlette.concurrency import run_in_threadpool

from glmimage.service.errors import ApiError
from glmimage.service.formats import OutputOptions, encode

MAX_PARTIAL_IMAGES = 3  # OpenAI's bound
KEEPALIVE_S = 15.0  # a comment line this often, so proxies keep a quiet stream open


def sse(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _error_event(exc: ApiError) -> str:
    return sse("error", {"type": "error", "error": {"message": exc.message, "type": "server_error"
                         if exc.status >= 500 else "invalid_request_error", "code": exc.code, "param": exc.param}})


async def stream_job(services, gen_id: str, kind: str, queue: asyncio.Queue | None, partial_images: int,
                     options: OutputOptions, base_url: str, size: str) -> AsyncIterator[str]:
    """The events of job `gen_id`: up to `partial_images` previews from `queue`, then its images."""
    from glmimage.service.routes.common import images_response, wait_outcome

    prefix = "image_generation" if kind == "generate" else "image_edit"
    common = {"background": "opaque", "output_format": options.format, "quality": options.quality or "auto"}
    finished = asyncio.ensure_future(wait_outcome(services, gen_id))
    try:
        sent = 0
        while not finished.done():
            waiters: set[asyncio.Future] = {finished}
            getter = asyncio.ensure_future(queue.get()) if queue is not None else None
            if getter is not None:
                waiters.add(getter)
            done, _ = await asyncio.wait(waiters, timeout=KEEPALIVE_S, return_when=asyncio.FIRST_COMPLETED)
            if getter is not None and getter in done:
                png = getter.result()
                if sent < partial_images:
                    data = await run_in_threadpool(encode, png, options)
                    yield sse(f"{prefix}.partial_image", {
                        "type": f"{prefix}.partial_image", "b64_json": base64.b64encode(data).decode(),
                        "created_at": int(time.time()), "size": size, "partial_image_index": sent, **common})
                    sent += 1
            elif getter is not None:
                getter.cancel()
            if not done:
                yield ": keep-alive\n\n"
        try:
            gen = finished.result()
            body = await run_in_threadpool(images_response, services, gen, "b64_json", base_url, options)
        except ApiError as exc:
            yield _error_event(exc)
            return
        usage = body.usage.model_dump() if body.usage is not None else None
        for item in body.data:
            yield sse(f"{prefix}.completed", {
                "type": f"{prefix}.completed", "b64_json": item.b64_json, "created_at": body.created,
                "size": body.size, "usage": usage, **common})
    finally:
        finished.cancel()  # the client went away: stop waiting (the job itself runs on)
        if queue is not None:
            services.previews.unsubscribe(gen_id, queue)
