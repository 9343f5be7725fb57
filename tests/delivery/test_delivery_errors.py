"""Delivery failure handling against the real sandbox: retries, rate limits, bisection, auth, age limits."""

from __future__ import annotations

import logging
from typing import Any

import orjson
import pytest
from sqlalchemy import update

from delivery_support import DAY_MS, HOUR_MS, DeliveryEnv, purchase
from metabridge.delivery import REASON_MAX_AGE, REASON_REJECTED, REASON_TOO_OLD, DeliveryWorker
from metabridge.graph import GraphClient
from metabridge.store.connections import update_connection
from metabridge.store.schema import events
from metabridge.timeutil import now_ms

LATER_MS = 10 * 60_000  # beyond any backoff the test settings allow (retry_max_seconds=5)


@pytest.mark.parametrize(
    ("fault", "error_class"),
    [
        pytest.param({"error": {"code": 1, "http_status": 500}}, "transient", id="code-1-http-500"),
        pytest.param({"error": {"code": 2}}, "transient", id="code-2-http-503"),
        pytest.param({"error": {"code": 21009}}, "transient", id="code-21009"),
        pytest.param({"error": {"code": 12345, "http_status": 400}}, "unknown", id="unknown-code"),
        pytest.param({"delay_ms": 1_500}, "transient", id="timeout"),
    ],
)
def test_transient_errors_are_retried_with_backoff_then_delivered(
    env: DeliveryEnv, fault: dict[str, Any], error_class: str
) -> None:
    connection = env.connection("111")
    ids = env.enqueue(connection, [purchase(1), purchase(2)])
    env.fault(count=2, **fault)
    worker = env.worker(timeout=0.5)

    before = now_ms()
    assert worker.run_once() == 2
    after = now_ms()
    for row in env.rows().values():
        assert row.status == "pending" and row.attempts == 1 and row.lease_owner is None
        assert row.detail["class"] == error_class
        # full jitter: somewhere in [now, now + base * 2**0] (base = 1 s)
        assert before <= row.next_attempt_at <= after + 1_000

    assert worker.run_once(now_ms=now_ms() + LATER_MS) == 2  # second failure
    second = env.rows()["ord-1"]
    assert second.status == "pending" and second.attempts == 2

    assert worker.run_once(now_ms=now_ms() + 2 * LATER_MS) == 2
    rows = env.rows()
    assert {rows[i].status for i in ids} == {"sent"} and rows["ord-1"].attempts == 3
    assert sorted(env.sandbox_event_ids("111")) == sorted(ids)
    requests = env.requests()
    assert [r.ok for r in requests] == [False, False, True]
    assert all(r.error["class"] == error_class for r in requests[:2])


def test_transport_failure_is_retried(env: DeliveryEnv) -> None:
    connection = env.connection("111")
    env.enqueue(connection, [purchase(1)])
    with GraphClient(base_url="http://127.0.0.1:9", timeout=2) as unreachable:  # discard port: refused
        assert DeliveryWorker(env.engine, env.settings, env.box, unreachable).run_once() == 1
    row = env.rows()["ord-1"]
    assert row.status == "pending" and row.detail["class"] == "transient"
    assert "transport failure" in row.detail["message"]
    [request] = env.requests()
    assert not request.ok and request.http_status is None

    assert env.worker().run_once(now_ms=now_ms() + LATER_MS) == 1
    assert env.sandbox_event_ids("111") == ["ord-1"]


@pytest.mark.parametrize("code", [4, 80004])
def test_rate_limit_throttles_the_connection_then_delivers(env: DeliveryEnv, code: int) -> None:
    limited, other = env.connection("111", token="a"), env.connection("222", token="b")
    env.enqueue(limited, [purchase(1)])
    env.enqueue(other, [purchase(2)])
    usage = {"777": [{"type": "ads_management", "call_count": 100, "total_cputime": 20, "total_time": 20,
                      "estimated_time_to_regain_access": 2}]}
    env.fault(
        error={"code": code}, path_contains="/111/events",
        headers={"X-Business-Use-Case-Usage": orjson.dumps(usage).decode()},
    )
    worker = env.worker()

    start = now_ms()
    assert worker.run_once(now_ms=start) == 2
    row = env.rows(limited.id)["ord-1"]
    assert row.status == "pending" and row.detail["class"] == "rate_limited" and row.detail["code"] == code
    # Meta's estimate (2 minutes) wins over the short backoff, for the events and for the connection.
    assert row.next_attempt_at >= start + 120_000
    throttled_until = env.stored_connection(limited.id).throttled_until
    assert throttled_until is not None and throttled_until >= start + 120_000
    assert env.sandbox_event_ids("222") == ["ord-2"]  # other connections keep flowing

    requests_before = len(env.sandbox_requests())
    assert worker.run_once(now_ms=start + 60_000) == 0  # throttled: no request at all
    assert len(env.sandbox_requests()) == requests_before

    assert worker.run_once(now_ms=throttled_until + 1) == 1
    assert env.sandbox_event_ids("111") == ["ord-1"]
    assert env.rows(limited.id)["ord-1"].status == "sent"


