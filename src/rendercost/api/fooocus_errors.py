"""Errors the Fooocus-API way, for the routes of ``routes_fooocus`` only (``FooocusRoute``).

Fooocus-API is a plain FastAPI app, so its clients expect FastAPI's shapes: a validation error is
422 ``{"detail": [{"loc", "msg", "type"}]}`` (rendercost's own field errors too, their ``param``
renamed to the Fooocus field), a wrong or missing ``X-API-KEY`` is 403 ``{"detail": "Forbidden"}``.
Any other rendercost error keeps its status with ``detail`` (the message). Every body also holds
rendercost's one ``error`` object (``{code, message, param, type}``), which Fooocus clients ignore,
and ``Retry-After`` where the error carries one. A body without a Content-Type is read as JSON, as
older FastAPI versions (Fooocus-API's) did.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from rendercost.api.errors import error_response, validation_error_response
from rendercost.errors import AuthenticationFailed, InvalidRequest, RenderCostError

# rendercost's names for a field -> the Fooocus-API field they come from
FIELD_OF = {
    "n": "image_number",
    "size": "aspect_ratios_selection",
    "preset": "performance_selection",
    "seed": "image_seed",
    "output_format": "save_extension",
    "format": "save_extension",
}


def invalid_response(exc: InvalidRequest) -> JSONResponse:
    """422 in FastAPI's shape, naming the Fooocus field; rendercost's code is the ``type``."""
    field = FIELD_OF.get(exc.param or "", exc.param)
    loc = ["body", *(field.split(".") if field else [])]
    detail = [{"loc": loc, "msg": exc.message, "type": exc.code}]
    error = {**exc.to_dict(), "param": field}
    return JSONResponse({"detail": detail, "error": error}, status_code=422)


def validation_response(exc: RequestValidationError) -> JSONResponse:
    """FastAPI's own 422, with the ``error`` object rendercost's handler would have made."""
    error = json.loads(bytes(validation_error_response(exc).body))["error"]
    return JSONResponse({"detail": jsonable_encoder(exc.errors()), "error": error}, status_code=422)


def fooocus_error_response(exc: RenderCostError) -> Response:
    if isinstance(exc, AuthenticationFailed):
        return JSONResponse({"detail": "Forbidden", "error": exc.to_dict()}, status_code=403)
    if isinstance(exc, InvalidRequest):
        return invalid_response(exc)
    response = error_response(exc)
    body = {"detail": exc.message, "error": exc.to_dict()}
    return JSONResponse(body, status_code=response.status_code, headers=_retry_after(response))


def _retry_after(response: Response) -> dict[str, str]:
    value = response.headers.get("retry-after")
    return {"Retry-After": value} if value is not None else {}


def _as_json(request: Request) -> Request:
    """The request, its body read as JSON when it names no Content-Type: Fooocus-API's own examples
    send ``requests.post(url, data=json.dumps(params))``, which sets none."""
    if "content-type" in request.headers:
        return request
    scope = dict(request.scope)
    scope["headers"] = [*request.scope["headers"], (b"content-type", b"application/json")]
    return Request(scope, request.receive)


class FooocusRoute(APIRoute):
    """An ``APIRoute`` whose errors take the Fooocus-API shapes above, and whose bodies are JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(_as_json(request))
            except RequestValidationError as exc:
                return validation_response(exc)
            except RenderCostError as exc:
                return fooocus_error_response(exc)

        return route
