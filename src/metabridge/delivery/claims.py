"""Every statement the delivery worker runs on the ``events`` outbox, in one module.

Why one module: the correctness of delivery rests on a handful of row-level rules that must hold on
SQLite (one file, writes serialized by ``BEGIN IMMEDIATE``) and on PostgreSQL (many worker processes):

- a pending row is *leased* to one worker at a time: ``lease_owner`` + ``lease_expires_at``; a lease
  that expired (crashed worker) makes the row claimable again;
- claiming is one ``UPDATE ... WHERE id IN (SELECT ... LIMIT n [FOR UPDATE SKIP LOCKED]) RETURNING``
  statement, so two workers never claim the same row and never wait for each other on PostgreSQL;
- every completion (sent, retry, invalid, failed, release, lease renewal) only touches rows *still
  leased by the caller* (``lease_owner = :me AND status = 'pending'``): a worker that lost its lease can
  never overwrite the outcome of the worker that took the rows over.

Times are integer milliseconds (see :mod:`metabridge.store.schema`). Functions take an open
``Connection``; the caller owns the transaction (claim and completions are short, separate
transactions: no transaction is ever held open across an HTTP call).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger, Connection, and_, any_, bindparam, func, insert, literal, or_, select, union_all, update,
)
from sqlalchemy.dialects import postgresql

from metabridge.store.schema import connections, delivery_requests, events

__all__ = [
    "BATCH_LIMIT",
    "ClaimedEvent",
    "due_connections",
    "claim_batch",
    "renew_lease",
    "mark_sent",
    "retry_later",
    "mark_invalid",
    "mark_failed",
    "release",
    "record_request",
]

#: Meta accepts at most 1,000 events per request (D-USE); a claim never takes more.
BATCH_LIMIT = 1_000
#: ids per ``IN (...)`` on SQLite: far under its bound-parameter limit.
_CHUNK = 500


class ClaimedEvent(NamedTuple):
    """One pending event leased to this worker, with what is needed to send it and judge its age.

    A named tuple: a claim builds a thousand of them from the rows as they come back.
    """

    id: int
    event_id: str
    event_name: str
    event_time: int  # seconds, as sent to Meta
    received_at: int  # ms
    attempts: int  # including the attempt this claim counts
    payload: bytes
    last_error: Any = None  # ``detail`` of the previous failed attempt, reported if the event fails


def _chunks(conn: Connection, ids: Sequence[int]) -> Iterator[list[int]]:
    """``ids`` in pieces for ``IN (...)`` on SQLite; whole on PostgreSQL, where they go as one array."""
    if conn.dialect.name == "postgresql":
        yield list(ids)
        return
    for start in range(0, len(ids), _CHUNK):
        yield list(ids[start:start + _CHUNK])


def _claimable(now_ms: Any) -> Any:
    """Pending, due, and not leased (or the lease expired: its worker died or lost it)."""
    return and_(events.c.status == "pending", events.c.next_attempt_at <= now_ms, _unleased(now_ms))


def _unleased(now_ms: Any) -> Any:
    return or_(events.c.lease_expires_at.is_(None), events.c.lease_expires_at < now_ms)


def _due_sample() -> Any:
    """(count, oldest received_at, max attempts) over at most one batch of a connection's claimable events.

    Built once (``:connection_id``, ``:now`` bound at each run): the workers run it several times a second.
    """
    sample = (
        select(events.c.received_at, events.c.attempts)
        .where(events.c.connection_id == bindparam("connection_id"), _claimable(bindparam("now")))
        .limit(BATCH_LIMIT)
        .subquery()
    )
    return select(func.count(), func.min(sample.c.received_at), func.max(sample.c.attempts))


_DUE_SAMPLE = _due_sample()


def due_connections(conn: Connection, now_ms: int, linger_ms: int) -> list[int]:
    """Ids of connections with a batch worth sending now, oldest backlog first.

    A connection qualifies when it is ``ok``, not throttled, and its claimable events either fill a
    request (≥ 1,000), or the oldest waited ``linger_ms`` since it was received, or one of them is a due
    retry (attempts > 0: a retry's delay already was its wait). Waiting for a fuller batch costs a
    little latency and saves many small requests against Meta's rate limits.

    Each connection looks at no more than ``BATCH_LIMIT`` of its claimable events (any of them): when
    there are that many it is due anyway, and when there are fewer they are all of them, so the answer
    is the same as over the whole backlog, which a worker behind by a hundred thousand events would
    otherwise read on every pass. (The "oldest" that orders connections is then taken from the sample.)
    """
    ready = select(connections.c.id).where(
        connections.c.status == "ok",
        or_(connections.c.throttled_until.is_(None), connections.c.throttled_until <= now_ms),
    )
    found: list[tuple[int, int]] = []
    for connection_id in conn.execute(ready).scalars().all():
        count, oldest, attempts = conn.execute(_DUE_SAMPLE, {"connection_id": connection_id, "now": now_ms}).one()
        if count and (count >= BATCH_LIMIT or oldest <= now_ms - linger_ms or attempts > 0):
            found.append((oldest, connection_id))
    return [connection_id for _, connection_id in sorted(found)]


def _sqlite_oldest(connection_id: int, now_ms: int, limit: int) -> Any:
    """Ids of the ``limit`` oldest claimable events, read without sorting the whole backlog.

    Claimable events are new ones (``next_attempt_at`` 0) and due retries. ``ix_events_due`` (status,
    connection, next attempt, then row id) holds the new ones in id order, so the first ``limit`` of them
    cost ``limit`` index steps; only the due retries, usually few, are sorted. The oldest ``limit`` of
    all are among the two heads. Ordering every claimable event by id instead made each claim read and
    sort the connection's whole backlog (a claim took 46 ms behind 40,000 events, 20 ms behind 1,000).
    """
    due = (events.c.next_attempt_at == 0, and_(events.c.next_attempt_at > 0, events.c.next_attempt_at <= now_ms))
    heads = [
        select(events.c.id)
        .where(events.c.status == "pending", events.c.connection_id == connection_id, when, _unleased(now_ms))
        .order_by(events.c.id)
        .limit(limit)
        .subquery()
        for when in due
    ]
    both = union_all(*(select(head.c.id) for head in heads)).subquery()
    return select(both.c.id).order_by(both.c.id).limit(limit)


def claim_batch(
    conn: Connection, connection_id: int, worker_id: str, now_ms: int, lease_ms: int, limit: int = BATCH_LIMIT
) -> list[ClaimedEvent]:
    """Lease up to ``limit`` claimable events of a connection (oldest first) and count the attempt.

    PostgreSQL: the inner ``SELECT ... FOR UPDATE SKIP LOCKED`` makes concurrent claimers take disjoint
    rows without blocking; a row another worker claimed and committed meanwhile is re-checked against
    the WHERE clause (lease now in the future) and dropped. SQLite: the engine's ``BEGIN IMMEDIATE``
    serializes writers, so no lock clause is needed, and the oldest rows are picked as the first of two
    sets (see :func:`_sqlite_oldest`).
    """
    limit = max(1, min(limit, BATCH_LIMIT))
    if conn.dialect.name == "sqlite":
        # Writers are serialized, so the picked rows are still claimable: only their ids in the WHERE
        # clause (a repeated claimable test there made SQLite look the rows up through ix_events_due).
        where = events.c.id.in_(_sqlite_oldest(connection_id, now_ms, limit).scalar_subquery())
    else:
        picked = (
            select(events.c.id)
            .where(events.c.connection_id == connection_id, _claimable(now_ms))
            .order_by(events.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        where = and_(events.c.id.in_(picked.scalar_subquery()), _claimable(now_ms))
    statement = (
        update(events)
        .where(where)
        .values(lease_owner=worker_id, lease_expires_at=now_ms + lease_ms, attempts=events.c.attempts + 1)
        .returning(
            events.c.id, events.c.event_id, events.c.event_name, events.c.event_time, events.c.received_at,
            events.c.attempts, events.c.payload, events.c.detail,
        )
    )
    # Rows come in the RETURNING columns' order: unpacked by position (cheaper than by name per row).
    claimed = [
        ClaimedEvent(id_, event_id, name, event_time, received_at, attempts, bytes(payload or b""), detail)
        for id_, event_id, name, event_time, received_at, attempts, payload, detail in conn.execute(statement)
    ]
    claimed.sort()  # RETURNING order is not guaranteed; ``id`` is the first field (and unique)
    return claimed


def _mine(conn: Connection, worker_id: str, ids: Sequence[int]) -> Any:
    """Rows of ``ids`` still leased by ``worker_id``.

    PostgreSQL gets the ids as one array parameter (``id = ANY(...)``): psycopg does not cache the
    parsing of long statements, and parsed one with 500 placeholders anew on every call. The status test
    is written so that no index can serve it (``status || ''``): without statistics SQLite otherwise
    walks ``ix_events_due`` over every pending event of every connection, checking each against the id
    list, instead of looking the ids up by primary key.
    """
    if conn.dialect.name == "postgresql":
        by_id = events.c.id == any_(literal(list(ids), postgresql.ARRAY(BigInteger)))
    else:
        by_id = events.c.id.in_(ids)
    return and_(by_id, events.c.lease_owner == worker_id, events.c.status.concat("") == "pending")


def _update_mine(conn: Connection, worker_id: str, ids: Sequence[int], **values: Any) -> int:
    """Apply ``values`` to the rows of ``ids`` still leased by ``worker_id``; returns how many."""
    changed = 0
    for chunk in _chunks(conn, ids):
        changed += conn.execute(update(events).where(_mine(conn, worker_id, chunk)).values(**values)).rowcount
    return changed


def renew_lease(
    conn: Connection, worker_id: str, ids: Sequence[int], now_ms: int, lease_ms: int
) -> list[int]:
    """Extend this worker's lease on ``ids``; returns the ids it still holds (sorted).

    Safe even after the lease expired: if another worker claimed a row meanwhile its ``lease_owner``
    changed and the row is not returned, so the caller drops it from the request.
    """
    held: list[int] = []
    for chunk in _chunks(conn, ids):
        rows = conn.execute(
            update(events).where(_mine(conn, worker_id, chunk))
            .values(lease_expires_at=now_ms + lease_ms).returning(events.c.id)
        )
        held.extend(row.id for row in rows)
    return sorted(held)


def mark_sent(
    conn: Connection, worker_id: str, ids: Sequence[int], *, request_id: int | None,
    fbtrace_id: str | None, now_ms: int,
) -> int:
    """Meta accepted these events. The payload is dropped: it is no longer needed and saves space."""
    return _update_mine(
        conn, worker_id, ids, status="sent", sent_at=now_ms, request_id=request_id, fbtrace_id=fbtrace_id,
        payload=None, reason=None, detail=None, lease_owner=None, lease_expires_at=None,
    )


def retry_later(
    conn: Connection, worker_id: str, ids: Sequence[int], *, next_attempt_at: int, last_error: Any
) -> int:
    """Keep the events pending, due again at ``next_attempt_at``; ``detail`` remembers the error."""
    return _update_mine(
        conn, worker_id, ids, next_attempt_at=next_attempt_at, detail=last_error,
        lease_owner=None, lease_expires_at=None,
    )


def mark_invalid(conn: Connection, worker_id: str, ids: Sequence[int], *, reason: str, error: Any) -> int:
    """Meta rejects (or would reject) these events: never send them. The payload is kept for inspection."""
    return _update_mine(
        conn, worker_id, ids, status="invalid", reason=reason, detail=error,
        lease_owner=None, lease_expires_at=None,
    )


def mark_failed(conn: Connection, worker_id: str, ids: Sequence[int], *, reason: str, error: Any) -> int:
    """Give up (too old to keep retrying); ``error`` is the last error. The payload is kept for a replay."""
    return _update_mine(
        conn, worker_id, ids, status="failed", reason=reason, detail=error,
        lease_owner=None, lease_expires_at=None,
    )


def release(conn: Connection, worker_id: str, ids: Sequence[int]) -> int:
    """Give the events back without counting the attempt (connection paused, worker shutting down)."""
    return _update_mine(
        conn, worker_id, ids, attempts=events.c.attempts - 1, lease_owner=None, lease_expires_at=None,
    )


def record_request(
    conn: Connection, *, connection_id: int, worker_id: str, started_at: int, finished_at: int,
    event_count: int, ok: bool, http_status: int | None = None, events_received: int | None = None,
    fbtrace_id: str | None = None, error: Any = None,
) -> int:
    """One ``delivery_requests`` row per Graph request (the audit trail behind stats); returns its id."""
    return int(
        conn.execute(
            insert(delivery_requests).values(
                connection_id=connection_id, worker=worker_id[:64], started_at=started_at,
                finished_at=finished_at, event_count=event_count, http_status=http_status, ok=ok,
                events_received=events_received, fbtrace_id=fbtrace_id, error=error,
            ).returning(delivery_requests.c.id)
        ).scalar_one()
    )
