"""``/_sandbox/*``: look at what the sandbox received and steer it (faults, tokens, reset).

These endpoints are not Graph endpoints: they answer plain JSON, never the Graph error envelope, and
they are kept under one prefix so a deployment can hide them. Nothing here returns a token.
"""

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from metabridge.sandbox.audience_state import AudienceError
from metabridge.sandbox.errors import GraphAPIException
from metabridge.sandbox.routes.common import CONTROL_SEGMENT, get_state, json_response
from metabridge.sandbox.state import Fault, FaultError
from metabridge.sandbox.validation.audiences import (
    CUSTOMER_FILE_SOURCES,
    MAX_ROWS_PER_REQUEST,
    CreateSpec,
    check_value_column,
    parse_payload,
    validate_rows,
)

__all__ = [
    "CONTROL_PREFIX",
    "AppSecretSpec",
    "AudienceSpec",
    "ClockSpec",
    "FaultErrorSpec",
    "FaultSpec",
    "TokenSpec",
    "TosSpec",
    "router",
]

CONTROL_PREFIX = "/" + CONTROL_SEGMENT

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


class TosSpec(BaseModel):
    """``POST /_sandbox/ad-accounts/{id}/tos``: whether the account accepted the Custom Audience Terms."""

    accepted: bool


class ClockSpec(BaseModel):
    """``POST /_sandbox/clock/advance``: move the sandbox clock forward by ``seconds``."""

    seconds: float = Field(ge=0, le=10 * 365 * 86_400)


class AudienceSpec(BaseModel):
    """``POST /_sandbox/audiences``: an audience "made by someone else" (no TOS check, no Graph call).

    ``members`` are ``{schema key: value}`` mappings (e.g. ``{"EMAIL": "<sha256>"}``), checked with the
    same row rules as ``/users``.
    """

    ad_account_id: str = Field(pattern=r"^(act_)?\d+$")
    name: str = Field(min_length=1)
    description: str | None = None
    customer_file_source: str = "USER_PROVIDED_ONLY"
    is_value_based: bool = False
    members: list[dict[str, Any]] = Field(default_factory=list)


def _account_id(ad_account_id: str) -> str:
    account = ad_account_id.removeprefix("act_")
    if not account.isdecimal():
        raise HTTPException(422, f"ad account id must be digits, optionally act_-prefixed: {ad_account_id!r}")
    return account


def _unknown_audience(audience_id: str) -> HTTPException:
    return HTTPException(404, f"no audience {audience_id}")


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


@router.get("/ad-accounts/{ad_account_id}/audiences")
def list_account_audiences(
    ad_account_id: str, request: Request, limit: Limit = 100, offset: Offset = 0
) -> Response:
    """An ad account's audiences, oldest first, with member counts, counters and any open replace."""
    account = _account_id(ad_account_id)
    store = get_state(request).audiences
    views, total = store.control_views(account, offset=offset, limit=limit)
    return json_response(
        {
            "data": views,
            "total": total,
            "tos_accepted": store.tos_accepted(account),
            "limit": limit,
            "offset": offset,
        }
    )


@router.post("/ad-accounts/{ad_account_id}/tos")
def set_tos(ad_account_id: str, spec: TosSpec, request: Request) -> Response:
    """``{"accepted": false}``: audience calls of this account fail with 200/1870090 until accepted."""
    account = _account_id(ad_account_id)
    get_state(request).audiences.set_tos(account, spec.accepted)
    return json_response({"success": True, "ad_account_id": account, "tos_accepted": spec.accepted})


@router.post("/audiences", status_code=201)
def create_audience(spec: AudienceSpec, request: Request) -> Response:
    """Pre-create a customer-list audience (optionally with members) as if another tool made it."""
    if spec.customer_file_source not in CUSTOMER_FILE_SOURCES:
        raise HTTPException(422, f"customer_file_source must be one of {sorted(CUSTOMER_FILE_SOURCES)}")
    account = _account_id(spec.ad_account_id)
    store = get_state(request).audiences
    create = CreateSpec(
        name=spec.name,
        subtype="CUSTOM",
        customer_file_source=spec.customer_file_source,
        description=spec.description,
        is_value_based=spec.is_value_based,
    )
    # Check every member before creating anything.
    groups: dict[tuple[str, ...], list[list[Any]]] = {}
    for member in spec.members:
        groups.setdefault(tuple(member), []).append(list(member.values()))
    batches = []
    for keys, rows in groups.items():
        for start in range(0, len(rows), MAX_ROWS_PER_REQUEST):
            chunk = rows[start : start + MAX_ROWS_PER_REQUEST]
            try:
                schema, data = parse_payload({"schema": list(keys), "data": chunk})
                check_value_column(schema, value_based=spec.is_value_based, removing=False)
            except GraphAPIException as exc:
                raise HTTPException(422, f"members with keys {list(keys)}: {exc.user_msg}") from None
            result = validate_rows(schema, data, require_value=spec.is_value_based)
            if result.invalid:
                raise HTTPException(422, {"invalid_members": result.samples})
            batches.append((schema, result.members, len(data)))
    try:
        audience_id, _ = store.create(account, create, origin="control", check_tos=False)
        for schema, records, received in batches:
            store.upload(
                audience_id,
                "add",
                schema,
                records,
                received=received,
                invalid=0,
                session=None,
                check_tos=False,
            )
    except AudienceError as exc:
        raise HTTPException(409, {"kind": exc.kind, **exc.details}) from None
    body = {"id": audience_id, "ad_account_id": account, "members": store.member_count(audience_id)}
    return json_response(body, 201)


@router.get("/audiences/{audience_id}")
def get_audience(audience_id: str, request: Request) -> Response:
    """Every field of an audience plus ``member_count``, ``origin``, ``counters``, ``replace_session``."""
    try:
        return json_response(get_state(request).audiences.view(audience_id, control=True))
    except AudienceError:
        raise _unknown_audience(audience_id) from None


@router.get("/audiences/{audience_id}/members")
def list_members(audience_id: str, request: Request, limit: Limit = 1000, offset: Offset = 0) -> Response:
    """The stored members as ``{schema key: value}`` (non-empty cells of the row that put them there)."""
    try:
        members, total = get_state(request).audiences.members(audience_id, offset=offset, limit=limit)
    except AudienceError:
        raise _unknown_audience(audience_id) from None
    return json_response({"data": members, "total": total, "limit": limit, "offset": offset})


@router.get("/audiences/{audience_id}/members/count")
def count_members(audience_id: str, request: Request) -> Response:
    """How many members the audience holds (exact; Graph only shows a range)."""
    try:
        return json_response({"count": get_state(request).audiences.member_count(audience_id)})
    except AudienceError:
        raise _unknown_audience(audience_id) from None


@router.get("/clock")
def get_clock(request: Request) -> Response:
    """The sandbox clock (drives audience timestamps and upload-session timeouts)."""
    state = get_state(request)
    return json_response({"now": state.now(), "offset_seconds": state.clock_offset})


@router.post("/clock/advance")
def advance_clock(spec: ClockSpec, request: Request) -> Response:
    """Move the sandbox clock forward, e.g. 5400 s to let a replace session time out."""
    state = get_state(request)
    offset = state.advance_clock(spec.seconds)
    return json_response({"now": state.now(), "offset_seconds": offset})


@router.post("/reset")
def reset(request: Request) -> Response:
    """Forget everything: events, request log, faults, revoked tokens, counters, audiences, clock."""
    get_state(request).reset()
    return json_response({"success": True})
