"""Purchases and views per product, counted when Meta accepted the event (for most_sold / most_viewed sets).

The delivery worker drops an event's payload once Meta accepted it, so the counts are taken then, in the
transaction that marks the events sent (:func:`tally` before it, :func:`record_counts` in it): a crash either records both or neither.
Only Purchase and ViewContent payloads are parsed. A product is counted once per event: a Purchase adds the
units bought (``contents[].quantity``, 1 when absent), a ViewContent adds one view; ids come from
``contents[].id`` and ``content_ids``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import orjson
from sqlalchemy import Connection

from metabridge.store.bulk import upsert
from metabridge.store.schema import product_activity
from metabridge.timeutil import now_ms

__all__ = ["COUNTED_EVENTS", "record_counts", "tally"]

#: Event name -> the counter it feeds.
COUNTED_EVENTS: dict[str, str] = {"Purchase": "purchases", "ViewContent": "views"}
MAX_ID_LENGTH = 100  # a retailer id is at most 100 characters: a longer content id matches no product


class DeliveredEvent(Protocol):
    event_name: str
    payload: bytes


def _quantity(value: Any) -> int:
    if isinstance(value, bool):
        return 1
    if isinstance(value, (int, float)) and value >= 1:
        return int(value)
    return 1


def _products(custom_data: Any, units: bool) -> dict[str, int]:
    """content id -> units (Purchase) or 1 (view) for one event."""
    if not isinstance(custom_data, dict):
        return {}
    found: dict[str, int] = {}
    contents = custom_data.get("contents")
    if isinstance(contents, list):
        for content in contents:
            if isinstance(content, dict) and content.get("id") not in (None, ""):
                key = str(content["id"])
                found[key] = found.get(key, 0) + (_quantity(content.get("quantity")) if units else 1)
    ids = custom_data.get("content_ids")
    if isinstance(ids, list):
        for content_id in ids:
            if content_id not in (None, "") and str(content_id) not in found:
                found[str(content_id)] = 1
    if not units:
        found = dict.fromkeys(found, 1)
    return {k: v for k, v in found.items() if len(k) <= MAX_ID_LENGTH}


def tally(events: Iterable[DeliveredEvent]) -> dict[str, dict[str, int]]:
    """{"purchases": {content_id: units}, "views": {content_id: views}} of the counted events."""
    counts: dict[str, dict[str, int]] = {"purchases": {}, "views": {}}
    for event in events:
        counter = COUNTED_EVENTS.get(event.event_name)
        if counter is None or not event.payload:
            continue
        try:
            payload = orjson.loads(event.payload)
        except orjson.JSONDecodeError:
            continue
        target = counts[counter]
        custom = payload.get("custom_data") if isinstance(payload, dict) else None
        for content_id, amount in _products(custom, counter == "purchases").items():
            target[content_id] = target.get(content_id, 0) + amount
    return counts


def record_counts(conn: Connection, connection_id: int, counts: dict[str, dict[str, int]]) -> None:
    """Add the counts :func:`tally` made of events Meta accepted to the connection's product counts.

    Tallying parses payloads, so it happens before the write transaction, which holds the writer lock.
    """
    ids = set(counts["purchases"]) | set(counts["views"])
    if not ids:
        return
    now = now_ms()
    rows = [{"connection_id": connection_id, "content_id": content_id,
             "purchases": counts["purchases"].get(content_id, 0), "views": counts["views"].get(content_id, 0),
             "updated_at": now} for content_id in sorted(ids)]
    upsert(conn, product_activity, rows, ("connection_id", "content_id"), lambda excluded: {
        "purchases": product_activity.c.purchases + excluded.purchases,
        "views": product_activity.c.views + excluded.views, "updated_at": excluded.updated_at})
