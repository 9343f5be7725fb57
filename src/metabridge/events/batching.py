"""Conversions API request bodies: at most 1,000 events each (D-USE)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import orjson

MAX_EVENTS_PER_REQUEST = 1_000

#: Meta asks partners to identify themselves in every request (D-BP, ``partner_agent``).
PARTNER_AGENT = "metabridge"


def request_body(events: Sequence[dict[str, Any]], *, test_event_code: str | None = None) -> dict[str, Any]:
    """One request body; ``data`` is a JSON array, which Meta accepts alongside form encoding."""
    if len(events) > MAX_EVENTS_PER_REQUEST:
        raise ValueError(f"a request holds at most {MAX_EVENTS_PER_REQUEST} events, got {len(events)}")
    body: dict[str, Any] = {"data": list(events), "partner_agent": PARTNER_AGENT}
    if test_event_code:
        body["test_event_code"] = test_event_code
    return body


def batched_bodies(
    events: Iterable[dict[str, Any]],
    *,
    test_event_code: str | None = None,
    size: int = MAX_EVENTS_PER_REQUEST,
) -> Iterator[dict[str, Any]]:
    """Request bodies of ``size`` events (the last one shorter), in order."""
    batch: list[dict[str, Any]] = []
    for event in events:
        batch.append(event)
        if len(batch) == size:
            yield request_body(batch, test_event_code=test_event_code)
            batch = []
    if batch:
        yield request_body(batch, test_event_code=test_event_code)


def encode_body(body: dict[str, Any]) -> bytes:
    """The exact bytes sent to Meta."""
    return orjson.dumps(body)
