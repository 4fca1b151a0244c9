"""Service settings: one dataclass, read from the environment (`GLMIMAGE_*`, plus `DATABASE_URL` and `REDIS_URL`
as most deployment tools name them), validated in `__post_init__`."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from glmimage.defaults import MAX_PROMPT_CHARS, MAX_REFERENCES

QUEUE_KINDS = ("local", "rq")
DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass
class Settings:
    """Everything `glmimage serve` and its workers can be told. Field `x` reads env `GLMIMAGE_X`."""

    model: str = ""  # preset or model directory; "" = glmimage.engine.DEFAULT_MODEL
    device: str = "auto"  # "auto": cuda when available, else cpu; or "cpu", "cuda", "cuda:1", ...
    dtype: str = "auto"  # "auto": bfloat16 on cuda (the reference's dtype), float32 on cpu
    compile: bool = False  # EngineOptions(compile=True): same images, faster once each shape has compiled (servers)
    data_dir: Path = Path("runs/service")
    database_url: str = ""  # "" = SQLite file in data_dir; env DATABASE_URL
    queue: str = "local"  # "local": in-process worker thread; "rq": workers on other processes/machines
    redis_url: str = "redis://127.0.0.1:6379/0"  # env REDIS_URL
    rq_queue: str = "glmimage"
    auto_migrate: bool = True  # run Alembic `upgrade head` on start-up
    bootstrap_admin_key: bool = True  # with no keys at all, create one admin key and log it once
    # Request limits (all rejected with a 4xx naming the limit). The first two may lower the engine's own limits
    # (glmimage.defaults), not raise them.
    max_prompt_chars: int = MAX_PROMPT_CHARS
    max_reference_images: int = MAX_REFERENCES
    max_upload_bytes: int = 8 * 1024 * 1024  # one reference image
    max_request_bytes: int = 40 * 1024 * 1024  # a whole request body
    max_image_pixels: int = 4096 * 4096  # decoded size of a reference, against decompression bombs
    # Which parameters users may set, their bounds and defaults (glmimage.policy); "" = $GLMIMAGE_POLICY or
    # the shipped default policy.
    parameter_policy: str = ""
    # Worker.
    batch_max_images: int = 8  # compatible jobs run together up to this many images (>= the policy's max n)
    batch_wait_s: float = 0.05  # how long the worker waits for company before running a lone job
    max_attempts: int = 2  # a job interrupted by a crash is retried until it has started this many times
    job_lease_s: float = 600.0  # a running job whose worker stopped heart-beating this long is recovered
    heartbeat_s: float = 15.0
    sweep_interval_s: float = 30.0  # rq mode: how often the API process recovers stale jobs
    sync_timeout_s: float = 600.0  # the OpenAI-style endpoints wait this long for their job
    # On SIGTERM: requests waiting for a job answer 503 at once; open requests and the running batch get this long
    # to finish, then the process exits (an unfinished job is retried at the next start or by another worker).
    shutdown_timeout_s: float = 10.0
    # Keys created without explicit limits get these.
    default_rate_limit_per_minute: int = 60
    default_quota_images: int | None = None
    # Policies (YAML files); empty = the defaults shipped in glmimage/service/policies/.
    safety_policy: str = ""
    governance_policy: str = ""
    ocr: bool = True  # run the OCR text check on images whose prompt quotes text
    public_url: str = ""  # base of `url` responses; "" = the URL the request came in on
    # Browser pages on these origins may call the API (CORS): comma-separated ("https://app.example.com"), "*" for
    # any; "" (the default) sends no CORS headers, so browsers allow same-origin pages only (the built-in UI).
    cors_origins: str = ""
    # Webhooks on job completion (a request's `webhook_url`): the hosts they may go to, comma-separated ("*": any;
    # "" = webhooks off), signed with webhook_secret (HMAC-SHA256, Standard Webhooks headers), retried with
    # exponential backoff (webhook_backoff_s, doubling) until webhook_max_attempts.
    webhook_hosts: str = ""
    webhook_secret: str = ""
    webhook_max_attempts: int = 6
    webhook_backoff_s: float = 2.0
    webhook_timeout_s: float = 10.0
    log_json: bool = True

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        if self.queue not in QUEUE_KINDS:
            raise ValueError(f"queue={self.queue!r} is not one of {QUEUE_KINDS}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype={self.dtype!r} is not one of {DTYPES}")
        for name in ("max_prompt_chars", "max_reference_images", "max_upload_bytes", "max_request_bytes",
                     "max_image_pixels", "batch_max_images", "max_attempts", "default_rate_limit_per_minute",
                     "webhook_max_attempts"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name, engine_limit in (("max_prompt_chars", MAX_PROMPT_CHARS), ("max_reference_images", MAX_REFERENCES)):
            if getattr(self, name) > engine_limit:
                raise ValueError(f"{name} must be at most {engine_limit} (the engine's), got {getattr(self, name)}")
        for name in ("job_lease_s", "heartbeat_s", "sweep_interval_s", "sync_timeout_s", "shutdown_timeout_s",
                     "webhook_backoff_s", "webhook_timeout_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.batch_wait_s < 0:
            raise ValueError(f"batch_wait_s must not be negative, got {self.batch_wait_s}")
        for origin in self.cors_origin_list:
            if origin != "*" and not re.fullmatch(r"https?://[^/\s]+", origin):
                raise ValueError(f"cors_origins: {origin!r} is not an origin (scheme://host[:port], no path) or *")
        if self.webhook_host_list and len(self.webhook_secret) < 16:
            raise ValueError("webhook_hosts is set: webhook_secret (GLMIMAGE_WEBHOOK_SECRET) must be at least 16 "
                             "characters, so receivers can check the signature")
        if self.heartbeat_s >= self.job_lease_s:
            raise ValueError(f"heartbeat_s ({self.heartbeat_s}) must be shorter than job_lease_s ({self.job_lease_s})")

    @property
    def webhook_host_list(self) -> list[str]:
        return [h.strip().lower() for h in self.webhook_hosts.split(",") if h.strip()]

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip()]

    @property
    def resolved_model(self) -> str:
        if self.model:
            return self.model
        # Imported here: the engine pulls in torch, which keys and migrations do not need.
        from glmimage.defaults import DEFAULT_MODEL

        return DEFAULT_MODEL

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'glmimage.db'}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from `environ` (default os.environ); explicit keyword overrides win."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}  # field name -> value of that field's type
        for f in fields(cls):
            names = [f"GLMIMAGE_{f.name.upper()}"]
            if f.name in ("database_url", "redis_url"):
                names.append(f.name.upper())
            raw = next((env[n] for n in names if n in env), None)
            if raw is not None:
                values[f.name] = _parse(f.name, str(f.type), raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _parse(name: str, type_name: str, raw: str) -> object:
    """Convert an environment string to the field's type (the annotations are strings here)."""
    optional = "None" in type_name
    if optional and raw.strip().lower() in ("", "none"):
        return None
    try:
        if type_name.startswith("bool"):
            if raw.strip().lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(raw)
            return raw.strip().lower() in ("1", "true", "yes", "on")
        if type_name.startswith("int"):
            return int(raw)
        if type_name.startswith("float"):
            return float(raw)
    except ValueError:
        raise ValueError(f"environment GLMIMAGE_{name.upper()}={raw!r} is not a valid {type_name}") from None
    if type_name == "Path":
        return Path(raw)
    return raw
