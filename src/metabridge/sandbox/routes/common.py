"""What every Graph route of the sandbox does before and after its own work.

:func:`begin_graph_call` applies injected faults, decodes the body, finds and checks the access token
(and the ``appsecret_proof`` when the sandbox has an app secret) and checks the version segment. Every
Graph answer, success or error, is written to the request log by :func:`graph_success` or by the
:class:`GraphAPIException` handler, never with the token.

Routers for later surfaces (audiences, catalog) call the same two functions.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response

from metabridge.sandbox.errors import (
    GraphAPIException,
    appsecret_proof_invalid,
    appsecret_proof_required,
    graph_error,
    invalid_token,
    missing_token,
    new_fbtrace_id,
    unknown_object,
)
from metabridge.sandbox.parsing import extract_token, merged_params, parse_body
from metabridge.sandbox.state import RequestRecord, SandboxState

__all__ = [
    "CONTROL_SEGMENT",
    "GraphCall",
    "begin_graph_call",
    "begin_node_call",
    "check_node_id",
    "control_path",
    "get_state",
    "graph_error_response",
    "graph_success",
    "json_response",
    "method_override",
    "select_fields",
]

#: The first path segment of the sandbox's own routes (``/_sandbox/...``), never a Graph version.
CONTROL_SEGMENT = "_sandbox"

_VERSION_RE = re.compile(r"^v\d+\.\d+\Z")
_NODE_ID_RE = re.compile(r"^\d+\Z")


@dataclass(slots=True)
class GraphCall:
    """One Graph request in progress. ``params`` may hold the token: never log or store it."""

    fbtrace_id: str
    params: dict[str, Any]
    token: str
    started: float
    generation: int = 0
    pixel_id: str | None = None
    events_count: int = 0
    test: bool = False
    fault: bool = False
    audience_id: str | None = None
    rows_count: int = 0
    extra_headers: dict[str, str] = field(default_factory=dict)


def get_state(request: Request) -> SandboxState:
    """The :class:`SandboxState` of the sandbox app serving ``request`` (works when mounted too)."""
    state: SandboxState = request.app.state.sandbox
    return state


def json_response(body: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    """orjson-encoded JSON answer (faster than FastAPI's default encoder for large event lists)."""
    return Response(
        content=orjson.dumps(body), status_code=status_code, media_type="application/json", headers=headers
    )


async def begin_graph_call(request: Request, version: str) -> GraphCall:
    """Faults, body, token, proof and version checks shared by every Graph route. Raises on failure."""
    state = get_state(request)
    fbtrace_id = new_fbtrace_id()
    call = GraphCall(
        fbtrace_id=fbtrace_id, params={}, token="", started=time.time(), generation=state.generation
    )
    request.state.graph_call = call

    # Read the body before any injected delay: the client may give up meanwhile (timeout tests).
    raw_body = await request.body()
    fault = state.take_fault(request.url.path)
    if fault is not None:
        call.fault = True
        call.extra_headers.update(fault.headers)
        if fault.delay_ms:
            await asyncio.sleep(fault.delay_ms / 1000)
        if fault.error is not None:
            e = fault.error
            raise graph_error(
                e.code,
                e.subcode,
                e.message,
                http_status=e.http_status,
                is_transient=e.is_transient,
                type=e.type,
                user_title=e.user_title,
                user_msg=e.user_msg,
            )

    body = parse_body(request.headers.get("content-type"), raw_body)
    call.params = merged_params(request.query_params, body)
    token = extract_token(call.params, request.headers)
    if token is None:
        raise missing_token()
    if state.is_revoked(token):
        raise invalid_token()
    call.token = token
    secret = state.app_secret
    if secret is not None:
        proof = call.params.get("appsecret_proof")
        if not isinstance(proof, str) or not proof:
            raise appsecret_proof_required()
        expected = hmac.new(secret.encode(), token.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(proof, expected):
            raise appsecret_proof_invalid()
    if not _VERSION_RE.match(version):
        raise graph_error(
            100, None, f"Unknown path components: /{version} is not a Graph API version like v26.0"
        )
    return call


def check_node_id(node_id: str, method: str) -> None:
    """Numeric ids only (pixels, datasets, audiences, catalogs); anything else is 100/33 like Graph."""
    if not _NODE_ID_RE.match(node_id):
        raise unknown_object(node_id, method)


async def begin_node_call(request: Request, version: str, node_id: str, method: str) -> GraphCall:
    """:func:`begin_graph_call`, then :func:`check_node_id`: the start of every ``/{version}/{node_id}...``
    route, in this order (a bad token answers before a bad id, as on Graph)."""
    call = await begin_graph_call(request, version)
    check_node_id(node_id, method)
    return call


def control_path(version: str) -> Response | None:
    """A ``/_sandbox/...`` path no control route took: 404 as the app's catch-all answers.

    The Graph routes' ``/{version}/...`` patterns match control paths too; each checks this first so a
    mistyped control call is a plain 404, not a Graph error.
    """
    return json_response({"detail": "Not Found"}, 404) if version == CONTROL_SEGMENT else None


def select_fields(view: dict[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    """The requested fields Graph would show (unset ones left out), ``id`` always."""
    selected = {name: view[name] for name in fields if view.get(name) is not None}
    selected.setdefault("id", view["id"])
    return selected


def method_override(params: dict[str, Any]) -> str:
    """The ``method`` parameter (upper case, "" without one): Graph SDKs send ``POST ... method=DELETE``
    to delete where a client cannot send DELETE."""
    method = params.get("method")
    return method.strip().upper() if isinstance(method, str) else ""


def _log(
    request: Request, status: int, call: GraphCall | None, exc: GraphAPIException | None, fbtrace_id: str
) -> None:
    get_state(request).log_request(
        RequestRecord(
            time=time.time(),
            method=request.method,
            path=request.url.path,
            status=status,
            fbtrace_id=fbtrace_id,
            pixel_id=call.pixel_id if call else None,
            events_count=call.events_count if call else 0,
            test=call.test if call else False,
            error_code=exc.code if exc else None,
            error_subcode=exc.subcode if exc else None,
            fault=call.fault if call else False,
            audience_id=call.audience_id if call else None,
            rows_count=call.rows_count if call else 0,
        ),
        generation=call.generation if call else None,
    )


def graph_success(request: Request, call: GraphCall, body: dict[str, Any]) -> Response:
    """Log and render a successful Graph answer."""
    _log(request, 200, call, None, call.fbtrace_id)
    headers = {"x-fb-trace-id": call.fbtrace_id, **call.extra_headers}
    return json_response(body, 200, headers)


def graph_error_response(request: Request, exc: GraphAPIException) -> Response:
    """Log and render a Graph error (the app registers this as the exception handler)."""
    call: GraphCall | None = getattr(request.state, "graph_call", None)
    fbtrace_id = call.fbtrace_id if call else new_fbtrace_id()
    _log(request, exc.http_status, call, exc, fbtrace_id)
    headers = {"x-fb-trace-id": fbtrace_id, **(call.extra_headers if call else {}), **exc.headers}
    return json_response(exc.envelope(fbtrace_id), exc.http_status, headers)
