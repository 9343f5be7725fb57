"""The outbox statements workers rely on (``metabridge.delivery.claims``), on a real SQLite file database."""

from __future__ import annotations

from sqlalchemy import update

from delivery_support import DeliveryEnv, purchase
from metabridge.delivery import claims
from metabridge.store.connections import pause_connection, throttle_connection
from metabridge.store.schema import connections, events
from metabridge.timeutil import now_ms

LEASE = 60_000


def _due(env: DeliveryEnv, now: int, linger: int = 0) -> list[int]:
    with env.engine.begin() as conn:
        return claims.due_connections(conn, now, linger)


def _claim(env: DeliveryEnv, connection_id: int, worker: str, now: int, lease: int = LEASE, limit: int = 1_000):
    with env.engine.begin() as conn:
        return claims.claim_batch(conn, connection_id, worker, now, lease, limit)


def test_due_connections_skips_paused_throttled_leased_and_future_work(env: DeliveryEnv) -> None:
    now = now_ms()
    paused, throttled, leased, later, ready = (env.connection(str(n), token=f"t{n}") for n in range(101, 106))
    for connection in (paused, throttled, leased, later, ready):
        env.enqueue(connection, [purchase(connection.id)], received_ms=now - 10_000)
    with env.engine.begin() as conn:
        pause_connection(conn, paused.id, "token revoked")
        throttle_connection(conn, throttled.id, now + 5_000)
        conn.execute(update(events).where(events.c.connection_id == later.id).values(next_attempt_at=now + 5_000))
    _claim(env, leased.id, "other-worker", now)

    assert _due(env, now) == [ready.id]
    # Once the throttle, the retry delay and the lease have passed, they are due again (paused stays out).
    assert sorted(_due(env, now + LEASE + 1)) == sorted([throttled.id, leased.id, later.id, ready.id])


def test_due_connections_linger_full_batch_and_due_retries(env: DeliveryEnv) -> None:
    now = now_ms()
    lone, full, retry = env.connection("1", token="a"), env.connection("2", token="b"), env.connection("3", token="c")
    env.enqueue(lone, [purchase(1)], received_ms=now)
    env.enqueue(full, [purchase(n) for n in range(1_000)], received_ms=now)
    env.enqueue(retry, [purchase(1)], received_ms=now)
    with env.engine.begin() as conn:
        conn.execute(update(events).where(events.c.connection_id == retry.id).values(attempts=1))

    assert sorted(_due(env, now + 10, linger=1_000)) == [full.id, retry.id]
    assert sorted(_due(env, now + 1_000, linger=1_000)) == [lone.id, full.id, retry.id]


def test_due_connections_orders_by_oldest_backlog(env: DeliveryEnv) -> None:
    now = now_ms()
    newer, older = env.connection("1", token="a"), env.connection("2", token="b")
    env.enqueue(newer, [purchase(1)], received_ms=now - 1_000)
    env.enqueue(older, [purchase(2)], received_ms=now - 5_000)
    assert _due(env, now) == [older.id, newer.id]


def test_claims_are_disjoint_ordered_and_count_the_attempt(env: DeliveryEnv) -> None:
    connection = env.connection("111")
    env.enqueue(connection, [purchase(n) for n in range(5)])
    now = now_ms()

    first = _claim(env, connection.id, "w1", now, limit=3)
    second = _claim(env, connection.id, "w2", now, limit=3)
    third = _claim(env, connection.id, "w3", now)

    assert [e.event_id for e in first] == ["ord-0", "ord-1", "ord-2"]
    assert [e.event_id for e in second] == ["ord-3", "ord-4"]
    assert third == []
    assert {e.attempts for e in first + second} == {1}
    assert first[0].payload.startswith(b"{") and first[0].event_name == "Purchase"
    rows = env.rows()
    assert rows["ord-0"].lease_owner == "w1" and rows["ord-0"].lease_expires_at == now + LEASE
    assert rows["ord-4"].lease_owner == "w2"