def test_rate_limit_without_usage_header_still_waits(env: DeliveryEnv) -> None:
    connection = env.connection("111")
    env.enqueue(connection, [purchase(1)])
    env.fault(error={"code": 613})
    start = now_ms()
    env.worker().run_once(now_ms=start)

    row = env.rows()["ord-1"]
    assert row.next_attempt_at >= start + 1_000  # at least retry_base_seconds, never an immediate retry
    assert (env.stored_connection(connection.id).throttled_until or 0) >= start + 1_000


def _corrupt(env: DeliveryEnv, event_id: str) -> None:
    """Put plaintext customer data into a stored payload, as a bug upstream would."""
    row = env.rows()[event_id]
    payload = orjson.loads(row.payload)
    payload["user_data"]["em"] = "plain@example.com"
    with env.engine.begin() as conn:
        conn.execute(update(events).where(events.c.id == row.id).values(payload=orjson.dumps(payload)))


@pytest.mark.parametrize("bad", [["ord-6"], ["ord-0", "ord-9"], ["ord-3", "ord-4", "ord-5"]])
def test_bisection_isolates_bad_events_and_sends_the_rest(env: DeliveryEnv, bad: list[str]) -> None:
    connection = env.connection("111")
    ids = env.enqueue(connection, [purchase(n) for n in range(10)])
    for event_id in bad:
        _corrupt(env, event_id)

    assert env.worker().run_once() == 10

    good = [i for i in ids if i not in bad]
    assert sorted(env.sandbox_event_ids("111")) == sorted(good)
    rows = env.rows()
    assert {rows[i].status for i in good} == {"sent"}
    sandbox_requests = env.sandbox_requests()
    rejected_traces = {r["fbtrace_id"] for r in sandbox_requests if r["error_code"] == 100}
    for event_id in bad:
        row = rows[event_id]
        assert row.status == "invalid" and row.reason == REASON_REJECTED
        assert row.detail["code"] == 100 and row.detail["user_title"] == "Unhashed Customer Information"
        assert "user_data.em" in row.detail["user_msg"]
        assert row.detail["fbtrace_id"] in rejected_traces
        assert row.payload is not None  # kept for inspection
    # Every Graph request is recorded; bisection stays logarithmic-ish, not one request per event.
    recorded = env.requests()
    assert len(recorded) == len(sandbox_requests) <= 2 * len(bad) * 4 + 1
    assert sum(r.event_count for r in recorded if r.ok) == len(good)


