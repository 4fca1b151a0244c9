"""One pure-ASGI middleware for every HTTP request: a request id, a cap on the body size (413 before the app
reads too much), a NUL character anywhere in the path or query refused (400), Prometheus counters and latency by
route template, and one JSON log line."""

from __future__ import annotations

import logging
import time
import uuid
from contextvars import ContextVar
from urllib.parse import parse_qsl

from starlette.exceptions import HTTPException as StarletteHTTPException

from glmimage.service.errors import error_response
from glmimage.service.metrics import Metrics

log = logging.getLogger("glmimage.service.http")
# Headers the code handling a request adds to its response, whatever the response is (an error included): the
# rate-limit headers. One dict per request; the threads a request's sync code runs in share it.
_extra_headers: ContextVar[dict[str, str] | None] = ContextVar("glmimage_extra_headers", default=None)


def response_headers() -> dict[str, str]:
    """The current request's extra response headers, to add to (a throwaway dict outside a request)."""
    headers = _extra_headers.get()
    return {} if headers is None else headers


class BodyTooLarge(StarletteHTTPException):
    """An HTTPException, so that FastAPI's body parsing lets it through as a 413 (not "error parsing body")."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over the limit of {limit} bytes")


def url_problem(scope) -> tuple[str, str] | None:
    """(param, message) when the decoded path or a query parameter holds a NUL character (`%00`): PostgreSQL
    refuses it in text and SQLite's LIKE stops at it, so no route could give it a meaning."""
    if "\x00" in scope["path"]:
        return "path", "the path contains a NUL character (%00), which text may not contain"
    query = scope.get("query_string", b"").decode("latin-1")
    if "%00" in query or "\x00" in query:
        for name, value in parse_qsl(query, keep_blank_values=True):
            if "\x00" in name or "\x00" in value:
                shown = name.replace("\x00", "%00")
                return shown, f"query parameter {shown!r} contains a NUL character (%00), which text may not contain"
    return None


class RequestMiddleware:
    def __init__(self, app, metrics: Metrics, max_body_bytes: int) -> None:
        self.app, self.metrics, self.max_body = app, metrics, max_body_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        headers = dict(scope.get("headers") or [])
        request_id = headers.get(b"x-request-id", b"").decode("latin-1")[:64] or uuid.uuid4().hex[:16]
        status = {"code": 500, "started": False}
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise BodyTooLarge(self.max_body)
            return message

        extra: dict[str, str] = {}
        _extra_headers.set(extra)

        async def tagged_send(message):
            if message["type"] == "http.response.start":
                status["code"], status["started"] = message["status"], True
                message.setdefault("headers", [])
                added = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()]
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode()), *added]
            await send(message)

        try:
            declared = int(headers.get(b"content-length", b"0") or 0)
        except ValueError:
            declared = 0
        try:
            if declared > self.max_body:
                raise BodyTooLarge(self.max_body)
            if (problem := url_problem(scope)) is not None:
                param, message = problem
                await error_response(400, message, "invalid_value", param,
                                     headers={"x-request-id": request_id})(scope, receive, send)
                status["code"] = 400
                return
            await self.app(scope, limited_receive, tagged_send)
        except BodyTooLarge:
            if status["started"]:
                raise
            response = error_response(413, f"request body over the limit of {self.max_body} bytes",
                                      "request_too_large")
            response.headers["x-request-id"] = request_id
            await response(scope, receive, send)
            status["code"] = 413
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or ("static" if scope["path"].startswith("/ui/") else "unmatched")
            seconds = time.perf_counter() - start
            method = scope["method"]
            self.metrics.requests.labels(method, template, str(status["code"])).inc()
            self.metrics.request_seconds.labels(method, template).observe(seconds)
            log.info("%s %s %s", method, scope["path"], status["code"], extra={
                "request_id": request_id, "method": method, "path": scope["path"], "route": template,
                "status": status["code"], "duration_ms": round(seconds * 1000, 1)})