def test_an_expired_lease_is_claimable_and_the_old_owner_can_no_longer_complete(env: DeliveryEnv) -> None:
    connection = env.connection("111")
    env.enqueue(connection, [purchase(1)])
    now = now_ms()
    [mine] = _claim(env, connection.id, "crashed", now, lease=1_000)
    assert _claim(env, connection.id, "other", now + 500) == []  # still leased

    [taken] = _claim(env, connection.id, "other", now + 1_001)
    assert taken.id == mine.id and taken.attempts == 2

    with env.engine.begin() as conn:
        assert claims.mark_sent(conn, "crashed", [mine.id], request_id=None, fbtrace_id="x", now_ms=now) == 0
        assert claims.retry_later(conn, "crashed", [mine.id], next_attempt_at=now, last_error=None) == 0
        assert claims.mark_invalid(conn, "crashed", [mine.id], reason="r", error=None) == 0
        assert claims.mark_failed(conn, "crashed", [mine.id], reason="r", error=None) == 0
        assert claims.release(conn, "crashed", [mine.id]) == 0
        assert claims.renew_lease(conn, "crashed", [mine.id], now, LEASE) == []
    row = env.rows()["ord-1"]
    assert row.status == "pending" and row.lease_owner == "other" and row.attempts == 2

    with env.engine.begin() as conn:
        assert claims.renew_lease(conn, "other", [mine.id], now + 2_000, LEASE) == [mine.id]
        assert claims.mark_sent(conn, "other", [mine.id], request_id=7, fbtrace_id="trace", now_ms=now) == 1
    row = env.rows()["ord-1"]
    assert row.status == "sent" and row.fbtrace_id == "trace" and row.request_id == 7
    assert row.payload is None and row.lease_owner is None and row.lease_expires_at is None


def test_completions_set_status_detail_and_clear_the_lease(env: DeliveryEnv) -> None:
    connection = env.connection("111")
    env.enqueue(connection, [purchase(n) for n in range(4)])
    now = now_ms()
    claimed = _claim(env, connection.id, "w", now)
    a, b, c, d = (e.id for e in claimed)
    with env.engine.begin() as conn:
        assert claims.retry_later(conn, "w", [a], next_attempt_at=now + 9, last_error={"code": 2}) == 1
        assert claims.mark_invalid(conn, "w", [b], reason="rejected_by_meta", error={"code": 100}) == 1
        assert claims.mark_failed(conn, "w", [c], reason="max_age_exceeded", error={"code": 1}) == 1
        assert claims.release(conn, "w", [d]) == 1
    rows = {row.id: row for row in env.rows().values()}
    assert (rows[a].status, rows[a].next_attempt_at, rows[a].detail, rows[a].attempts) == ("pending", now + 9, {"code": 2}, 1)
    assert (rows[b].status, rows[b].reason, rows[b].detail) == ("invalid", "rejected_by_meta", {"code": 100})
    assert (rows[c].status, rows[c].reason, rows[c].detail) == ("failed", "max_age_exceeded", {"code": 1})
    assert (rows[d].status, rows[d].attempts) == ("pending", 0)  # released: attempt not counted
    assert all(row.lease_owner is None and row.lease_expires_at is None for row in rows.values())
    # A retried event carries its last error into the next claim.
    [again] = _claim(env, connection.id, "w2", now + 10, limit=1)
    assert again.id == a and again.last_error == {"code": 2}


def test_record_request_returns_the_row_id(env: DeliveryEnv) -> None:
    connection = env.connection("111")
    with env.engine.begin() as conn:
        first = claims.record_request(
            conn, connection_id=connection.id, worker_id="w" * 100, started_at=1, finished_at=2, event_count=3,
            ok=False, http_status=500, fbtrace_id="f", error={"code": 1},
        )
        second = claims.record_request(
            conn, connection_id=connection.id, worker_id="w", started_at=3, finished_at=4, event_count=3,
            ok=True, http_status=200, events_received=3,
        )
    assert second > first
    recorded = env.requests()
    assert [(r.id, r.ok, r.error) for r in recorded] == [(first, False, {"code": 1}), (second, True, None)]
    assert recorded[0].worker == "w" * 64


def test_throttled_connection_is_not_claimed_by_the_worker(env: DeliveryEnv) -> None:
    """The worker re-checks the connection when it claims: a throttle set meanwhile is honoured."""
    connection = env.connection("111")
    env.enqueue(connection, [purchase(1)])
    with env.engine.begin() as conn:
        conn.execute(update(connections).values(throttled_until=now_ms() + 60_000))
    assert env.worker().run_once() == 0
    assert env.sandbox_requests() == []
