"""Health, readiness, metrics and the client configuration (sizes, limits, use cases)."""

from __future__ import annotations

from functools import lru_cache

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from glmimage.models.sizes import ASPECT_PRESETS, size_for_aspect
from glmimage.service.deps import EngineDep, ServicesDep
from glmimage.service.schemas import Health, ServiceConfig, SizePreset

router = APIRouter(tags=["system"])


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """Liveness: the process answers."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
def readyz(services: ServicesDep):
    """Readiness: database reachable, model loaded; in rq mode also the queue reachable and the last sweep done."""
    checks = {}
    try:
        services.db.ping()
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        checks["database"] = f"error: {type(exc).__name__}"
    slot = services.engine
    checks["model"] = "ok" if slot.ready else (f"error: {slot.error}" if slot.error else "loading")
    if services.queue is not None:
        checks["queue"] = "ok" if services.queue.ping() else "error: redis unreachable"
        # The sweep recovers jobs of dead workers and re-sends lost messages: while it fails, jobs can get stuck.
        checks["sweeper"] = "ok" if services.sweep_error is None else f"error: {services.sweep_error}"
    ok = all(v == "ok" for v in checks.values())
    body = Health(status="ok" if ok else "unavailable", checks=checks)
    return body if ok else JSONResponse(body.model_dump(), status_code=503)


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics(services: ServicesDep) -> Response:
    """Prometheus text format."""
    return Response(services.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


@lru_cache(maxsize=8)
def size_presets(limits) -> tuple[SizePreset, ...]:
    """The aspect presets this model can honour, as sizes (a search over valid sizes: computed once)."""
    presets = [SizePreset(name="default", size=f"{limits.default_width}x{limits.default_height}")]
    for name in ASPECT_PRESETS:
        try:
            w, h = size_for_aspect(name, limits)
        except ValueError:  # an aspect this model's side limits cannot reach
            continue
        presets.append(SizePreset(name=name, size=f"{w}x{h}"))
    return tuple(presets)


@router.get("/v1/config", response_model=ServiceConfig)
def config(services: ServicesDep, engine: EngineDep) -> ServiceConfig:
    """What a client needs to build a valid request (no key needed)."""
    s, limits = services.settings, engine.limits
    presets = list(size_presets(limits))
    return ServiceConfig(
        model_id=engine.model_id, min_side=limits.min_side, max_side=limits.max_side, multiple=limits.multiple,
        default_size=f"{limits.default_width}x{limits.default_height}", size_presets=presets,
        max_images_per_request=services.max_images_per_request, max_reference_images=s.max_reference_images,
        max_prompt_chars=s.max_prompt_chars, max_upload_bytes=s.max_upload_bytes,
        use_cases=sorted(services.governance.use_cases),
    )
