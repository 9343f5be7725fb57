"""Server-side deduplication at ingest (store.outbox), on SQLite and PostgreSQL.

An (event_name, event_id) pair already accepted for delivery (pending or sent) on the connection within
48 hours is stored as ``deduplicated``; anything else about an earlier copy does not block a new one.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from metabridge.config import Settings
from metabridge.events import ConnectionSettings
from metabridge.ingest import ingest
from metabridge.service import Service
from metabridge.store.connections import StoredConnection, create_connection
from metabridge.store.outbox import DEDUP_WINDOW_MS
from metabridge.store.schema import events
from metabridge.timeutil import now_ms

HOUR_MS = 3_600_000


def incoming(event_id: str, name: str = "purchase") -> dict:
    return {"event": name, "event_id": event_id, "timestamp": int(time.time()) - 30, "action_source": "system_generated",
            "user": {"email": f"{event_id}@example.com"}, "properties": {"value": 1, "currency": "EUR"}}


@pytest.fixture
def store(tmp_path: Path, database_url: str) -> Iterator[tuple[Service, StoredConnection]]:
    service = Service.open(Settings(data_dir=tmp_path, database_url=database_url), graph_base_url="http://unused")
    with service.engine.begin() as conn:
        connection = create_connection(conn, service.box, name="shop", settings=ConnectionSettings(pixel_id="42"),
                                       access_token="token")
    yield service, connection
    service.close()


# earlier copy of the same (Purchase, id): its status and age -> is the new one deduplicated?
EARLIER = [
    ("pending", HOUR_MS, True),
    ("sent", DEDUP_WINDOW_MS - HOUR_MS, True),
    ("sent", DEDUP_WINDOW_MS + HOUR_MS, False),  # Meta's window is over: send again
    ("invalid", HOUR_MS, False),  # never delivered
    ("failed", HOUR_MS, False),
    ("skipped", HOUR_MS, False),
    ("deduplicated", HOUR_MS, False),  # a copy of an older one, not an accepted event itself
]


@pytest.mark.parametrize(("status", "age_ms", "deduplicated"), EARLIER)
def test_an_earlier_copy_blocks_a_new_one_only_when_accepted_within_48_hours(store, status, age_ms, deduplicated):
    service, connection = store
    with service.engine.begin() as conn:
        conn.execute(insert(events).values(
            connection_id=connection.id, event_id="ord-1", event_name="Purchase", event_time=0,
            received_at=now_ms() - age_ms, status=status, attempts=0, next_attempt_at=0))
    outcome = ingest(service, connection, [incoming("ord-1")])
    expected = (1, 1, 0) if deduplicated else (1, 0, 1)
    assert (outcome.accepted, outcome.deduplicated, outcome.pending) == expected


def test_the_same_id_under_another_event_name_is_not_a_duplicate(store) -> None:
    service, connection = store
    ingest(service, connection, [incoming("x-1", "purchase")])
    outcome = ingest(service, connection, [incoming("x-1", "add_to_cart"), incoming("x-1", "purchase")])
    assert (outcome.pending, outcome.deduplicated) == (1, 1)


def test_a_large_batch_of_several_names_posted_twice_is_deduplicated_whole(store) -> None:
    service, connection = store
    names = ("purchase", "add_to_cart", "view_item")
    batch = [incoming(f"big-{i}", names[i % 3]) for i in range(1_300)]  # over one IN (...) chunk per name
    first = ingest(service, connection, batch)
    second = ingest(service, connection, batch)
    assert (first.pending, first.deduplicated) == (1_300, 0)
    assert (second.pending, second.deduplicated) == (0, 1_300)
    with service.engine.connect() as conn:
        statuses = Counter(conn.execute(select(events.c.status)).scalars())
    assert statuses == {"pending": 1_300, "deduplicated": 1_300}


def test_ingest_with_a_stale_copy_of_the_connection_stores_nothing(store) -> None:
    from metabridge.ingest import ConnectionChanged
    from metabridge.store.connections import update_connection

    service, connection = store
    assert ingest(service, connection, [incoming("v-1")], verify_current=True).pending == 1
    with service.engine.begin() as conn:
        update_connection(conn, service.box, connection.id, settings=ConnectionSettings(pixel_id="42", matching="strict"))
    with pytest.raises(ConnectionChanged):
        ingest(service, connection, [incoming("v-2")], verify_current=True)
    with service.engine.connect() as conn:
        assert conn.execute(select(events.c.event_id)).scalars().all() == ["v-1"]


def test_every_change_of_a_connection_is_a_new_version_even_within_one_millisecond(store) -> None:
    """Versions only move forward, also when the last one is not behind this clock (a change in the same
    millisecond, or from an API process on a machine whose clock runs ahead)."""
    from sqlalchemy import update

    from metabridge.store.connections import update_connection
    from metabridge.store.schema import connections

    service, connection = store
    ahead = connection.updated_at + 60_000
    with service.engine.begin() as conn:
        conn.execute(update(connections).where(connections.c.id == connection.id).values(updated_at=ahead))
    versions = [ahead]
    for name in ("a", "b"):
        with service.engine.begin() as conn:
            versions.append(update_connection(conn, service.box, connection.id, name=name).updated_at)
    assert versions == [ahead, ahead + 1, ahead + 2]
