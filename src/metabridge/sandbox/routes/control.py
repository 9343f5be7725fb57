"""``/_sandbox/*``: look at what the sandbox received and steer it (faults, tokens, reset).

These endpoints are not Graph endpoints: they answer plain JSON, never the Graph error envelope, and
they are kept under one prefix so a deployment can hide them. Nothing here returns a token.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from metabridge.sandbox.routes.common import get_state, json_response
from metabridge.sandbox.state import Fault, FaultError

__all__ = ["CONTROL_PREFIX", "AppSecretSpec", "FaultErrorSpec", "FaultSpec", "TokenSpec", "router"]

CONTROL_PREFIX = "/_sandbox"

router = APIRouter(prefix=CONTROL_PREFIX, tags=["sandbox control"])

Limit = Annotated[int, Query(ge=1, le=10_000)]
Offset = Annotated[int, Query(ge=0)]


class FaultErrorSpec(BaseModel):
    """The Graph error a fault answers with; unset fields take Meta's defaults for ``code``."""

    code: int
    subcode: int | None = None
    http_status: int | None = Field(default=None, ge=400, le=599)
    message: str | None = None
    is_transient: bool | None = None
    type: str | None = None
    user_title: str | None = None
    user_msg: str | None = None


class FaultSpec(BaseModel):
    """``POST /_sandbox/faults`` body: the next ``count`` matching Graph requests fail and/or wait."""

    count: int = Field(default=1, ge=1)
    error: FaultErrorSpec | None = None
    delay_ms: int = Field(default=0, ge=0, le=600_000)
    path_contains: str | None = None
    headers: dict[str, str] = Field(
        default_factory=dict, description="extra answer headers, e.g. usage headers"
    )


class TokenSpec(BaseModel):
    token: str = Field(min_length=1)


class AppSecretSpec(BaseModel):
    app_secret: str | None = None


def _fault_json(fault: Fault) -> dict[str, Any]:
    error = fault.error
    return {
        "remaining": fault.remaining,
        "error": None if error is None else {k: getattr(error, k) for k in FaultErrorSpec.model_fields},
        "delay_ms": fault.delay_ms,
        "path_contains": fault.path_contains,
        "headers": fault.headers,
    }


@router.get("/health")
def health() -> dict[str, str]:
    """Liveness probe."""
    return {"status": "ok"}


@router.get("/pixels/{pixel_id}/events")
def list_events(
    pixel_id: str, request: Request, test: bool = False, limit: Limit = 100, offset: Offset = 0
) -> Response:
    """Events a pixel received (live, or with ``test=true`` those sent with a ``test_event_code``)."""
    state = get_state(request)
    events = state.events(pixel_id, test=test, limit=limit, offset=offset)
    return json_response(
        {
            "data": [e.to_json() for e in events],
            "total": state.event_count(pixel_id, test=test),
            "stored": state.stored_event_count(pixel_id, test=test),
            "limit": limit,
            "offset": offset,
        }
    )


@router.get("/requests")
def list_requests(request: Request, limit: Limit = 100, offset: Offset = 0) -> Response:
    """The Graph request log, oldest first: path, status, events count, error code, fbtrace_id, time."""
    records = get_state(request).requests(limit=limit, offset=offset)
    return json_response({"data": [r.to_json() for r in records], "limit": limit, "offset": offset})


@router.get("/stats")
def stats(request: Request) -> Response:
    """Totals: requests by status, errors by code, events per pixel, pending faults."""
    return json_response(get_state(request).stats())


@router.post("/faults", status_code=201)
def add_fault(spec: FaultSpec, request: Request) -> Response:
    """Queue a fault for the next ``count`` Graph requests whose path contains ``path_contains``."""
    error = None if spec.error is None else FaultError(**spec.error.model_dump())
    fault = Fault(
        remaining=spec.count,
        error=error,
        delay_ms=spec.delay_ms,
        path_contains=spec.path_contains,
        headers=dict(spec.headers),
    )
    get_state(request).add_fault(fault)
    return json_response(_fault_json(fault), 201)


@router.get("/faults")
def list_faults(request: Request) -> Response:
    """Pending faults, in the order they will be used."""
    return json_response({"data": [_fault_json(f) for f in get_state(request).faults()]})


@router.delete("/faults")
def clear_faults(request: Request) -> Response:
    """Drop every pending fault."""
    get_state(request).clear_faults()
    return json_response({"success": True})


@router.post("/tokens/revoke")
def revoke_token(spec: TokenSpec, request: Request) -> Response:
    """Graph calls with this token now fail with 190 until it is restored."""
    get_state(request).revoke_token(spec.token)
    return json_response({"success": True})


@router.post("/tokens/restore")
def restore_token(spec: TokenSpec, request: Request) -> Response:
    """Undo a revoke."""
    get_state(request).restore_token(spec.token)
    return json_response({"success": True})


@router.put("/app-secret")
def set_app_secret(spec: AppSecretSpec, request: Request) -> Response:
    """Require a valid ``appsecret_proof`` for this secret on Graph calls (``null`` turns it off)."""
    get_state(request).set_app_secret(spec.app_secret)
    return json_response({"success": True, "app_secret_required": spec.app_secret is not None})


@router.post("/reset")
def reset(request: Request) -> Response:
    """Forget everything: events, request log, faults, revoked tokens, counters."""
    get_state(request).reset()
    return json_response({"success": True})
