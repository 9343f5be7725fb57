"""Delivery happy paths against the real sandbox: end to end, batch size, linger, test events, the loop."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import update

from delivery_support import DeliveryEnv, purchase
from metabridge.delivery import DeliveryWorker, build_body
from metabridge.store.connections import update_connection
from metabridge.store.schema import events
from metabridge.timeutil import now_ms


def test_events_are_delivered_end_to_end_with_meta_trace_ids(env: DeliveryEnv, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    connection = env.connection("111", token="secret-token-111")
    ids = env.enqueue(connection, [purchase(n) for n in range(3)])
    worker = env.worker()

    assert worker.run_once() == 3

    received = env.sandbox_events("111")
    assert [e["event"]["event_id"] for e in received] == ids
    assert {e["partner_agent"] for e in received} == {"metabridge"}
    assert all(e["test_event_code"] is None for e in received)
    [sandbox_request] = env.sandbox_requests()
    assert sandbox_request["status"] == 200 and sandbox_request["events_count"] == 3
    rows = env.rows(connection.id)
    for event_id in ids:
        row = rows[event_id]
        assert row.status == "sent"
        assert row.fbtrace_id == sandbox_request["fbtrace_id"]
        assert row.attempts == 1 and row.payload is None and row.lease_owner is None and row.sent_at
    [request] = env.requests()
    assert request.ok and request.events_received == 3 and request.http_status == 200
    assert request.fbtrace_id == sandbox_request["fbtrace_id"] and request.worker == worker.worker_id
    assert {row.request_id for row in rows.values()} == {request.id}
    # Nothing is sent twice, and the token never reaches the logs.
    assert worker.run_once() == 0
    assert len(env.sandbox_requests()) == 1
    assert "secret-token-111" not in caplog.text
    assert f"connection={connection.id} events=3 outcome=sent" in caplog.text


def test_a_request_never_holds_more_than_1000_events(env: DeliveryEnv) -> None:
    connection = env.connection("111")
    ids = env.enqueue(connection, [purchase(n) for n in range(2_500)])
    worker = env.worker()

    handled = [worker.run_once() for _ in range(4)]

    assert handled == [1_000, 1_000, 500, 0]
    assert [r["events_count"] for r in env.sandbox_requests()] == [1_000, 1_000, 500]
    assert sorted(env.sandbox_event_ids("111")) == sorted(ids)
    assert {row.status for row in env.rows().values()} == {"sent"}
    assert [r.event_count for r in env.requests()] == [1_000, 1_000, 500]


def test_a_lone_event_waits_for_the_linger_time(env: DeliveryEnv) -> None:
    connection = env.connection("111")
    received = now_ms()
    env.enqueue(connection, [purchase(1)], received_ms=received)
    worker = env.worker(batch_linger_ms=5_000)

    assert worker.run_once(now_ms=received + 1_000) == 0
    assert env.sandbox_requests() == []
    assert worker.run_once(now_ms=received + 5_001) == 1
    assert env.sandbox_event_ids("111") == ["ord-1"]


def test_a_full_batch_does_not_wait_for_the_linger_time(env: DeliveryEnv) -> None:
    connection = env.connection("111")
    received = now_ms()
    env.enqueue(connection, [purchase(n) for n in range(1_001)], received_ms=received)
    worker = env.worker(batch_linger_ms=60_000)

    assert worker.run_once(now_ms=received + 10) == 1_000
    assert worker.run_once(now_ms=received + 20) == 0  # one left over: it lingers
    assert worker.run_once(now_ms=received + 60_001) == 1


def test_test_event_code_routes_events_to_test_events(env: DeliveryEnv) -> None:
    connection = env.connection("111", test_event_code="TEST4242")
    ids = env.enqueue(connection, [purchase(1), purchase(2)])

    assert env.worker().run_once() == 2

    test_events = env.sandbox_events("111", test=True)
    assert [e["event"]["event_id"] for e in test_events] == ids
    assert {e["test_event_code"] for e in test_events} == {"TEST4242"}
    assert env.sandbox_events("111") == []


def test_app_secret_proof_is_sent_when_the_connection_has_a_secret(env: DeliveryEnv) -> None:
    env.control.put("/_sandbox/app-secret", json={"app_secret": "shh"}).raise_for_status()
    with_secret = env.connection("111", token="t1", app_secret="shh")
    without = env.connection("222", token="t2")
    env.enqueue(with_secret, [purchase(1)])
    env.enqueue(without, [purchase(2)])

    env.worker().run_once()

    assert env.sandbox_event_ids("111") == ["ord-1"]
    assert env.rows(with_secret.id)["ord-1"].status == "sent"
    # Without the proof Meta rejects the request itself (100, GraphMethodException): bisecting cannot help,
    # so the connection is paused for a person and its events wait, pending, instead of being marked invalid.
    assert env.sandbox_event_ids("222") == []
    row = env.rows(without.id)["ord-2"]
    assert row.status == "pending" and row.attempts == 0
    paused = env.stored_connection(without.id)
    assert paused.status == "paused" and "appsecret_proof" in (paused.paused_reason or "")
    assert len(env.sandbox_requests()) == 2  # one request each, no bisection

    with env.engine.begin() as conn:
        update_connection(conn, env.box, without.id, app_secret="shh")
    assert env.worker().run_once() == 1
    assert env.sandbox_event_ids("222") == ["ord-2"]


def test_connections_are_served_in_one_pass(env: DeliveryEnv) -> None:
    first, second = env.connection("111", token="a"), env.connection("222", token="b")
    env.enqueue(first, [purchase(1)])
    env.enqueue(second, [purchase(2), purchase(3)])

    assert env.worker().run_once() == 3
    assert env.sandbox_event_ids("111") == ["ord-1"]
    assert env.sandbox_event_ids("222") == ["ord-2", "ord-3"]


def test_build_body_concatenates_stored_payloads() -> None:
    body = build_body([b'{"a":1}', b'{"b":2}'], "T1")
    assert body == b'{"data":[{"a":1},{"b":2}],"partner_agent":"metabridge","test_event_code":"T1"}'
    assert build_body([b"{}"]) == b'{"data":[{}],"partner_agent":"metabridge"}'


def test_lease_must_outlive_twice_the_http_timeout(env: DeliveryEnv) -> None:
    with pytest.raises(ValueError, match="lease_seconds"):
        env.worker(timeout=30.0, lease_seconds=60)
    env.worker(timeout=29.0, lease_seconds=60)


def test_run_loop_delivers_until_stopped(env: DeliveryEnv) -> None:
    connection = env.connection("111")
    worker = env.worker()
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), kwargs={"idle_sleep": 0.02})
    thread.start()
    try:
        ids = env.enqueue(connection, [purchase(n) for n in range(5)])
        deadline = time.monotonic() + 10
        while len(env.sandbox_event_ids("111")) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert sorted(env.sandbox_event_ids("111")) == sorted(ids)


def test_shutdown_waits_for_the_request_in_flight(env: DeliveryEnv) -> None:
    connection = env.connection("111")
    env.enqueue(connection, [purchase(1)])
    env.fault(delay_ms=1_000)  # the request is slow: stop arrives while it is in flight
    worker = env.worker()
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    deadline = time.monotonic() + 10
    while env.rows()["ord-1"].lease_owner is None and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    thread.join(timeout=10)

    assert not thread.is_alive()
    row = env.rows()["ord-1"]
    assert row.status == "sent" and row.lease_owner is None
    assert env.sandbox_event_ids("111") == ["ord-1"]


def test_shutdown_releases_a_batch_claimed_but_not_sent(env: DeliveryEnv) -> None:
    connection = env.connection("111")
    env.enqueue(connection, [purchase(1), purchase(2)])
    worker = env.worker()
    stop = threading.Event()

    # Stop arrives exactly while the claim statement runs (a real SQLAlchemy hook, no mock).
    def stop_on_claim(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
        if statement.lstrip().upper().startswith("UPDATE EVENTS SET ATTEMPTS") and "RETURNING" in statement:
            claims_seen.append(statement)
            stop.set()

    claims_seen: list[str] = []
    sa_event.listen(env.engine, "after_cursor_execute", stop_on_claim)
    safety = threading.Timer(10, stop.set)  # never hang the suite if the hook stops matching
    safety.start()
    try:
        worker.run(stop)
    finally:
        safety.cancel()
        sa_event.remove(env.engine, "after_cursor_execute", stop_on_claim)

    assert len(claims_seen) == 1
    rows = env.rows()
    for event_id in ("ord-1", "ord-2"):
        assert rows[event_id].status == "pending"
        assert rows[event_id].attempts == 0  # the attempt is not counted
        assert rows[event_id].lease_owner is None and rows[event_id].lease_expires_at is None
    assert env.sandbox_requests() == []
    # They go out with the next worker.
    assert env.worker().run_once() == 2


def test_lease_is_renewed_when_too_little_is_left_for_a_request(env: DeliveryEnv) -> None:
    """Lease 4 s, HTTP timeout 1.5 s: after a 1.2 s request 2.8 s is left (< 3 s), so it must be renewed."""
    connection = env.connection("111")
    env.enqueue(connection, [purchase(n) for n in range(4)])
    with env.engine.begin() as conn:  # one bad event forces several requests (bisection)
        conn.execute(update(events).where(events.c.event_id == "ord-3").values(payload=b'{"event_name":"Purchase"}'))
    env.fault(delay_ms=1_200)  # first request: leaves 2.8 s of lease
    env.fault(delay_ms=500)  # second request: slow enough for the watcher to see the renewed lease
    worker = env.worker(timeout=1.5, lease_seconds=4)
    leases: set[int] = set()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            row = env.rows()["ord-0"]
            if row.lease_expires_at is not None:
                leases.add(row.lease_expires_at)
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        assert worker.run_once() == 4
    finally:
        done.set()
        watcher.join()

    assert len(leases) >= 2, leases  # claimed, then renewed
    rows = env.rows()
    assert rows["ord-3"].status == "invalid"
    assert {rows[f"ord-{n}"].status for n in (0, 1, 2)} == {"sent"}


def test_worker_ids_are_unique_and_short(env: DeliveryEnv) -> None:
    a, b = env.worker(), env.worker()
    assert a.worker_id != b.worker_id
    assert len(a.worker_id) <= 64
    assert DeliveryWorker(env.engine, env.settings, env.box, env.graph(), "w-1").worker_id == "w-1"
