"""Custom Audience Graph endpoints (audiences-and-catalog.md §1, §2).

- ``POST   /{version}/act_{ad_account_id}/customaudiences`` — create: ``{"id"}``
- ``GET    /{version}/act_{ad_account_id}/customaudiences`` — list, newest first, cursor paging
- ``GET    /{version}/{audience_id}`` — read (``fields``; only ``id`` without it, as Graph)
- ``POST   /{version}/{audience_id}`` — update name/description/customer_file_source: ``{"success"}``
- ``DELETE /{version}/{audience_id}`` — delete: ``{"success": true}`` (also POST with ``method=DELETE``)
- ``POST   /{version}/{audience_id}/users`` — add (remove with ``method=DELETE``)
- ``DELETE /{version}/{audience_id}/users`` — remove; the payload may be in the body or the query string
- ``POST   /{version}/{audience_id}/usersreplace`` — replace session batches

Custom Audience Terms not accepted (``POST /_sandbox/ad-accounts/{id}/tos``) fail create, ``/users`` and
``/usersreplace`` with 200/1870090. Row, session and membership rules: ``validation/audiences.py`` and
``audience_state.py``.

Every handler runs :func:`begin_graph_call` first (faults, token, appsecret_proof, version), so injected
faults, revoked tokens and proofs behave exactly as on the Conversions API. Calls that resolve an ad
account answer with an ``X-Business-Use-Case-Usage`` header like Meta's (``type: custom_audience``,
``call_count`` as % of the hourly budget 5000 + 40 x audiences); a fault's own usage header wins.

The node paths ``/{version}/{node_id}`` are shared with product sets: a product-set id goes to
:func:`metabridge.sandbox.routes.catalog.product_set_node` (the two kinds of ids never collide).

Paths: ``/{version}/{audience_id}`` has two segments, ``/users`` and ``/usersreplace`` three with a literal
suffix, so none of these shadow ``/{version}/{pixel_id}/events``; anything else falls through to the app's
catch-all (100/33). ``/_sandbox/...`` paths that reach these patterns answer 404 like the catch-all.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from metabridge.sandbox.audience_state import AudienceError, AudienceStore
from metabridge.sandbox.errors import unknown_object
from metabridge.sandbox.routes.catalog import product_set_node
from metabridge.sandbox.routes.common import (
    GraphCall,
    begin_graph_call,
    begin_node_call,
    control_path,
    get_state,
    graph_success,
    method_override,
    select_fields,
)
from metabridge.sandbox.validation.audiences import (
    check_value_column,
    decode_cursor,
    encode_cursor,
    parse_create,
    parse_fields,
    parse_limit,
    parse_payload,
    parse_session,
    parse_update,
    store_error,
    validate_rows,
)

__all__ = ["router"]

router = APIRouter()

_ACCOUNT_RE = re.compile(r"\d+")
_USAGE_HEADER = "x-business-use-case-usage"

T = TypeVar("T")
#: What a node route does once the call is checked and the id is known to be an audience's.
_NodeHandler = Callable[[GraphCall, AudienceStore], Response]


def _ad_account(ad_account_id: str, method: str) -> str:
    if not _ACCOUNT_RE.fullmatch(ad_account_id):
        raise unknown_object(f"act_{ad_account_id}", method)
    return ad_account_id


def _store(method: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call the audience store; its refusals become Graph errors."""
    try:
        return fn(*args, **kwargs)
    except AudienceError as exc:
        if exc.kind == "unknown_audience":
            raise unknown_object(exc.details["audience_id"], method) from None
        raise store_error(exc.kind, exc.details) from None


def _note_usage(call: GraphCall, store: AudienceStore, ad_account_id: str) -> None:
    percent = store.note_call(ad_account_id)
    if any(name.lower() == _USAGE_HEADER for name in call.extra_headers):
        return
    usage = {
        ad_account_id: [
            {
                "type": "custom_audience",
                "call_count": percent,
                "total_cputime": percent,
                "total_time": percent,
                "estimated_time_to_regain_access": 0,
            }
        ]
    }
    call.extra_headers[_USAGE_HEADER] = orjson.dumps(usage).decode()


def _note_owner_usage(
    call: GraphCall, store: AudienceStore, audience_id: str, method: str
) -> tuple[str, bool]:
    """Count the call against the ad account owning the audience: (that account, value-based audience)."""
    account, value_based = _store(method, store.account_of, audience_id)
    _note_usage(call, store, account)
    return account, value_based


async def _begin_account_call(
    request: Request, version: str, ad_account_id: str, method: str
) -> tuple[GraphCall, AudienceStore, str]:
    """The start of an ad account edge route: the call's checks, the account id, its usage header."""
    call = await begin_graph_call(request, version)
    account = _ad_account(ad_account_id, method)
    store = get_state(request).audiences
    _note_usage(call, store, account)
    return call, store, account


async def _audience_node(
    request: Request, version: str, audience_id: str, method: str, handle: _NodeHandler
) -> Response:
    """The start every ``/{version}/{audience_id}`` route shares, then ``handle``.

    A product-set id goes to the catalog routes after the token and id checks, exactly where Graph
    would tell the two kinds of node apart.
    """
    if (answer := control_path(version)) is not None:
        return answer
    call = await begin_node_call(request, version, audience_id, method)
    if (answer := product_set_node(request, call, audience_id)) is not None:
        return answer
    call.audience_id = audience_id
    return handle(call, get_state(request).audiences)


