"""From a request to a queued job: rate limit, prompt (template, brand kit), content policy, use case, size,
reference images, quota. Every refusal is an `ApiError` (4xx) that names the limit or the valid values; nothing
is written unless the whole request is acceptable."""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence

from PIL import Image, UnidentifiedImageError
from sqlalchemy import select
from sqlalchemy.orm import Session

from glmimage.defaults import check_prompt_length, check_reference_count
from glmimage.engine.references import load_reference
from glmimage.errors import InputError
from glmimage.models.sizes import ASPECT_PRESETS, check_size, nearest_same_aspect, parse_size, resolve_size
from glmimage.policy import GenerationRequest
from glmimage.policy.parameters import OPENAI_SIZES
from glmimage.prompts.library import parse_ref
from glmimage.prompts.templates import PromptTemplate
from glmimage.service import jobs as job_store
from glmimage.service.auth import reserve_quota
from glmimage.service.deps import set_rate_headers
from glmimage.service.errors import ApiError
from glmimage.service.formats import output_options
from glmimage.service.schemas import GenerationParams
from glmimage.service.services import Services
from glmimage.service.tables import ApiKey, BrandKit, Generation, Template
from glmimage.service.webhooks import check_url
from glmimage.service.worker import brand_spec

MODEL_ALIASES = ("glm-image",)  # clients written for other deployments may send the family name
ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP")


def check_rate(services: Services, key: ApiKey) -> None:
    wait = services.limiter.acquire(key.id, key.rate_limit_per_minute)
    set_rate_headers(services, key)
    if wait > 0:
        raise ApiError(429, f"rate limit of {key.rate_limit_per_minute} requests per minute reached; "
                            f"retry in {math.ceil(wait)} s", "rate_limit_exceeded",
                       headers={"Retry-After": str(math.ceil(wait))})


def check_reference_images(count: int, services: Services) -> None:
    """The engine's rule on the number of reference images (glmimage.defaults), with the service's limit."""
    try:
        check_reference_count(count, services.settings.max_reference_images)
    except InputError as exc:
        raise ApiError(400, str(exc), "too_many_images", "image") from None


def read_reference(data: bytes, index: int, services: Services) -> tuple[bytes, tuple[int, int]]:
    """Check one uploaded reference: size on the wire, format, decoded size, and that it decodes at all."""
    s = services.settings
    param = f"image[{index}]"
    if len(data) > s.max_upload_bytes:
        raise ApiError(413, f"{param} is {len(data)} bytes; the limit is {s.max_upload_bytes}", "file_too_large",
                       "image")
    if not data:
        raise ApiError(400, f"{param} is empty", "invalid_image", "image")
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.format not in ACCEPTED_FORMATS:
                raise ApiError(400, f"{param} is {im.format}; accepted formats: {', '.join(ACCEPTED_FORMATS)}",
                               "unsupported_image_format", "image")
            if im.width * im.height > s.max_image_pixels:
                raise ApiError(413, f"{param} is {im.width}x{im.height} pixels; the limit is {s.max_image_pixels}"
                                    " pixels", "image_too_large", "image")
            im.load()  # decode fully: a truncated or corrupt file fails here, not in the worker
            # The engine's own checks on a reference (smallest side, aspect ratio), now rather than in the worker.
            try:
                load_reference(im, param)
            except InputError as exc:
                raise ApiError(400, str(exc), "invalid_image", "image") from None
            return data, im.size
    except ApiError:
        raise
    except Image.DecompressionBombError:
        # Pillow refuses to open it at all: a header claiming far more pixels than any limit (a decompression bomb).
        raise ApiError(413, f"{param} declares more pixels than Pillow will decode (a decompression bomb); the "
                            f"limit is {s.max_image_pixels} pixels", "image_too_large", "image") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ApiError(400, f"{param} is not a readable image ({type(exc).__name__}); send PNG, JPEG or WebP",
                       "invalid_image", "image") from None


