"""Catalog Graph endpoints (audiences-and-catalog.md §6.1-§6.3).

- ``POST   /{version}/{catalog_id}/items_batch`` — ``{"handles": [h], "validation_status": [...]}``
- ``GET    /{version}/{catalog_id}/check_batch_request_status?handle=`` — ``{"data": [{...}]}``
- ``POST   /{version}/{catalog_id}/product_sets`` — create: ``{"id"}`` (10803 for a duplicate filter)
- ``GET    /{version}/{catalog_id}/product_sets`` — list, oldest first, cursors, ``summary.total_count``,
  ``retailer_id`` to find one
- ``GET|POST|DELETE /{version}/{product_set_id}`` — read, update (``method=DELETE`` deletes), delete

The product-set node shares ``/{version}/{node_id}`` with audiences: ``routes/audiences.py`` owns those
paths and hands product-set ids to :func:`product_set_node` (ids of the two kinds never collide).

Every handler runs :func:`begin_graph_call` first, so injected faults (80014 "too many batch calls",
80009 "catalog throttled", with ``path_contains`` to aim them), revoked tokens and ``appsecret_proof``
behave as on the other surfaces. Item, status and set rules: ``validation/catalog.py`` and
``catalog_state.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import Response

from metabridge.sandbox.catalog_state import CatalogError
from metabridge.sandbox.errors import unknown_object
from metabridge.sandbox.routes.common import (
    GraphCall,
    begin_node_call,
    control_path,
    get_state,
    graph_success,
    method_override,
    select_fields,
)
from metabridge.sandbox.validation.audiences import param_error, parse_bool, parse_limit
from metabridge.sandbox.validation.catalog import (
    MAX_BODY_BYTES,
    body_too_large,
    decode_set_cursor,
    duplicate_filter,
    encode_set_cursor,
    parse_items_batch,
    parse_set_create,
    parse_set_fields,
    parse_set_update,
    parse_status_fields,
    unknown_handle,
)

__all__ = ["product_set_node", "router"]

router = APIRouter()

T = TypeVar("T")


def _store(method: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call the catalog store; its refusals become Graph errors."""
    try:
        return fn(*args, **kwargs)
    except CatalogError as exc:
        if exc.kind == "unknown_handle":
            raise unknown_handle(exc.details["handle"]) from None
        if exc.kind == "duplicate_filter":
            raise duplicate_filter() from None
        raise unknown_object(exc.details["product_set_id"], method) from None


# -- items -----------------------------------------------------------------------------------------------
@router.post("/{version}/{catalog_id}/items_batch")
async def items_batch(version: str, catalog_id: str, request: Request) -> Response:
    """Create, update and delete items (§6.1); each item is checked on its own."""
    if (answer := control_path(version)) is not None:
        return answer
    store = get_state(request).catalogs
    if catalog_id.isdecimal():
        store.note_batch_call(catalog_id)  # counted whatever happens next: "nothing was sent" is exact
    call = await begin_node_call(request, version, catalog_id, "post")
    size = len(await request.body())
    if size > MAX_BODY_BYTES:
        raise body_too_large(size)
    spec = parse_items_batch(call.params)
    call.rows_count = len(spec.requests)
    outcome = store.apply_batch(catalog_id, spec)
    body = {
        "handles": [outcome.handle] if outcome.handle is not None else [],
        "validation_status": outcome.validation_status,
    }
    return graph_success(request, call, body)


@router.get("/{version}/{catalog_id}/check_batch_request_status")
async def check_batch_request_status(version: str, catalog_id: str, request: Request) -> Response:
    """The status of one items_batch handle: always a one-element ``data`` list (§6.1)."""
    if (answer := control_path(version)) is not None:
        return answer
    call = await begin_node_call(request, version, catalog_id, "get")
    params = call.params
    handle = params.get("handle")
    if not isinstance(handle, str) or not handle:
        raise param_error(
            "handle", "Missing Required Parameter", "The parameter handle is required.",
            "(#100) The parameter handle is required",
        )  # fmt: skip
    fields = parse_status_fields(params.get("fields"))
    load_ids = parse_bool(params.get("load_ids_of_invalid_requests"), "load_ids_of_invalid_requests")
    status = _store(
        "get", get_state(request).catalogs.batch_status, catalog_id, handle, load_ids=load_ids
    )
    return graph_success(request, call, {"data": [{name: status[name] for name in fields}]})


# -- product sets ------------------------------------------------------------------------------------------
@router.post("/{version}/{catalog_id}/product_sets")
async def create_product_set(version: str, catalog_id: str, request: Request) -> Response:
    """Create a product set (§6.3): ``{"id"}``; a filter another set of the catalog has is 10803."""
    if (answer := control_path(version)) is not None:
        return answer
    call = await begin_node_call(request, version, catalog_id, "post")
    spec = parse_set_create(call.params)
    set_id = _store("post", get_state(request).catalogs.create_set, catalog_id, spec)
    return graph_success(request, call, {"id": set_id})


@router.get("/{version}/{catalog_id}/product_sets")
async def list_product_sets(version: str, catalog_id: str, request: Request) -> Response:
    """The catalog's sets, oldest first, ``limit`` per page (default 25), ``after`` cursors,
    ``summary.total_count``; ``retailer_id`` narrows to the sets with that external id (§6.3)."""
    if (answer := control_path(version)) is not None:
        return answer
    call = await begin_node_call(request, version, catalog_id, "get")
    params = call.params
    fields = parse_set_fields(params.get("fields"), ("id", "name"))
    limit = parse_limit(params.get("limit"))
    after = decode_set_cursor(params["after"]) if params.get("after") else None
    retailer_id = params.get("retailer_id")
    if retailer_id is not None and not isinstance(retailer_id, str):
        raise param_error("retailer_id", "Invalid Parameter", "Param retailer_id must be a string.")
    views, more, total = get_state(request).catalogs.list_sets(
        catalog_id, limit=limit, after=after, retailer_id=retailer_id
    )
    data = [select_fields(v, fields) for v in views]
    body: dict[str, Any] = {"data": data, "summary": {"total_count": total}}
    if views:
        last = encode_set_cursor(views[-1]["id"])
        paging: dict[str, Any] = {"cursors": {"before": encode_set_cursor(views[0]["id"]), "after": last}}
        if more:
            base = request.url.remove_query_params(["after", "before"])
            paging["next"] = str(base.include_query_params(after=last, limit=limit))
        body["paging"] = paging
    return graph_success(request, call, body)


def product_set_node(request: Request, call: GraphCall, node_id: str) -> Response | None:
    """``GET|POST|DELETE /{version}/{node_id}`` when ``node_id`` is a product set; ``None`` otherwise.

    Called by the node routes of ``routes/audiences.py`` after their token and id checks.
    """
    store = get_state(request).catalogs
    if not store.is_product_set(node_id):
        return None
    method = request.method.lower()
    params = call.params
    if method == "get":
        view = _store(method, store.set_view, node_id)
        fields = parse_set_fields(params.get("fields"), ("id",))
        return graph_success(request, call, select_fields(view, fields))
    if method == "delete" or method_override(params) == "DELETE":
        _store(method, store.delete_set, node_id)
    else:
        _store(method, store.update_set, node_id, parse_set_update(params))
    return graph_success(request, call, {"success": True})
