"""Request and response bodies of the HTTP API (kept apart from the tables on purpose: the wire format and the
storage can change independently). Limits that depend on settings or on the model (prompt length, n, size) are
checked in `submission.py`, where the message can name the configured value."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from glmimage.defaults import MAX_COPY_BIAS

SEED_MAX = 2**63 - 1
ID_MAX = 2**62  # integer ids and counters stay inside a signed 64-bit column on every back end
# The database keeps naive UTC; responses say so (RFC 3339 with an offset).
Timestamp = Annotated[datetime, AfterValidator(lambda d: d if d.tzinfo else d.replace(tzinfo=UTC))]


def text_problem(text: str) -> str | None:
    """Why `text` cannot be stored and served, or None. A NUL character: PostgreSQL text refuses it and SQLite's
    LIKE stops at it. A lone UTF-16 surrogate (JSON's "\\ud800" without its pair): no UTF-8 encoding exists for it,
    so it could be neither hashed, stored nor sent back."""
    if "\x00" in text:
        return "contains a NUL character (U+0000), which text may not contain"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (f"contains a lone UTF-16 surrogate (U+{ord(text[exc.start]):04X}), which is not valid Unicode; "
                "a character outside the BMP is sent as a surrogate pair")
    return None


def _valid_text(text):
    """Before pydantic's own str checks (whose message for a surrogate says less)."""
    if not isinstance(text, str):
        return text
    problem = text_problem(text)
    if problem is not None:
        raise PydanticCustomError("invalid_text", problem)
    return text


# Every string a request brings: refused with a 400 naming the field, instead of failing in the database.
Text = Annotated[str, BeforeValidator(_valid_text)]
def _not_bool(value):
    """JSON's true/false are not numbers (Python's bool is an int, so pydantic would take `n: true` as 1)."""
    if isinstance(value, bool):
        raise PydanticCustomError("number_not_bool", "should be a number, not true or false")
    return value


Count = Annotated[int, BeforeValidator(_not_bool)]
Number = Annotated[float, BeforeValidator(_not_bool)]
# A template value (checked before the union, so an error names the variable rather than a union member).
TemplateValue = Annotated[str | int | float, BeforeValidator(_valid_text)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# The values the tables' string columns hold (tables.py); responses validate them.
ReviewStatus = Literal["approved", "needs_review", "rejected"]
JobKind = Literal["generate", "edit"]
JobStatus = Literal["queued", "running", "succeeded", "failed", "canceled"]


# -- generation parameters ---------------------------------------------------------------------------------------
class GenerationParams(_Strict):
    """Shared by the OpenAI-style endpoints and the jobs API. `size` is "WxH" (multiples of 32 within the model's
    limits), an aspect preset ("poster", "slide", "square", ...) or "auto" (the model default, or the
    reference's size for edits)."""

    prompt: Text | None = Field(None, description="What to draw; quoted text is rendered. Optional with `template`.")
    template: Text | None = Field(None, description='A registry template, "name" or "name@version".')
    variables: dict[Text, TemplateValue] | None = Field(None, description="Values for the template.")
    brand_kit: Text | None = Field(None, description="Name of a registry brand kit to apply.")
    model: Text | None = Field(None, description="Must name the served model if given.")
    n: Count = Field(1, ge=1, description="Number of images (`num_images`).")
    size: Text = Field("auto", max_length=32)
    response_format: Literal["b64_json", "url"] = "b64_json"
    steps: Count | None = Field(None, ge=1, description="Denoising steps; default: the model's.")
    guidance: Number | None = Field(None, ge=0.0, le=20.0, description="Classifier-free guidance scale.")
    seed: Count | None = Field(None, ge=0, le=SEED_MAX, description="Reproduces a result; random if omitted.")
    copy_bias: Number | None = Field(None, ge=0.0, le=MAX_COPY_BIAS, description=(
        "Edits only: nats added to the planner's logit of the reference's own code at each cell (higher keeps more "
        "of the source and makes fewer changes); default: the model's setting."))
    keep: bool | None = Field(None, strict=True, description=(
        "Edits only: keep the reference wherever the plan leaves its codes unchanged; default: the model's setting."))
    use_case: Text = Field("default", max_length=50, description="Governance use case (review policy).")
    quality: Text | None = Field(None, max_length=20, description=(
        "OpenAI's quality (auto, low, medium, high; standard and hd): decoder steps by the parameter policy "
        "(a factor of the model's default steps). An explicit `steps` wins."))
    output_format: Literal["png", "jpeg", "webp"] | None = Field(None, description="Default png (with metadata).")
    output_compression: Count | None = Field(None, ge=0, le=100, description=(
        "jpeg and webp: the encoder's quality, 0-100 (default 100, the best)."))
    background: Literal["auto", "opaque", "transparent"] | None = Field(None, description=(
        "auto or opaque; transparent is refused (the model makes no alpha channel)."))
    stream: bool | None = Field(None, strict=True, description=(
        "/v1/images/*: answer with server-sent events (OpenAI's image streaming): partial images, then the images."))
    partial_images: Count | None = Field(None, ge=0, le=3, description=(
        "With stream: how many partial images at most (0-3); fewer may come before the final image."))
    moderation: Text | None = Field(None, max_length=20, description=(
        "OpenAI's moderation: a level of the safety policy (shipped: auto, the default, and low)."))
    webhook_url: Text | None = Field(None, max_length=2000, description=(
        "POSTed a signed job.succeeded / job.failed / job.canceled event when the job ends (hosts allowed by "
        "GLMIMAGE_WEBHOOK_HOSTS)."))
    # Accepted for OpenAI compatibility and ignored: GLM-Image has no style presets.
    style: Text | None = Field(None, max_length=20)
    user: Text | None = Field(None, max_length=200)

    @model_validator(mode="after")
    def _prompt_or_template(self) -> GenerationParams:
        if self.prompt is None and self.template is None:
            raise ValueError("give a prompt or a template")
        return self


class RerunRequest(_Strict):
    seed: Count | None = Field(None, ge=0, le=SEED_MAX, description="Omit for a new random seed.")
    n: Count | None = Field(None, ge=1, description="Omit to keep the original count.")


class EditOutputRequest(_Strict):
    """Edit a registry output: it becomes the reference image."""

    prompt: Text = Field(min_length=1)
    size: Text = Field("auto", max_length=32)
    n: Count = Field(1, ge=1)
    steps: Count | None = Field(None, ge=1)
    guidance: Number | None = Field(None, ge=0.0, le=20.0)
    seed: Count | None = Field(None, ge=0, le=SEED_MAX)
    copy_bias: Number | None = Field(None, ge=0.0, le=MAX_COPY_BIAS)
    keep: bool | None = Field(None, strict=True)
    use_case: Text = Field("default", max_length=50)


class ReviewRequest(_Strict):
    decision: Literal["approve", "reject"]
    note: Text | None = Field(None, max_length=2000)


# -- OpenAI-compatible responses ---------------------------------------------------------------------------------
class ImageData(BaseModel):
    b64_json: str | None = None
    url: str | None = None
    revised_prompt: str | None = None


class UsageDetails(BaseModel):
    text_tokens: int
    image_tokens: int


class Usage(BaseModel):
    """OpenAI's usage block, counted in the planner's tokens: the prompt's (its tokenizer), one per planner code of
    each reference and of each output image (1/32 of the pixels per side)."""

    input_tokens: int
    input_tokens_details: UsageDetails
    output_tokens: int
    output_tokens_details: UsageDetails
    total_tokens: int


class ImagesResponse(BaseModel):
    created: int
    data: list[ImageData]
    size: str | None = Field(None, description="The size made, 'WxH' (an OpenAI size the model cannot make is "
                                               "mapped to its nearest valid one of the same aspect by policy).")
    output_format: Literal["png", "jpeg", "webp"] | None = None
    background: Literal["opaque"] | None = Field(None, description="Always opaque: the model makes no alpha.")
    quality: str | None = Field(None, description="The quality asked for, if any (the job's steps say what ran).")
    usage: Usage | None = None
    glmimage: GenerationOut | None = Field(None, description="The registry record of this generation.")


# -- registry ----------------------------------------------------------------------------------------------------
class QAOut(BaseModel):
    check: str
    passed: bool
    score: float | None
    detail: str


class OutputOut(BaseModel):
    id: int
    generation_id: str
    prompt: str
    use_case: str
    index: int
    asset_hash: str
    url: str
    seed: int
    plan_hash: str | None
    qa_passed: bool
    text_score: float | None
    review_status: ReviewStatus
    review_reasons: list[str]
    review_note: str | None
    reviewed_at: Timestamp | None
    qa: list[QAOut]


class GenerationOut(BaseModel):
    id: str
    kind: JobKind
    status: JobStatus
    prompt: str
    width: int
    height: int
    steps: int | None
    guidance: float | None
    seed: int | None
    copy_bias: float | None  # edits: None = the model's setting
    keep: bool | None
    moderation: str | None
    mask_hash: str | None = Field(description="Masked edits: the mask's asset (alpha 0 marked where to edit).")
    webhook_url: str | None = None
    webhook_status: Literal["pending", "delivered", "failed"] | None = None
    num_images: int
    model_id: str
    use_case: str
    template_id: int | None
    brand_kit_id: int | None
    variables: dict | None
    parent_output_id: int | None
    rerun_of_id: str | None
    reference_hashes: list[str]
    policy_flag: str | None
    attempts: int
    cancel_requested: bool
    error_code: str | None
    error: str | None
    batch_id: str | None
    timings: dict | None
    created_at: Timestamp
    started_at: Timestamp | None
    finished_at: Timestamp | None
    outputs: list[OutputOut]


class WebhookDeliveryOut(BaseModel):
    attempt: int
    event: str
    status_code: int | None
    error: str | None
    delivered: bool
    duration_ms: float
    created_at: Timestamp


class WebhookLog(BaseModel):
    webhook_url: str | None
    webhook_status: Literal["pending", "delivered", "failed"] | None
    next_attempt_at: Timestamp | None
    data: list[WebhookDeliveryOut]


class GenerationList(BaseModel):
    total: int
    data: list[GenerationOut]


class OutputList(BaseModel):
    total: int
    data: list[OutputOut]


class PromptOut(BaseModel):
    id: int
    text: str
    generations: int
    created_at: Timestamp


class TemplateCreate(_Strict):
    name: Text = Field(min_length=1, max_length=100)
    source: Text = Field(min_length=1, max_length=20000)
    description: Text = Field("", max_length=2000)
    defaults: dict[Text, TemplateValue] = Field(default_factory=dict)


class TemplateOut(BaseModel):
    id: int
    name: str
    version: int
    source: str
    description: str
    defaults: dict
    variables: list[str]
    created_at: Timestamp


class BrandKitCreate(_Strict):
    name: Text = Field(min_length=1, max_length=100)
    palette: list[Text] = Field(default_factory=list, max_length=16)
    typography: list[Text] = Field(default_factory=list, max_length=16)
    voice: list[Text] = Field(default_factory=list, max_length=16)
    required_words: list[Text] = Field(default_factory=list, max_length=64)
    forbidden_words: list[Text] = Field(default_factory=list, max_length=256)
    max_palette_distance: Number = Field(25.0, gt=0, le=200)


class BrandKitOut(BrandKitCreate):
    model_config = ConfigDict(extra="ignore")
    id: int
    created_at: Timestamp


# -- keys --------------------------------------------------------------------------------------------------------
class KeyCreate(_Strict):
    name: Text = Field(min_length=1, max_length=100)
    roles: list[Literal["generate", "review", "admin"]] = Field(min_length=1)
    rate_limit_per_minute: Count | None = Field(None, ge=1, le=100000)
    quota_images: Count | None = Field(None, ge=0, le=2**31 - 1)


class KeyOut(BaseModel):
    id: int
    name: str
    prefix: str
    roles: list[str]
    rate_limit_per_minute: int
    quota_images: int | None
    images_used: int
    created_at: Timestamp
    revoked_at: Timestamp | None


class KeyCreated(KeyOut):
    key: str = Field(description="The secret; shown this once, stored only as a hash.")


# -- service -----------------------------------------------------------------------------------------------------
class SizePreset(BaseModel):
    name: str
    size: str


class ServiceConfig(BaseModel):
    model_id: str
    min_side: int
    max_side: int
    multiple: int
    default_size: str
    size_presets: list[SizePreset]
    max_images_per_request: int
    max_reference_images: int
    max_prompt_chars: int
    max_upload_bytes: int
    use_cases: list[str]


class Health(BaseModel):
    status: str
    checks: dict[str, str] = Field(default_factory=dict)


ImagesResponse.model_rebuild()
