"""Request bodies from stored payloads, and the send-time check of Meta's event time window.

Bodies are assembled by concatenating the stored JSON bytes of each event: the outbox keeps exactly
what Meta receives (see :mod:`metabridge.store.schema`), so a 1,000-event request is built without
parsing or re-encoding anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from metabridge.events.batching import PARTNER_AGENT
from metabridge.events.errors import FieldError
from metabridge.events.rules import DAY_SECONDS, DEFAULT_MAX_AGE_DAYS, MAX_AGE_DAYS

__all__ = ["build_body", "time_window_error"]

_PREFIX = b'{"data":['
_SUFFIX = b'],"partner_agent":' + orjson.dumps(PARTNER_AGENT)


def build_body(payloads: Sequence[bytes], test_event_code: str | None = None) -> bytes:
    """``{"data":[...],"partner_agent":"metabridge"[,"test_event_code":...]}`` as bytes."""
    parts = [_PREFIX, b",".join(payloads), _SUFFIX]
    if test_event_code:
        parts.append(b',"test_event_code":' + orjson.dumps(test_event_code))
    parts.append(b"}")
    return b"".join(parts)


def time_window_error(event_time_s: int, payload: bytes, now_s: int) -> FieldError | None:
    """Why Meta would reject this event for its age now (7 days; 62 for physical_store), else ``None``.

    An event can pass the check at ingest and fail it later, after waiting for a paused connection or
    through retries. Sending it would make Meta reject the whole request (100/2804003), so the worker
    marks it invalid instead. The payload is parsed only for events older than the shortest window,
    which keeps the common case free of JSON parsing.
    """
    age = now_s - event_time_s
    if age <= DEFAULT_MAX_AGE_DAYS * DAY_SECONDS:
        return None
    action_source = _action_source(payload)
    max_days = MAX_AGE_DAYS.get(action_source, DEFAULT_MAX_AGE_DAYS)
    if age <= max_days * DAY_SECONDS:
        return None
    source = action_source or "this action source"
    return FieldError("timestamp", f"event_time is more than {max_days} days old; Meta rejects it for {source}")


def _action_source(payload: bytes) -> str:
    try:
        event: Any = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return ""
    value = event.get("action_source") if isinstance(event, dict) else None
    return value if isinstance(value, str) else ""
