"""The FastAPI application: `create_app(settings)` wires services, middleware, error handlers, routes and the
web UI. `glmimage serve` runs it under uvicorn; tests build it in-process with a ready engine."""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

import glmimage
from glmimage.service.errors import install_error_handlers
from glmimage.service.middleware import RequestMiddleware
from glmimage.service.routes import (
    assets,
    brand_kits,
    generations,
    images,
    jobs,
    keys,
    models,
    outputs,
    prompts,
    system,
    templates,
)
from glmimage.service.services import Services
from glmimage.service.settings import Settings
from glmimage.service.worker import DEFAULT_TEXT_CHECKER, TextCheckerArg

if TYPE_CHECKING:
    from glmimage.engine import Engine

WEB_DIR = Path(__file__).with_name("web")
# Response headers a browser page on another origin may read (CORS).
EXPOSED_HEADERS = ["x-request-id", "retry-after", "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests",
                   "x-ratelimit-reset-requests", "x-ratelimit-limit-images", "x-ratelimit-remaining-images"]


def create_app(settings: Settings | None = None, *, engine: Engine | None = None,
               text_checker: TextCheckerArg = DEFAULT_TEXT_CHECKER) -> FastAPI:
    """`engine`: a loaded `glmimage.engine.Engine` (else `settings.model` loads in the background).
    `text_checker`: the OCR behind the text QA check (default: the evaluation module's OCR if settings.ocr)."""
    settings = settings or Settings.from_env()
    services = Services(settings, engine=engine, text_checker=text_checker)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        services.start()
        try:
            yield
        finally:
            services.stop()

    app = FastAPI(
        title="glmimage",
        version=glmimage.__version__,
        summary="GLM-Image as a service: OpenAI-compatible generations and edits, jobs, registry, QA and review.",
        lifespan=lifespan,
    )
    app.state.services = services
    install_error_handlers(app)
    app.add_middleware(RequestMiddleware, metrics=services.metrics, max_body_bytes=settings.max_request_bytes)
    if settings.cors_origin_list:  # added last: outermost, so preflights and every response (errors too) get it
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origin_list, allow_methods=["*"],
                           allow_headers=["*"], expose_headers=EXPOSED_HEADERS, max_age=600)
    for module in (images, models, jobs, generations, outputs, prompts, templates, brand_kits, keys, assets, system):
        app.include_router(module.router)
    app.mount("/ui", StaticFiles(directory=WEB_DIR), name="ui")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html")

    return app


def serve(app: FastAPI, host: str, port: int) -> None:
    """Run `app` under uvicorn until SIGINT/SIGTERM. On the signal, requests waiting for a job answer 503 at once
    (uvicorn would otherwise wait for them, i.e. for their jobs), and whatever else is open gets
    `shutdown_timeout_s` to finish."""
    server = shutdown_aware_server(app, host=host, port=port)
    server.run()


def shutdown_aware_server(app: FastAPI, **config):
    import uvicorn

    services: Services = app.state.services

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            services.begin_shutdown()
            super().handle_exit(sig, frame)

    # uvicorn's own logging config is left off: configure_logging already routed its loggers.
    return Server(uvicorn.Config(
        app, log_config=None, access_log=False,
        # uvicorn annotates this int, but only hands it to asyncio.wait_for(timeout=...), which takes float seconds.
        timeout_graceful_shutdown=services.settings.shutdown_timeout_s,  # type: ignore[arg-type]
        **config))
