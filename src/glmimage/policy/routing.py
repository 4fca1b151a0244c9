"""Routing: a request with reference images is an edit (image-to-image), one without is text-to-image.
Each mode has its own checks; `dispatch` runs the request on an engine after them."""

from __future__ import annotations

from typing import Literal

from glmimage.defaults import check_reference_count
from glmimage.models.sizes import LimitsLike, resolve_size
from glmimage.policy.request import GenerationRequest

Mode = Literal["text-to-image", "image-to-image"]
TEXT_TO_IMAGE: Mode = "text-to-image"
IMAGE_TO_IMAGE: Mode = "image-to-image"


def route(request: GenerationRequest) -> Mode:
    return IMAGE_TO_IMAGE if request.references else TEXT_TO_IMAGE


def validate_for_mode(request: GenerationRequest, limits: LimitsLike) -> GenerationRequest:
    """The request checked for its mode, with its size resolved: text-to-image takes the model's default size
    when none is given; an edit follows its first reference unless a size is asked for."""
    mode = route(request)
    if mode == IMAGE_TO_IMAGE:
        check_reference_count(len(request.references))
    reference_size = request.references[0].size if mode == IMAGE_TO_IMAGE else None
    width, height = resolve_size(limits, width=request.width, height=request.height, reference_size=reference_size)
    return request.with_params(width=width, height=height)


def engine_kwargs(request: GenerationRequest) -> dict:
    """Keyword arguments for engine.generate / engine.edit: the parameters that are set (None = engine default)."""
    return {k: v for k, v in request.params().items() if v is not None}


def dispatch(engine, request: GenerationRequest, **run_options):
    """Validate `request` for its mode against `engine.limits` and run it. Returns the engine's result.
    `run_options` (e.g. progress=True) go to the engine call: how to run, not what to make."""
    request = validate_for_mode(request, engine.limits)
    kwargs = {**engine_kwargs(request), **run_options}
    if route(request) == IMAGE_TO_IMAGE:
        return engine.edit(request.prompt, images=list(request.references), **kwargs)
    return engine.generate(request.prompt, **kwargs)