# -- ad account edge --------------------------------------------------------------------------------------
@router.post("/{version}/act_{ad_account_id}/customaudiences")
async def create_audience(version: str, ad_account_id: str, request: Request) -> Response:
    """Create a customer-list audience (§1.1)."""
    if (answer := control_path(version)) is not None:
        return answer
    call, store, account = await _begin_account_call(request, version, ad_account_id, "post")
    spec = parse_create(call.params)
    audience_id, _ = _store("post", store.create, account, spec)
    call.audience_id = audience_id
    return graph_success(request, call, {"id": audience_id})


@router.get("/{version}/act_{ad_account_id}/customaudiences")
async def list_audiences(version: str, ad_account_id: str, request: Request) -> Response:
    """The account's audiences, newest first, ``limit`` per page (default 25), cursors (§1.4)."""
    if (answer := control_path(version)) is not None:
        return answer
    call, store, account = await _begin_account_call(request, version, ad_account_id, "get")
    params = call.params
    fields = parse_fields(params.get("fields"))
    limit = parse_limit(params.get("limit"))
    after = decode_cursor(params["after"], "after") if params.get("after") else None
    before = decode_cursor(params["before"], "before") if params.get("before") and after is None else None
    views, more_after, more_before = store.list_views(account, limit=limit, after=after, before=before)
    if not views:
        return graph_success(request, call, {"data": []})
    first, last = encode_cursor(views[0]["id"]), encode_cursor(views[-1]["id"])
    paging: dict[str, Any] = {"cursors": {"before": first, "after": last}}
    base = request.url.remove_query_params(["after", "before"])
    if more_before:
        paging["previous"] = str(base.include_query_params(before=first, limit=limit))
    if more_after:
        paging["next"] = str(base.include_query_params(after=last, limit=limit))
    body = {"data": [select_fields(v, fields) for v in views], "paging": paging}
    return graph_success(request, call, body)


# -- audience node ----------------------------------------------------------------------------------------
@router.get("/{version}/{audience_id}")
async def read_audience(version: str, audience_id: str, request: Request) -> Response:
    """One audience's ``fields`` (§1.3)."""

    def read(call: GraphCall, store: AudienceStore) -> Response:
        view = _store("get", store.view, audience_id)
        _note_usage(call, store, view["account_id"])
        fields = parse_fields(call.params.get("fields"))
        return graph_success(request, call, select_fields(view, fields))

    return await _audience_node(request, version, audience_id, "get", read)


@router.post("/{version}/{audience_id}")
async def update_audience(version: str, audience_id: str, request: Request) -> Response:
    """Update ``name``, ``description``, ``customer_file_source`` (§1.4); ``method=DELETE`` deletes."""

    def update(call: GraphCall, store: AudienceStore) -> Response:
        _note_owner_usage(call, store, audience_id, "post")
        if method_override(call.params) == "DELETE":
            _store("post", store.delete, audience_id)
        else:
            _store("post", store.update, audience_id, parse_update(call.params))
        return graph_success(request, call, {"success": True})

    return await _audience_node(request, version, audience_id, "post", update)


@router.delete("/{version}/{audience_id}")
async def delete_audience(version: str, audience_id: str, request: Request) -> Response:
    """Delete an audience (§1.4); an open replace session goes with it."""

    def delete(call: GraphCall, store: AudienceStore) -> Response:
        _note_owner_usage(call, store, audience_id, "delete")
        _store("delete", store.delete, audience_id)
        return graph_success(request, call, {"success": True})

    return await _audience_node(request, version, audience_id, "delete", delete)


# -- members ----------------------------------------------------------------------------------------------
async def _upload(request: Request, version: str, audience_id: str, op: str) -> Response:
    """``/users`` (add, remove) and ``/usersreplace``: one payload of rows, checked and applied."""
    if (answer := control_path(version)) is not None:
        return answer
    method = request.method.lower()
    call = await begin_node_call(request, version, audience_id, method)
    call.audience_id = audience_id
    if op == "add" and method_override(call.params) == "DELETE":
        op = "remove"
    store = get_state(request).audiences
    account, value_based = _note_owner_usage(call, store, audience_id, method)
    if not store.tos_accepted(account):
        raise store_error("tos_not_accepted", {"ad_account_id": account})
    schema, data = parse_payload(call.params.get("payload"))
    call.rows_count = len(data)
    session = parse_session(call.params.get("session"), required=op == "replace")
    check_value_column(schema, value_based=value_based, removing=op == "remove")
    rows = validate_rows(schema, data, require_value=value_based and op != "remove")
    outcome = _store(
        method,
        store.upload,
        audience_id,
        op,
        schema,
        rows.members,
        received=len(data),
        invalid=rows.invalid,
        session=session,
    )
    body = {
        "audience_id": audience_id,
        "session_id": str(outcome.session_id),
        "num_received": outcome.num_received,
        "num_invalid_entries": rows.invalid,
        "invalid_entry_samples": rows.samples,
    }
    return graph_success(request, call, body)


@router.post("/{version}/{audience_id}/users")
async def add_users(version: str, audience_id: str, request: Request) -> Response:
    """Add members (§2.1); with ``method=DELETE`` remove them instead."""
    return await _upload(request, version, audience_id, "add")


@router.delete("/{version}/{audience_id}/users")
async def remove_users(version: str, audience_id: str, request: Request) -> Response:
    """Remove members (§2.1): payload in a JSON or form body, or in the query string as the SDKs send it."""
    return await _upload(request, version, audience_id, "remove")


@router.post("/{version}/{audience_id}/usersreplace")
async def replace_users(version: str, audience_id: str, request: Request) -> Response:
    """One batch of a replace session (§2.5)."""
    return await _upload(request, version, audience_id, "replace")