def read_mask(data: bytes, reference_size: tuple[int, int], services: Services) -> bytes:
    """Check OpenAI's edit mask: a PNG of the first reference's size with an alpha channel, some of it fully
    transparent (alpha 0: where to edit)."""
    from glmimage.engine.keep import mask_from_alpha  # torch: the API process has the engine loaded anyway

    s = services.settings
    if len(data) > s.max_upload_bytes:
        raise ApiError(413, f"mask is {len(data)} bytes; the limit is {s.max_upload_bytes}", "file_too_large", "mask")
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.format != "PNG":
                raise ApiError(400, f"mask is {im.format}; send a PNG whose transparent pixels (alpha 0) mark where to "
                                    "edit", "invalid_mask", "mask")
            if im.width * im.height > s.max_image_pixels:
                raise ApiError(413, f"mask is {im.width}x{im.height} pixels; the limit is {s.max_image_pixels} pixels",
                               "image_too_large", "mask")
            if im.size != reference_size:
                raise ApiError(400, f"mask is {im.width}x{im.height}; it must be the size of the first image "
                                    f"({reference_size[0]}x{reference_size[1]})", "invalid_mask", "mask")
            im.load()
            try:
                keep = mask_from_alpha(im)
            except InputError as exc:
                raise ApiError(400, str(exc), "invalid_mask", "mask") from None
    except ApiError:
        raise
    except Image.DecompressionBombError:
        raise ApiError(413, "mask declares more pixels than Pillow will decode (a decompression bomb)",
                       "image_too_large", "mask") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ApiError(400, f"mask is not a readable image ({type(exc).__name__}); send a PNG", "invalid_mask",
                       "mask") from None
    if bool(keep.all()):
        raise ApiError(400, "the mask has no fully transparent pixel (alpha 0), so it marks nothing to edit",
                       "invalid_mask", "mask")
    return data


def size_from_param(size: str, limits, reference_size: tuple[int, int] | None = None,
                    openai_sizes: str = "map") -> tuple[int, int]:
    """'WxH', an aspect preset name, or 'auto' (the model default; for edits the reference's size snapped the
    way the engine snaps it), resolved by the one size rule (`glmimage.models.sizes`). A size the OpenAI SDKs
    offer (`glmimage.policy.parameters.OPENAI_SIZES`) that the model cannot make is mapped to
    `nearest_same_aspect`, or refused naming it, as the parameter policy's `openai_sizes` says."""
    text = size.strip().lower()
    try:
        if text == "auto":
            return resolve_size(limits, reference_size=reference_size)
        if text in ASPECT_PRESETS:
            return resolve_size(limits, aspect=text)
        try:
            width, height = parse_size(text)
        except InputError:
            raise ApiError(400, f"size {size!r} is not valid: use 'WxH' with multiples of {limits.multiple} in "
                                f"[{limits.min_side}, {limits.max_side}], 'auto', or a preset "
                                f"({', '.join(ASPECT_PRESETS)})", "invalid_size", "size") from None
        if f"{width}x{height}" in OPENAI_SIZES:
            try:
                check_size(width, height, limits)
            except InputError as exc:
                nearest = nearest_same_aspect(width, height, limits)
                if openai_sizes == "map":
                    return nearest
                raise ApiError(400, f"size {size!r}: {exc}; the nearest size of the same aspect this model makes is "
                                    f"{nearest[0]}x{nearest[1]} (the parameter policy rejects OpenAI sizes the model "
                                    "cannot make rather than mapping them)", "invalid_size", "size") from None
        return resolve_size(limits, width=width, height=height)
    except InputError as exc:
        raise ApiError(400, f"size {size!r}: {exc}", "invalid_size", "size") from None


