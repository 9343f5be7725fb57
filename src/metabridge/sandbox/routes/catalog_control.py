"""``/_sandbox/catalogs/...`` and ``/_sandbox/batch-status-polls``: inspect and steer the catalogs.

Plain JSON (never the Graph envelope), mounted under the control router's ``/_sandbox`` prefix by
``routes/__init__.py``.

- ``GET /_sandbox/catalogs/{catalog_id}`` — counts: items, product sets, items_batch calls, handles
- ``GET /_sandbox/catalogs/{catalog_id}/items?limit=&offset=`` — the items' ``data``, oldest first
- ``GET /_sandbox/catalogs/{catalog_id}/product_sets`` — every set with its filter object, ``product_count``
  and ``members`` (retailer ids)
- ``PUT /_sandbox/batch-status-polls`` — ``{"in_progress_polls": n}``: polls of each *later* items_batch
  handle that answer ``started``/``dispatched`` before ``finished`` (default 1; 0 = finished at once)
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from metabridge.sandbox.routes.common import get_state, json_response

__all__ = ["BatchPollsSpec", "router"]

router = APIRouter(tags=["sandbox control"])

Limit = Annotated[int, Query(ge=1, le=10_000)]
Offset = Annotated[int, Query(ge=0)]


class BatchPollsSpec(BaseModel):
    """``PUT /_sandbox/batch-status-polls``."""

    in_progress_polls: int = Field(ge=0, le=100)


@router.get("/catalogs/{catalog_id}")
def catalog_summary(catalog_id: str, request: Request) -> Response:
    """How many items and sets the catalog holds and how many items_batch calls it received."""
    return json_response(get_state(request).catalogs.summary(catalog_id))


@router.get("/catalogs/{catalog_id}/items")
def catalog_items(catalog_id: str, request: Request, limit: Limit = 1000, offset: Offset = 0) -> Response:
    """The catalog's current items (their items_batch ``data``), oldest first."""
    items, total = get_state(request).catalogs.items(catalog_id, offset=offset, limit=limit)
    return json_response({"data": items, "total": total, "limit": limit, "offset": offset})


@router.get("/catalogs/{catalog_id}/product_sets")
def catalog_product_sets(catalog_id: str, request: Request) -> Response:
    """Every product set of the catalog, oldest first, with its filter, count and members."""
    views, _, total = get_state(request).catalogs.list_sets(catalog_id, limit=1_000_000, control=True)
    return json_response({"data": views, "total": total})


@router.put("/batch-status-polls")
def set_batch_status_polls(spec: BatchPollsSpec, request: Request) -> Response:
    """How many polls of each later items_batch handle answer an in-progress status."""
    get_state(request).catalogs.in_progress_polls = spec.in_progress_polls
    return json_response({"success": True, "in_progress_polls": spec.in_progress_polls})