def test_revoked_token_pauses_the_connection_until_a_new_token(
    env: DeliveryEnv, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    connection = env.connection("111", token="old-secret-token")
    ids = env.enqueue(connection, [purchase(1), purchase(2)])
    env.revoke("old-secret-token")
    worker = env.worker()

    assert worker.run_once() == 0  # nothing handled: the events were given back
    paused = env.stored_connection(connection.id)
    assert paused.status == "paused"
    assert paused.paused_reason is not None and "#190/467" in paused.paused_reason
    assert "Error validating access token" in paused.paused_reason
    for event_id in ids:
        row = env.rows()[event_id]
        assert row.status == "pending" and row.attempts == 0 and row.lease_owner is None
    [request] = env.requests()
    assert not request.ok and request.error["code"] == 190

    assert worker.run_once(now_ms=now_ms() + LATER_MS) == 0  # paused: no request
    assert len(env.sandbox_requests()) == 1

    with env.engine.begin() as conn:
        update_connection(conn, env.box, connection.id, access_token="new-secret-token")
    assert env.stored_connection(connection.id).status == "ok"
    assert worker.run_once() == 2
    assert sorted(env.sandbox_event_ids("111")) == sorted(ids)
    assert "old-secret-token" not in caplog.text and "new-secret-token" not in caplog.text


def test_events_past_max_age_fail_with_their_last_error(env: DeliveryEnv) -> None:
    connection = env.connection("111")
    now = now_ms()
    env.enqueue(connection, [purchase(1)], received_ms=now - 25 * HOUR_MS)  # max_event_age_hours = 24
    env.enqueue(connection, [purchase(2)], received_ms=now - 1 * HOUR_MS)
    env.fault(error={"code": 2})

    assert env.worker().run_once() == 2

    rows = env.rows()
    old, young = rows["ord-1"], rows["ord-2"]
    assert old.status == "failed" and old.reason == REASON_MAX_AGE
    assert old.detail["code"] == 2 and old.detail["class"] == "transient"
    assert young.status == "pending" and young.detail["code"] == 2

    assert env.worker().run_once(now_ms=now_ms() + LATER_MS) == 1
    assert env.sandbox_event_ids("111") == ["ord-2"]
    assert env.rows()["ord-1"].status == "failed"


def test_retry_never_scheduled_past_the_max_age(env: DeliveryEnv) -> None:
    connection = env.connection("111")
    now = now_ms()
    received = now - 24 * HOUR_MS + 500  # half a second before its deadline
    env.enqueue(connection, [purchase(1)], received_ms=received)
    env.fault(error={"code": 4})  # rate limited: the delay would be >= 1 s

    env.worker().run_once(now_ms=now)

    row = env.rows()["ord-1"]
    assert row.status == "pending" and row.next_attempt_at == received + 24 * HOUR_MS


def test_event_too_old_at_send_time_is_invalid_and_never_sent(env: DeliveryEnv) -> None:
    connection = env.connection("111")
    eight_days_ago = now_ms() - 8 * DAY_MS
    # Accepted at ingest (then within 7 days), but waited 8 days (e.g. a paused connection).
    env.enqueue(
        connection,
        [
            purchase(1, timestamp_ms=eight_days_ago - HOUR_MS),
            purchase(2, timestamp_ms=eight_days_ago - HOUR_MS, action_source="physical_store", url=None),
        ],
        received_ms=eight_days_ago,
    )
    env.enqueue(connection, [purchase(3)])

    assert env.worker().run_once() == 3

    rows = env.rows()
    too_old = rows["ord-1"]
    assert too_old.status == "invalid" and too_old.reason == REASON_TOO_OLD
    assert "more than 7 days old" in too_old.detail[0]["message"]
    # physical_store events have 62 days; the third event's own time is recent.
    assert rows["ord-2"].status == "sent" and rows["ord-3"].status == "sent"
    assert sorted(env.sandbox_event_ids("111")) == ["ord-2", "ord-3"]
    [sandbox_request] = env.sandbox_requests()
    assert sandbox_request["events_count"] == 2


def test_a_batch_of_only_too_old_events_makes_no_request(env: DeliveryEnv) -> None:
    connection = env.connection("111")
    eight_days_ago = now_ms() - 8 * DAY_MS
    env.enqueue(connection, [purchase(1, timestamp_ms=eight_days_ago)], received_ms=eight_days_ago)

    assert env.worker().run_once() == 1
    assert env.rows()["ord-1"].status == "invalid"
    assert env.sandbox_requests() == [] and env.requests() == []


def test_auth_error_during_bisection_pauses_and_releases_the_rest(env: DeliveryEnv) -> None:
    connection = env.connection("111", token="tok")
    env.enqueue(connection, [purchase(n) for n in range(4)])
    env.fault(count=1, error={"code": 100, "subcode": 2804050})  # first request: INVALID → bisect
    env.fault(count=1, error={"code": 190, "subcode": 463})  # second request: token expired

    env.worker().run_once()

    assert env.stored_connection(connection.id).status == "paused"
    rows = env.rows()
    assert {r.status for r in rows.values()} == {"pending"}
    assert {r.attempts for r in rows.values()} == {0}
    assert env.sandbox_event_ids("111") == []


def test_a_failed_full_batch_is_retried_without_waiting_for_linger(env: DeliveryEnv) -> None:
    connection = env.connection("111")
    start = now_ms()
    env.enqueue(connection, [purchase(n) for n in range(1_000)], received_ms=start)
    env.fault(error={"code": 1})
    worker = env.worker(batch_linger_ms=600_000)

    assert worker.run_once(now_ms=start) == 1_000  # full: sent at once, fails
    assert worker.run_once(now_ms=start + 6_000) == 1_000  # retry due: linger does not apply
    assert len(env.sandbox_event_ids("111")) == 1_000
