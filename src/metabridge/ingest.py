"""Accept events for a connection: decide each one, store what is accepted, report what is rejected.

Shared by ``POST /v1/connections/{id}/events`` and ``metabridge events import``. An event is *accepted*
once it is committed to the outbox (pending for delivery, or recorded as skipped/deduplicated with its
reason); an event that is malformed or that Meta would reject is *rejected* back to the caller with
the field and the rule, and the rest of the request is still accepted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, bindparam, select

from metabridge.events import Decision, FieldError
from metabridge.records import Record, UnreadableRecord
from metabridge.service import Service
from metabridge.store.connections import StoredConnection
from metabridge.store.outbox import enqueue
from metabridge.store.schema import connections
from metabridge.timeutil import now_ms


@dataclass(slots=True)
class IngestOutcome:
    accepted: int = 0
    pending: int = 0
    skipped: int = 0
    deduplicated: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def add(self, other: IngestOutcome) -> None:
        self.accepted += other.accepted
        self.pending += other.pending
        self.skipped += other.skipped
        self.deduplicated += other.deduplicated
        self.rejected.extend(other.rejected)


def decide(service: Service, connection: StoredConnection, records: Iterable[Record], *, start_index: int = 0,
           received_ms: int | None = None) -> tuple[list[Decision], list[dict[str, Any]]]:
    """Run records through the connection's pipeline: (decisions to store, rejections to report)."""
    pipeline = service.pipeline(connection)
    received = received_ms if received_ms is not None else now_ms()
    keep: list[Decision] = []
    rejected: list[dict[str, Any]] = []
    for offset, record in enumerate(records):
        index = start_index + offset
        if isinstance(record, UnreadableRecord):
            rejected.append({"index": index, "event_id": None,
                             "errors": [FieldError("event", record.message).as_dict()]})
            continue
        decision = pipeline.process(record, index=index, now_ms=received, received_ms=received)
        if decision.reason == "invalid":
            rejected.append({"index": index, "event_id": decision.event_id,
                             "errors": [e.as_dict() for e in decision.errors]})
        else:
            keep.append(decision)
    return keep, rejected


class ConnectionChanged(Exception):
    """The connection's settings changed, or it was deleted, after the copy given to :func:`ingest`."""


_VERSION = select(connections.c.updated_at).where(connections.c.id == bindparam("id"))


def connection_version(conn: Connection, connection_id: int) -> int | None:
    """``updated_at`` of the connection (bumped by every change of its settings); None once deleted."""
    return conn.execute(_VERSION, {"id": connection_id}).scalar_one_or_none()


def ingest(
    service: Service, connection: StoredConnection, records: Iterable[Record], *, start_index: int = 0,
    verify_current: bool = False,
) -> IngestOutcome:
    """Decide and commit one chunk of records; returns only after the accepted ones are durable.

    ``verify_current``: ``connection`` is a copy kept from an earlier call; the write transaction checks
    that it is still current (one indexed read instead of a transaction of its own before deciding) and
    raises :class:`ConnectionChanged`, storing nothing, when it is not.
    """
    received = now_ms()
    keep, rejected = decide(service, connection, records, start_index=start_index, received_ms=received)
    with service.engine.begin() as conn:
        if verify_current and connection_version(conn, connection.id) != connection.updated_at:
            raise ConnectionChanged(connection.id)
        stored = enqueue(conn, connection.id, keep, received)
    return IngestOutcome(
        accepted=len(keep), pending=stored.pending, skipped=stored.skipped,
        deduplicated=stored.deduplicated, rejected=rejected,
    )
