"""The events outbox, ingest side: record every accepted event, and answer status and stats questions.

Claiming and completing batches (the worker side) lives in :mod:`metabridge.delivery.claims`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, and_, func, select

from metabridge.events import Decision
from metabridge.store.schema import delivery_requests, events

#: Meta discards a repeated (event_name, event_id) within 48 hours (D-DEDUP); metabridge does the same
#: before sending, so a retrying client cannot double-count.
DEDUP_WINDOW_MS = 48 * 3600 * 1000

#: Statuses that count as "accepted for delivery" for deduplication.
_DEDUP_STATUSES = ("pending", "sent")
_CHUNK = 500  # event ids per IN (...) look-up on SQLite: under its bound-variable limit

#: Columns ``enqueue`` writes, in the order of its rows. Ingest is the hot path of the service, so its two
#: statements are plain SQL run through the driver (no per-row compilation or type processing):
#: ``detail`` is written as JSON text and ``payload`` as the event's JSON bytes.
_COLUMNS = ("connection_id", "event_id", "event_name", "event_time", "received_at", "status", "reason", "detail",
            "payload", "attempts", "next_attempt_at")
_PG_TYPES = ("int", "varchar", "varchar", "bigint", "bigint", "varchar", "varchar", "json", "bytea", "int", "bigint")


@dataclass(frozen=True, slots=True)
class EnqueueResult:
    pending: int
    skipped: int
    deduplicated: int


def _mark(conn: Connection) -> str:
    """The driver's placeholder: ``?`` for sqlite3, ``%s`` for psycopg."""
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def _already_accepted(
    conn: Connection, connection_id: int, keys: Iterable[tuple[str, str]], since_ms: int
) -> set[tuple[str, str]]:
    """The (event_name, event_id) pairs of ``keys`` accepted on the connection since ``since_ms``.

    Indexed look-ups on ``ix_events_dedup`` (connection, name, id), a few per batch rather than one per
    event: PostgreSQL joins the pairs given as two arrays (one statement, a nested loop of index look-ups
    even in the generic plan of a prepared statement; ``event_id = ANY($n)`` there reads every event of
    the name instead), SQLite takes one ``IN (...)`` per event name. Status and age are checked here on
    the few rows found: filtering them in SQL let SQLite's planner pick ``ix_events_received`` and read
    every event of the last 48 hours on each look-up.
    """
    found: set[tuple[str, str]] = set()
    columns = "e.event_name, e.event_id, e.status, e.received_at"
    if _mark(conn) == "%s":  # PostgreSQL
        pairs = list(keys)
        statements = [(
            f"SELECT {columns} FROM {events.name} e JOIN unnest(%s::varchar[], %s::varchar[]) AS k(name, id) "
            "ON e.event_name = k.name AND e.event_id = k.id WHERE e.connection_id = %s",
            ([name for name, _ in pairs], [event_id for _, event_id in pairs], connection_id),
        )]
    else:
        by_name: dict[str, list[str]] = {}
        for name, event_id in keys:
            by_name.setdefault(name, []).append(event_id)
        statements = [
            (f"SELECT {columns} FROM {events.name} e WHERE e.connection_id = ? AND e.event_name = ? "
             f"AND e.event_id IN ({', '.join('?' * len(chunk))})", (connection_id, name, *chunk))
            for name, ids in by_name.items() for chunk in (ids[i:i + _CHUNK] for i in range(0, len(ids), _CHUNK))
        ]
    for sql, params in statements:
        found.update((name, event_id) for name, event_id, status, received_at in conn.exec_driver_sql(sql, params)
                     if status in _DEDUP_STATUSES and received_at >= since_ms)
    return found


def enqueue(conn: Connection, connection_id: int, decisions: Iterable[Decision], received_ms: int) -> EnqueueResult:
    """Store decided events in one transaction (the caller's): pending ones for delivery, skips with reason.

    Decisions with action ``skip`` and reason ``invalid`` are not stored: ingest rejects them to the caller.
    """
    rows: list[tuple[Any, ...]] = []
    to_send: list[Decision] = []
    for d in decisions:
        if d.action == "send" and d.server_event is not None:
            to_send.append(d)
        elif d.reason in ("no_consent", "insufficient_customer_data", "deduplicated"):
            rows.append(_row(connection_id, d, received_ms, "skipped" if d.reason != "deduplicated" else "deduplicated"))
    keys = {(d.event_name or "", d.event_id or "") for d in to_send}
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
        _insert(conn, rows)
    return EnqueueResult(pending=pending, skipped=len(rows) - pending - dedup, deduplicated=dedup)


def _insert(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """All rows in one statement: PostgreSQL gets one array per column (one round trip, however many
    rows; psycopg's ``executemany`` sends a statement per row), SQLite an ``executemany`` (in-process)."""
    names = ", ".join(_COLUMNS)
    if _mark(conn) == "%s":
        arrays = ", ".join(f"%s::{kind}[]" for kind in _PG_TYPES)
        conn.exec_driver_sql(f"INSERT INTO {events.name} ({names}) SELECT * FROM unnest({arrays})",
                             tuple(list(column) for column in zip(*rows)))
    else:
        conn.exec_driver_sql(f"INSERT INTO {events.name} ({names}) VALUES ({', '.join('?' * len(_COLUMNS))})", rows)


def _row(connection_id: int, d: Decision, received_ms: int, status: str) -> tuple[Any, ...]:
    """One row in ``_COLUMNS`` order."""
    event = d.server_event
    detail = orjson.dumps([e.as_dict() for e in d.errors]).decode() if d.errors else None
    return (
        connection_id, d.event_id or "", d.event_name or "",
        event["event_time"] if event else received_ms // 1000, received_ms, status,
        None if status in ("pending", "deduplicated") else d.reason, detail,
        orjson.dumps(event) if status == "pending" else None, 0, 0,
    )


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
