"""The ONE place where failures become HTTP responses, all in one shape:

    {"error": {"code": ..., "message": ..., "param": ..., "type": ...}}

``RenderCostError`` subclasses carry their status (``http_status``) and body (``to_dict()``); retryable
refusals (rate limit, queue full) add ``Retry-After``. A database that cannot be reached or is too busy
(SQLAlchemy's ``OperationalError``: refused, reset, restarting, locked) is 503 ``database_unavailable``
with ``Retry-After``, logged as a warning without its traceback. FastAPI's validation errors become
400 naming the field; unknown routes and methods (404/405) and any other ``HTTPException`` keep their
status in the same shape; anything unexpected is logged and answered 500 ``internal_error`` without details.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from rendercost.errors import DatabaseUnavailable, RenderCostError

log = logging.getLogger(__name__)

DATABASE_RETRY_AFTER_S = 1  # a restarting database is usually back within seconds

_HTTP_CODES: dict[int, tuple[str, str]] = {
    400: ("invalid_request", "invalid_request_error"),
    401: ("invalid_api_key", "authentication_error"),
    403: ("forbidden", "permission_error"),
    404: ("not_found", "not_found_error"),
    405: ("method_not_allowed", "invalid_request_error"),
    406: ("not_acceptable", "invalid_request_error"),
    413: ("payload_too_large", "invalid_request_error"),
    415: ("unsupported_media_type", "invalid_request_error"),
    422: ("invalid_request", "invalid_request_error"),
}


def error_body(code: str, message: str, *, param: str | None = None, error_type: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "param": param, "type": error_type}}


def error_response(exc: RenderCostError, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """The response for a rendercost error, with Retry-After when the error carries one."""
    all_headers = dict(headers or {})
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(retry_after, int | float):
        all_headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    return JSONResponse({"error": exc.to_dict()}, status_code=exc.http_status, headers=all_headers)


def _param_of(loc: Sequence[Any]) -> str | None:
    """``("body", "loras", 0, "weight")`` -> ``"loras.0.weight"``; None when the whole body is at fault."""
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    return ".".join(parts) or None


def validation_error_response(exc: RequestValidationError) -> JSONResponse:
    """400 naming the first field at fault (all of them in the message)."""
    problems = []
    first_param: str | None = None
    for i, err in enumerate(exc.errors()):
        param = _param_of(err.get("loc", ()))
        if err.get("type") == "json_invalid":
            param, msg = None, "request body is not valid JSON"
        elif param is None and err.get("type") == "missing":
            msg = "a JSON request body is required"
        else:
            msg = str(err.get("msg", "invalid value"))
        if i == 0:
            first_param = param
        problems.append(f"{param}: {msg}" if param else msg)
    message = "; ".join(problems) or "invalid request"
    body = error_body("invalid_request", message, param=first_param, error_type="invalid_request_error")
    return JSONResponse(body, status_code=400)


def http_error_response(exc: StarletteHTTPException) -> JSONResponse:
    code, error_type = _HTTP_CODES.get(exc.status_code, ("http_error", "invalid_request_error"))
    if exc.status_code >= 500:
        code, error_type = "internal_error", "server_error"
    message = exc.detail if isinstance(exc.detail, str) else "request failed"
    if exc.status_code == 404 and message == "Not Found":
        message = "no such route"
    elif exc.status_code == 405:
        message = "method not allowed for this route"
    return JSONResponse(
        error_body(code, message, error_type=error_type),
        status_code=exc.status_code,
        headers=dict(exc.headers or {}),
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers above on ``app``."""

    async def on_rendercost(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RenderCostError)  # noqa: S101  registered for this type only
        if exc.http_status >= 500:
            log.warning("request failed: %s", exc.message, extra={"fields": {"code": exc.code}})
        return error_response(exc)

    async def on_validation(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)  # noqa: S101  registered for this type only
        return validation_error_response(exc)

    async def on_http(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)  # noqa: S101  registered for this type only
        return http_error_response(exc)

    async def on_database(_request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable: %s", " ".join(str(exc).split())[:300])
        message = "the database is unavailable or busy; retry shortly"
        return error_response(DatabaseUnavailable(message, retry_after=DATABASE_RETRY_AFTER_S))

    async def on_unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", exc_info=exc)
        body = error_body("internal_error", "internal server error", error_type="server_error")
        return JSONResponse(body, status_code=500)

    app.add_exception_handler(RenderCostError, on_rendercost)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(OperationalError, on_database)
    app.add_exception_handler(Exception, on_unexpected)
