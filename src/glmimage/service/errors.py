"""HTTP errors, all in one JSON shape (OpenAI's, so its clients raise the right exception class):
`{"error": {"message": ..., "type": ..., "code": ..., "param": ...}}`."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from glmimage.errors import GlmImageError

log = logging.getLogger("glmimage.service")

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
    503: "service_unavailable",
}


class ApiError(Exception):
    """An error the client caused or should know about; becomes a 4xx/5xx JSON response."""

    def __init__(self, status: int, message: str, code: str, param: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param, self.headers = status, message, code, param, headers


class ErrorBody(BaseModel):
    message: str
    type: str
    code: str | None = None
    param: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


# Documented on every route (FastAPI `responses=`), so the OpenAPI schema tells clients what errors look like.
ERROR_RESPONSES: dict[int | str, dict] = {
    status: {"model": ErrorResponse} for status in (400, 401, 403, 404, 409, 413, 429)
}


def _sendable(text: str | None) -> str | None:
    """`text` with anything UTF-8 cannot encode (a lone surrogate from the request, echoed in a field name)
    escaped, so the error itself can always be sent."""
    return None if text is None else text.encode("utf-8", "backslashreplace").decode("utf-8")


def error_response(status: int, message: str, code: str | None, param: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"message": _sendable(message), "type": _TYPES.get(status, "server_error"), "code": code,
                      "param": _sendable(param)}}
    return JSONResponse(body, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.code, exc.param, exc.headers)

    @app.exception_handler(GlmImageError)
    async def _input_error(_request: Request, exc: GlmImageError) -> JSONResponse:
        return error_response(400, str(exc), "invalid_value")

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # 400 rather than FastAPI's 422: what OpenAI answers, and what its client maps to BadRequestError.
        first = exc.errors()[0] if exc.errors() else {"msg": "invalid request", "loc": ()}
        loc = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path", "header")]
        param = ".".join(loc) or None
        message = f"{param}: {first['msg']}" if param else str(first["msg"])
        return error_response(400, message, "invalid_value", param)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}
        code = codes.get(exc.status_code, "http_error")
        return error_response(exc.status_code, str(exc.detail), code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal server error; the request was logged", "internal_error")
