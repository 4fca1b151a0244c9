"""The registry's tables (SQLAlchemy 2 ORM). A generation row is also the job: the database is the source of truth
for job state, so a restart or a lost queue message loses nothing. Schema changes go through Alembic
(`glmimage/service/migrations`); `tests/service/test_migrations.py` checks the two agree.

Timestamps are naive UTC (SQLite keeps no time zone; one convention on both back ends).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Job states. queued -> running -> succeeded | failed | canceled; running -> queued when a crash is retried.
QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELED = "queued", "running", "succeeded", "failed", "canceled"
TERMINAL_STATES = (SUCCEEDED, FAILED, CANCELED)
JOB_STATES = (QUEUED, RUNNING, *TERMINAL_STATES)
# Review states of an output.
APPROVED, NEEDS_REVIEW, REJECTED = "approved", "needs_review", "rejected"
REVIEW_STATES = (APPROVED, NEEDS_REVIEW, REJECTED)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    # Named constraints, so migrations can refer to them on every back end.
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))  # the key's first characters, shown in listings
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 of the whole key
    roles: Mapped[str] = mapped_column(String(100))  # comma-separated subset of auth.ROLES
    rate_limit_per_minute: Mapped[int] = mapped_column(Integer)
    quota_images: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None = unlimited
    images_used: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    @property
    def role_set(self) -> frozenset[str]:
        return frozenset(r for r in self.roles.split(",") if r)


class Prompt(Base):
    """Each distinct prompt text once; generations point here, so "every run of this prompt" is one join."""

    __tablename__ = "prompts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    text_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Template(Base):
    """One version of a named prompt template (`glmimage.prompts.templates.PromptTemplate`: Jinja2 in a
    sandbox, `{{ headline | glyph }}` for text to render). Versions are immutable; a change adds one."""

    __tablename__ = "templates"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    defaults: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class BrandKit(Base):
    """The fields of `glmimage.prompts.brand.BrandKit`: palette, type and voice go into prompts; word rules
    and palette distance are checked on prompts and outputs."""

    __tablename__ = "brand_kits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    palette: Mapped[list] = mapped_column(JSON, default=list)
    typography: Mapped[list] = mapped_column(JSON, default=list)
    voice: Mapped[list] = mapped_column(JSON, default=list)
    required_words: Mapped[list] = mapped_column(JSON, default=list)
    forbidden_words: Mapped[list] = mapped_column(JSON, default=list)
    max_palette_distance: Mapped[float] = mapped_column(Float, default=25.0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Asset(Base):
    """An image by content hash (sha256 of its bytes): outputs and uploaded references alike, stored once.
    Bytes live in the database so that workers on other machines need no shared disk."""

    __tablename__ = "assets"

    hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    mime: Mapped[str] = mapped_column(String(50))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Generation(Base):
    """One request to generate or edit: its parameters, its job state and its outputs."""

    __tablename__ = "generations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))  # "generate" | "edit"
    status: Mapped[str] = mapped_column(String(12), index=True)
    prompt_id: Mapped[int] = mapped_column(ForeignKey("prompts.id"), index=True)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    # None = the model's default, until the job succeeds: then the steps (and guidance) the engine used.
    steps: Mapped[int | None] = mapped_column(Integer, nullable=True)
    guidance: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Edit settings (engine.edit's copy_bias and keep); None = the model's own (glmimage.json).
    copy_bias: Mapped[float | None] = mapped_column(Float, nullable=True)
    keep: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    # OpenAI's `moderation`: the safety policy's level the prompt and the text read back were checked at.
    moderation: Mapped[str | None] = mapped_column(String(20), nullable=True)  # None = "auto"
    # Masked edits: the OpenAI edit mask (a PNG whose alpha 0 marks where to edit); the rest keeps the reference.
    mask_hash: Mapped[str | None] = mapped_column(ForeignKey("assets.hash"), nullable=True)
    # Webhook on completion: where to, and its delivery state (None: no webhook; "pending", "delivered",
    # "failed" once webhook_max_attempts failed). webhook_next_at: when the next attempt is due (or leased until).
    webhook_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    webhook_status: Mapped[str | None] = mapped_column(String(10), nullable=True, index=True)
    webhook_attempts: Mapped[int] = mapped_column(Integer, default=0)
    webhook_next_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # The seed that reproduces this generation alone (`glmimage generate ... --seed`); a job submitted without
    # one gets it when the worker places it in a batch (see worker.py).
    seed: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    num_images: Mapped[int] = mapped_column(Integer)
    model_id: Mapped[str] = mapped_column(String(200))
    use_case: Mapped[str] = mapped_column(String(50), default="default")
    response_format: Mapped[str] = mapped_column(String(10), default="b64_json")
    template_id: Mapped[int | None] = mapped_column(ForeignKey("templates.id"), nullable=True)
    brand_kit_id: Mapped[int | None] = mapped_column(ForeignKey("brand_kits.id"), nullable=True)
    variables: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    parent_output_id: Mapped[int | None] = mapped_column(ForeignKey("outputs.id", use_alter=True), nullable=True)
    policy_flag: Mapped[str | None] = mapped_column(Text, nullable=True)  # content policy's "review" reason
    rerun_of_id: Mapped[str | None] = mapped_column(ForeignKey("generations.id"), nullable=True)
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"), nullable=True, index=True)
    # Job bookkeeping.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    error_code: Mapped[str | None] = mapped_column(String(50), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)  # the reason, for people
    batch_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    worker_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    timings: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    prompt: Mapped[Prompt] = relationship(lazy="joined")
    inputs: Mapped[list[GenerationInput]] = relationship(
        order_by="GenerationInput.position", cascade="all, delete-orphan"
    )
    outputs: Mapped[list[Output]] = relationship(
        order_by="Output.index", cascade="all, delete-orphan", back_populates="generation",
        foreign_keys="Output.generation_id",
    )


class GenerationInput(Base):
    """A reference image of an edit, in the order the request gave it."""

    __tablename__ = "generation_inputs"
    __table_args__ = (UniqueConstraint("generation_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation_id: Mapped[str] = mapped_column(ForeignKey("generations.id"))
    position: Mapped[int] = mapped_column(Integer)
    asset_hash: Mapped[str] = mapped_column(ForeignKey("assets.hash"))


class Output(Base):
    """One image of a generation, with its QA summary and review state."""

    __tablename__ = "outputs"
    __table_args__ = (UniqueConstraint("generation_id", "index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation_id: Mapped[str] = mapped_column(ForeignKey("generations.id"), index=True)
    index: Mapped[int] = mapped_column(Integer)
    asset_hash: Mapped[str] = mapped_column(ForeignKey("assets.hash"))
    seed: Mapped[int] = mapped_column(BigInteger)
    plan_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    meta: Mapped[dict] = mapped_column(JSON, default=dict)  # the engine's metadata for this image
    qa_passed: Mapped[bool] = mapped_column(Boolean)
    text_score: Mapped[float | None] = mapped_column(Float, nullable=True)  # OCR match; None = no quoted text
    review_status: Mapped[str] = mapped_column(String(16), index=True)
    review_reasons: Mapped[list] = mapped_column(JSON, default=list)  # why governance asked for review
    reviewed_by: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    review_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    generation: Mapped[Generation] = relationship(back_populates="outputs", foreign_keys=[generation_id])
    qa_results: Mapped[list[QAResult]] = relationship(order_by="QAResult.id", cascade="all, delete-orphan")


class QAResult(Base):
    """One check on one output (blank, flat, resolution, text, output policy)."""

    __tablename__ = "qa_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    output_id: Mapped[int] = mapped_column(ForeignKey("outputs.id"), index=True)
    check: Mapped[str] = mapped_column(String(30))
    passed: Mapped[bool] = mapped_column(Boolean)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="")


class WebhookDelivery(Base):
    """One attempt to deliver a job's webhook: the delivery log shown at GET /v1/jobs/{id}/webhooks."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation_id: Mapped[str] = mapped_column(ForeignKey("generations.id"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    event: Mapped[str] = mapped_column(String(30))  # job.succeeded | job.failed | job.canceled
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None: no HTTP answer
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    delivered: Mapped[bool] = mapped_column(Boolean)
    duration_ms: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