def resolve_prompt(session: Session, params: GenerationParams) -> tuple[str, int | None, int | None]:
    """The final prompt text, the template id and the brand kit id."""
    template_id: int | None = None
    brand_kit_id: int | None = None
    if params.template is not None:
        if params.prompt is not None:
            raise ApiError(400, "give either prompt or template, not both", "invalid_value", "template")
        try:
            name, version = parse_ref(params.template)
        except InputError as exc:
            raise ApiError(400, str(exc), "invalid_value", "template") from None
        query = select(Template).where(Template.name == name)
        query = query.where(Template.version == version) if version else query.order_by(Template.version.desc())
        row = session.scalars(query.limit(1)).first()
        if row is None:
            raise ApiError(400, f"unknown template {params.template!r}", "unknown_template", "template")
        template = PromptTemplate(name=row.name, version=row.version, source=row.source,
                                  description=row.description, defaults=dict(row.defaults or {}))
        try:
            text = template.render(params.variables)
        except InputError as exc:
            raise ApiError(400, str(exc), "invalid_value", "variables") from None
        template_id = row.id
    elif params.prompt is not None:
        text = params.prompt
    else:  # GenerationParams refuses this already
        raise ApiError(400, "give a prompt or a template", "invalid_value", "prompt")
    if params.brand_kit is not None:
        kit = session.scalar(select(BrandKit).where(BrandKit.name == params.brand_kit))
        if kit is None:
            raise ApiError(400, f"unknown brand kit {params.brand_kit!r}", "unknown_brand_kit", "brand_kit")
        try:
            text = brand_spec(kit).apply_to_prompt(text)  # palette, type and voice; word rules checked
        except InputError as exc:
            raise ApiError(400, str(exc), "brand_violation", "prompt") from None
        brand_kit_id = kit.id
    return text, template_id, brand_kit_id


def safety_at(services: Services, moderation: str | None):
    """The safety policy at OpenAI's `moderation` level (None: "auto"); 400 naming the levels for another."""
    try:
        return services.safety.at_level(moderation)
    except ValueError as exc:
        raise ApiError(400, str(exc), "invalid_value", "moderation") from None


def check_prompt_text(services: Services, text: str, moderation: str | None = None) -> str | None:
    """Length and content policy (at the `moderation` level). Returns the policy's review reason, if it asks for
    review."""
    if not text.strip():
        raise ApiError(400, "prompt is empty", "invalid_value", "prompt")
    try:
        check_prompt_length(text, services.settings.max_prompt_chars)
    except InputError as exc:
        raise ApiError(400, str(exc), "prompt_too_long", "prompt") from None
    verdict = safety_at(services, moderation).check(text)
    if verdict.action == "block":
        raise ApiError(400, f"prompt rejected: {verdict.reason}", "content_policy_violation", "prompt")
    return verdict.reason if verdict.action == "review" else None


def apply_parameter_policy(services: Services, prompt: str, *, size: tuple[int, int] | None, steps: int | None,
                           guidance: float | None, seed: int | None, n: int) -> tuple[int | None, float | None, int]:
    """Check the user's parameters against the parameter policy (glmimage.policy, shared with the CLI) and
    fill its central defaults. Returns (steps, guidance, n); None = the model's default. The seed is only
    checked: a job without one gets it from its batch (worker.py)."""
    user = {"steps": steps, "guidance": guidance, "seed": seed, "num_images": n}
    if size is not None:
        user["width"], user["height"] = size
    try:
        applied = services.parameters.apply(GenerationRequest(prompt=prompt), user)
    except InputError as exc:
        raise ApiError(400, str(exc), "parameter_not_allowed") from None
    # `n` is always passed, so the policy always returns a count (checked, or fixed by the policy).
    num_images = n if applied.num_images is None else applied.num_images
    return applied.steps, applied.guidance, num_images


