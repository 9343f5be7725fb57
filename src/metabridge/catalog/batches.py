"""items_batch requests and bodies, chunked under Meta's limits. Pure. (§6.1, §6.4)

One request is ``{"method": "CREATE" | "UPDATE" | "DELETE", "data": {...}}``. metabridge sends every
created or changed product as UPDATE with ``allow_upsert: true`` (Meta's default; the WooCommerce plugin
does the same, §6.4): UPDATE creates a missing item, so a create that Meta already applied in a sync that
crashed before recording it is not an error when resent. A DELETE carries only ``id`` (§6.1).

A call holds at most :data:`MAX_REQUESTS` requests and its body at most :data:`MAX_BODY_BYTES`;
:func:`chunk_requests` cuts a stream of requests into calls under both limits, measuring each request's
orjson encoding (bodies are sent as JSON, so that is what counts).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal, TypedDict

import orjson

from metabridge.catalog.products import ProductItem

__all__ = [
    "BODY_OVERHEAD_BYTES",
    "ITEM_TYPE",
    "MAX_BODY_BYTES",
    "MAX_REQUESTS",
    "RECOMMENDED_REQUESTS",
    "ItemRequest",
    "chunk_requests",
    "create_request",
    "delete_request",
    "encode_body",
    "items_batch_body",
    "request_size",
    "upsert_request",
]

ITEM_TYPE = "PRODUCT_ITEM"
#: At most 5,000 requests per items_batch call; under 3,000 recommended (§6.1).
MAX_REQUESTS = 5_000
RECOMMENDED_REQUESTS = 3_000
#: Payload at most 28 MB (§6.1); decimal megabytes, the safer reading.
MAX_BODY_BYTES = 28_000_000
#: Room kept for the rest of the body (``item_type``, ``allow_upsert``, brackets) and the form/query
#: parameters a client adds (access token, appsecret_proof).
BODY_OVERHEAD_BYTES = 4_096


class ItemRequest(TypedDict):
    """One element of ``requests``."""

    method: Literal["CREATE", "UPDATE", "DELETE"]
    data: dict[str, Any]


def _data(item: ProductItem | Mapping[str, Any]) -> dict[str, Any]:
    return item.data if isinstance(item, ProductItem) else dict(item)


def upsert_request(item: ProductItem | Mapping[str, Any]) -> ItemRequest:
    """UPDATE of a validated item (a :class:`ProductItem` or its ``data``): creates it when missing."""
    return {"method": "UPDATE", "data": _data(item)}


def create_request(item: ProductItem | Mapping[str, Any]) -> ItemRequest:
    """CREATE of a validated item (needs every required field; fails if the item exists)."""
    return {"method": "CREATE", "data": _data(item)}


def delete_request(retailer_id: str) -> ItemRequest:
    """DELETE of one item: only its identifying field, ``id`` (§6.1)."""
    if not retailer_id:
        raise ValueError("a DELETE needs the item's id")
    return {"method": "DELETE", "data": {"id": retailer_id}}


def request_size(request: Mapping[str, Any]) -> int:
    """Bytes ``request`` adds to a JSON body (its encoding plus the separating comma)."""
    return len(orjson.dumps(request)) + 1


def chunk_requests(
    requests: Iterable[Mapping[str, Any]],
    max_requests: int = MAX_REQUESTS,
    max_bytes: int = MAX_BODY_BYTES,
) -> Iterator[list[dict[str, Any]]]:
    """Group ``requests`` (in order, lazily) into calls of at most ``max_requests`` requests whose body
    stays under ``max_bytes``, counting :data:`BODY_OVERHEAD_BYTES` for the rest of the body.

    Raises ``ValueError`` for a single request too large for any call (nothing Meta could take).
    """
    if not 1 <= max_requests <= MAX_REQUESTS:
        raise ValueError(f"max_requests must be between 1 and {MAX_REQUESTS}")
    budget = max_bytes - BODY_OVERHEAD_BYTES
    if budget <= 0:
        raise ValueError(f"max_bytes must exceed {BODY_OVERHEAD_BYTES}")
    chunk: list[dict[str, Any]] = []
    used = 0
    for request in requests:
        size = request_size(request)
        if size > budget:
            item_id = request.get("data", {}).get("id")
            raise ValueError(
                f"item {item_id!r} alone is {size} bytes: more than an items_batch body may hold"
            )
        if chunk and (len(chunk) >= max_requests or used + size > budget):
            yield chunk
            chunk, used = [], 0
        chunk.append(request if isinstance(request, dict) else dict(request))
        used += size
    if chunk:
        yield chunk


def items_batch_body(requests: Iterable[Mapping[str, Any]], *, allow_upsert: bool = True) -> dict[str, Any]:
    """The body of ``POST /{catalog_id}/items_batch``: ``item_type``, ``allow_upsert``, ``requests``."""
    listed = list(requests)
    if not listed:
        raise ValueError("an items_batch call needs at least one request")
    if len(listed) > MAX_REQUESTS:
        raise ValueError(f"at most {MAX_REQUESTS} requests per items_batch call, got {len(listed)}")
    return {"item_type": ITEM_TYPE, "allow_upsert": allow_upsert, "requests": listed}


def encode_body(requests: Iterable[Mapping[str, Any]], *, allow_upsert: bool = True) -> bytes:
    """:func:`items_batch_body` encoded with orjson, ready for ``GraphClient.request(json=...)``."""
    return orjson.dumps(items_batch_body(requests, allow_upsert=allow_upsert))
