"""The events outbox, ingest side: record every accepted event, and answer status and stats questions.

Claiming and completing batches (the worker side) lives in :mod:`metabridge.delivery.claims`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, and_, func, insert, select, tuple_

from metabridge.events import Decision
from metabridge.store.schema import delivery_requests, events

#: Meta discards a repeated (event_name, event_id) within 48 hours (D-DEDUP); metabridge does the same
#: before sending, so a retrying client cannot double-count.
DEDUP_WINDOW_MS = 48 * 3600 * 1000

#: Statuses that count as "accepted for delivery" for deduplication.
_DEDUP_STATUSES = ("pending", "sent")
_CHUNK = 400  # keys per IN (...) look-up: under SQLite's variable limit


@dataclass(frozen=True, slots=True)
class EnqueueResult:
    pending: int
    skipped: int
    deduplicated: int


def _already_accepted(
    conn: Connection, connection_id: int, keys: Sequence[tuple[str, str]], since_ms: int
) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start:start + _CHUNK]
        rows = conn.execute(
            select(events.c.event_name, events.c.event_id).where(
                events.c.connection_id == connection_id,
                tuple_(events.c.event_name, events.c.event_id).in_(chunk),
                events.c.status.in_(_DEDUP_STATUSES),
                events.c.received_at >= since_ms,
            )
        )
        found.update((row.event_name, row.event_id) for row in rows)
    return found


def enqueue(conn: Connection, connection_id: int, decisions: Iterable[Decision], received_ms: int) -> EnqueueResult:
    """Store decided events in one transaction (the caller's): pending ones for delivery, skips with reason.

    Decisions with action ``skip`` and reason ``invalid`` are not stored: ingest rejects them to the caller.
    """
    rows: list[dict[str, Any]] = []
    to_send: list[Decision] = []
    for d in decisions:
        if d.action == "send" and d.server_event is not None:
            to_send.append(d)
        elif d.reason in ("no_consent", "insufficient_customer_data", "deduplicated"):
            rows.append(_row(connection_id, d, received_ms, "skipped" if d.reason != "deduplicated" else "deduplicated"))
    keys = list({(d.event_name or "", d.event_id or "") for d in to_send})
    seen = _already_accepted(conn, connection_id, keys, received_ms - DEDUP_WINDOW_MS) if keys else set()
    pending = dedup = 0
    for d in to_send:
        key = (d.event_name or "", d.event_id or "")
        if key in seen:
            d.action, d.reason, d.server_event = "skip", "deduplicated", None
            rows.append(_row(connection_id, d, received_ms, "deduplicated"))
            dedup += 1
        else:
            seen.add(key)
            rows.append(_row(connection_id, d, received_ms, "pending"))
            pending += 1
    if rows:
        conn.execute(insert(events), rows)
    return EnqueueResult(pending=pending, skipped=len(rows) - pending - dedup, deduplicated=dedup)


def _row(connection_id: int, d: Decision, received_ms: int, status: str) -> dict[str, Any]:
    event = d.server_event
    return {
        "connection_id": connection_id,
        "event_id": d.event_id or "",
        "event_name": d.event_name or "",
        "event_time": event["event_time"] if event else received_ms // 1000,
        "received_at": received_ms,
        "status": status,
        "reason": None if status in ("pending", "deduplicated") else d.reason,
        "detail": [e.as_dict() for e in d.errors] or None,
        "payload": orjson.dumps(event) if status == "pending" else None,
        "attempts": 0,
        "next_attempt_at": 0,
    }


def event_records(conn: Connection, connection_id: int, event_id: str) -> list[dict[str, Any]]:
    """Every stored copy of ``event_id`` on the connection, newest first."""
    rows = conn.execute(
        select(
            events.c.event_id, events.c.event_name, events.c.status, events.c.reason, events.c.detail,
            events.c.attempts, events.c.received_at, events.c.sent_at, events.c.fbtrace_id,
            events.c.next_attempt_at, events.c.event_time,
        )
        .where(events.c.connection_id == connection_id, events.c.event_id == event_id)
        .order_by(events.c.id.desc())
    )
    return [dict(row._mapping) for row in rows]


def connection_stats(conn: Connection, connection_id: int, since_ms: int, until_ms: int) -> dict[str, Any]:
    """Counts by status and by event name received in [since, until), plus Meta's view of the same window."""
    window = and_(
        events.c.connection_id == connection_id, events.c.received_at >= since_ms, events.c.received_at < until_ms
    )
    by_status: dict[str, int] = {}
    by_name: dict[str, dict[str, int]] = {}
    for row in conn.execute(
        select(events.c.event_name, events.c.status, func.count().label("n"))
        .where(window).group_by(events.c.event_name, events.c.status)
    ):
        by_status[row.status] = by_status.get(row.status, 0) + row.n
        by_name.setdefault(row.event_name, {})[row.status] = row.n
    skipped_by_reason = {
        row.reason: row.n
        for row in conn.execute(
            select(events.c.reason, func.count().label("n"))
            .where(window, events.c.status.in_(("skipped", "invalid", "failed")))
            .group_by(events.c.reason)
        )
    }
    req_window = and_(
        delivery_requests.c.connection_id == connection_id,
        delivery_requests.c.started_at >= since_ms,
        delivery_requests.c.started_at < until_ms,
    )
    totals = conn.execute(
        select(
            func.coalesce(func.sum(delivery_requests.c.events_received), 0).label("received"),
            func.count().label("requests"),
        ).where(req_window)
    ).one()
    last_error = conn.execute(
        select(delivery_requests.c.finished_at, delivery_requests.c.error, delivery_requests.c.http_status)
        .where(delivery_requests.c.connection_id == connection_id, delivery_requests.c.ok.is_(False))
        .order_by(delivery_requests.c.id.desc()).limit(1)
    ).first()
    return {
        "by_status": by_status,
        "by_event_name": by_name,
        "by_reason": skipped_by_reason,
        "meta_events_received": int(totals.received),
        "requests": int(totals.requests),
        "last_error": (
            {"at": last_error.finished_at, "http_status": last_error.http_status, "error": last_error.error}
            if last_error else None
        ),
    }


def count_pending(conn: Connection, connection_id: int) -> int:
    return conn.execute(
        select(func.count()).where(events.c.connection_id == connection_id, events.c.status == "pending")
    ).scalar_one()


def purge_finished(conn: Connection, older_than_ms: int) -> int:
    """Delete events that are done (anything but pending) and were received before ``older_than_ms``."""
    from sqlalchemy import delete

    result = conn.execute(
        delete(events).where(events.c.status != "pending", events.c.received_at < older_than_ms)
    )
    conn.execute(delete(delivery_requests).where(delivery_requests.c.started_at < older_than_ms))
    return result.rowcount or 0