def build_spec(services: Services, session: Session, engine, params: GenerationParams, *, kind: str,
               references: Sequence[bytes] = (), parent_output_id: int | None = None,
               mask: bytes | None = None) -> job_store.JobSpec:
    if params.model is not None and params.model not in (engine.model_id, *MODEL_ALIASES):
        raise ApiError(400, f"model {params.model!r} is not served here; this service runs {engine.model_id!r}",
                       "model_not_found", "model")
    if params.use_case not in services.governance.use_cases:
        raise ApiError(400, f"unknown use_case {params.use_case!r}; known: {sorted(services.governance.use_cases)}",
                       "invalid_value", "use_case")
    if kind != "edit":
        for name in ("copy_bias", "keep"):
            if getattr(params, name) is not None:
                raise ApiError(400, f"{name} is an edit setting: give reference images, or leave it out",
                               "invalid_value", name)
    output_options(params.output_format, params.output_compression, params.background)  # refused before anything
    steps = params.steps
    if params.quality is not None:
        try:
            quality_steps = services.parameters.steps_for_quality(params.quality.strip().lower(),
                                                                  engine.model.default_steps)
        except InputError as exc:
            raise ApiError(400, str(exc), "invalid_value", "quality") from None
        steps = quality_steps if steps is None else steps  # an explicit `steps` wins
    if references:
        check_reference_images(len(references), services)
    checked = [read_reference(data, i, services) for i, data in enumerate(references)]
    width, height = size_from_param(params.size, engine.limits, checked[0][1] if checked else None,
                                    services.parameters.openai_sizes)
    if mask is not None:
        if not checked:
            raise ApiError(400, "a mask needs a reference image to edit", "missing_image", "image")
        if params.keep is False:
            raise ApiError(400, "keep=false and a mask contradict each other: the mask says what to keep",
                           "invalid_value", "keep")
        mask = read_mask(mask, checked[0][1], services)
        auto = size_from_param("auto", engine.limits, checked[0][1])
        if (width, height) != auto:
            raise ApiError(400, f"a masked edit keeps the reference's size ({auto[0]}x{auto[1]} here); size "
                                f"{params.size!r} would be {width}x{height}: leave size out or send 'auto'",
                           "invalid_size", "size")
    text, template_id, brand_kit_id = resolve_prompt(session, params)
    moderation = None if params.moderation in (None, "auto") else params.moderation
    policy_flag = check_prompt_text(services, text, moderation)
    explicit_size = None if params.size.strip().lower() == "auto" else (width, height)
    steps, guidance, n = apply_parameter_policy(services, text, size=explicit_size, steps=steps,
                                                guidance=params.guidance, seed=params.seed, n=params.n)
    return job_store.JobSpec(
        kind=kind, prompt=text, width=width, height=height, num_images=n, steps=steps,
        guidance=guidance, seed=params.seed, copy_bias=params.copy_bias, keep=params.keep, moderation=moderation,
        use_case=params.use_case,
        response_format=params.response_format,
        references=[data for data, _ in checked], mask=mask, policy_flag=policy_flag,
        webhook_url=None if params.webhook_url is None else check_url(params.webhook_url, services.settings),
        template_id=template_id,
        brand_kit_id=brand_kit_id, variables=params.variables, parent_output_id=parent_output_id,
    )


def submit(services: Services, session: Session, key: ApiKey, spec: job_store.JobSpec, model_id: str,
           on_created: Callable[[str], None] | None = None) -> Generation:
    """Reserve quota, insert, commit, dispatch. All or nothing. `on_created(id)` runs before the job can be
    claimed (a stream subscribes to its previews there)."""
    if not reserve_quota(session, key.id, spec.num_images):
        session.rollback()
        session.refresh(key)
        raise ApiError(429, f"quota exhausted: key {key.name!r} has used {key.images_used} of {key.quota_images} "
                            f"images and this request needs {spec.num_images}", "insufficient_quota")
    gen = job_store.submit(session, spec, model_id=model_id, api_key_id=key.id)
    if on_created is not None:
        on_created(gen.id)
    session.commit()
    if key.quota_images is not None:
        set_rate_headers(services, key, images_used=session.scalar(select(ApiKey.images_used)
                                                                   .where(ApiKey.id == key.id)))
    services.dispatch(gen.id)
    return gen
