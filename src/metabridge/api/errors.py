"""One JSON error shape for the whole API: ``{"error": {"message", "errors"?: [{"field", "message"}]}}``."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
import orjson
from starlette.exceptions import HTTPException as StarletteHTTPException


class JSONBytesResponse(Response):
    """JSON encoded with orjson (FastAPI's JSONBytesResponse is deprecated)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class ApiError(Exception):
    """Raised by route code for a clear client or state error."""

    def __init__(self, status: int, message: str, errors: list[dict[str, str]] | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.message, self.errors, self.extra = status, message, errors, extra


def error_body(message: str, errors: list[dict[str, str]] | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message, **extra}
    if errors:
        body["errors"] = errors
    return {"error": body}


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


def _rule(err: dict[str, Any]) -> str:
    msg = str(err.get("msg", "is invalid")).removeprefix("Value error, ")
    if err.get("type") == "missing":
        return "is required"
    if err.get("type") == "extra_forbidden":
        return "is not a known field"
    return msg.replace("Input should be", "must be")


def _unreadable_json(err: dict[str, Any]) -> str:
    """``json_invalid``: FastAPI's location is ``("body", <character offset>)``, its message says only
    "JSON decode error"; the decoder's own words (in ``ctx``) say what is wrong."""
    reason = (err.get("ctx") or {}).get("error") or err.get("msg") or "JSON decode error"
    loc = err.get("loc") or ()
    where = f" (at character {loc[-1]})" if loc and isinstance(loc[-1], int) else ""
    return f"the request body is not valid JSON: {reason}{where}"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONBytesResponse:
        return JSONBytesResponse(error_body(exc.message, exc.errors, **exc.extra), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONBytesResponse:
        unreadable = next((e for e in exc.errors() if e.get("type") == "json_invalid"), None)
        if unreadable is not None:  # as the routes that read their body themselves answer it (api/bodies.py)
            return JSONBytesResponse(error_body(_unreadable_json(unreadable)), status_code=400)
        errors = [{"field": _field(tuple(e["loc"])), "message": _rule(e)} for e in exc.errors()]
        return JSONBytesResponse(error_body("the request is invalid", errors), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONBytesResponse:
        return JSONBytesResponse(error_body(str(exc.detail)), status_code=exc.status_code, headers=exc.headers)
