"""Ingest over HTTP: accepted only once committed, per-event rejections, bodies that are not events."""

from __future__ import annotations

import time

import orjson
from sqlalchemy import func, select

from metabridge.store.schema import events


def good_event(event_id: str, **changes) -> dict:
    event = {
        "event": "purchase",
        "event_id": event_id,
        "timestamp": int(time.time()) - 60,
        "url": "https://shop.example/checkout",
        "consent_categories": ["marketing"],
        "user": {"email": f"{event_id}@example.com", "user_agent": "Mozilla/5.0"},
        "properties": {"value": 10, "currency": "EUR"},
    }
    event.update(changes)
    return event


def stored(api) -> dict[str, str]:
    with api.service.engine.connect() as conn:
        return {row.event_id: row.status for row in conn.execute(select(events.c.event_id, events.c.status))}


def test_batch_with_bad_events_accepts_the_rest(api) -> None:
    cid = api.connection(consent_category="marketing")["id"]
    batch = [
        good_event("a"),
        good_event("b", properties={"value": 10}),  # no currency
        good_event("c", timestamp="yesterday"),
        good_event("d", consent_categories=["analytics"]),  # no consent: accepted, skipped
        good_event("e", user={"city": "Paris", "user_agent": "Mozilla/5.0"}),  # too little to match
        "not an object",
    ]
    answer = api.http.post(f"/v1/connections/{cid}/events", json={"events": batch})
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert (body["accepted"], body["pending"], body["skipped"]) == (3, 1, 2)
    rejected = {r["index"]: r["errors"] for r in body["rejected"]}
    assert set(rejected) == {1, 2, 5}
    assert rejected[1] == [{"field": "properties.currency", "message": "is required for Purchase (custom_data.currency)"}]
    assert rejected[2][0]["field"] == "timestamp"
    assert stored(api) == {"a": "pending", "d": "skipped", "e": "skipped"}
    status = api.http.get(f"/v1/connections/{cid}/events/d").json()
    assert (status["status"], status["reason"]) == ("skipped", "no_consent")
    status = api.http.get(f"/v1/connections/{cid}/events/e").json()
    assert (status["status"], status["reason"]) == ("skipped", "insufficient_customer_data")


def test_single_event_and_ndjson_bodies(api) -> None:
    cid = api.connection()["id"]
    assert api.http.post(f"/v1/connections/{cid}/events", json=good_event("one")).json()["accepted"] == 1
    ndjson = b"\n".join(orjson.dumps(good_event(f"n{i}")) for i in range(3))
    answer = api.http.post(f"/v1/connections/{cid}/events", content=ndjson, headers={"Content-Type": "application/x-ndjson"})
    assert answer.json()["accepted"] == 3
    answer = api.http.post(f"/v1/connections/{cid}/events", content=ndjson, headers={"Content-Type": "application/json"})
    assert answer.json()["deduplicated"] == 3  # same ids again within 48 h
    assert set(stored(api)) == {"one", "n0", "n1", "n2"}


def test_duplicates_are_recorded_not_sent_twice(api) -> None:
    cid = api.connection()["id"]
    api.http.post(f"/v1/connections/{cid}/events", json={"events": [good_event("dup"), good_event("dup")]})
    api.http.post(f"/v1/connections/{cid}/events", json=good_event("dup"))
    with api.service.engine.connect() as conn:
        statuses = sorted(r.status for r in conn.execute(select(events.c.status).where(events.c.event_id == "dup")))
    assert statuses == ["deduplicated", "deduplicated", "pending"]
    status = api.http.get(f"/v1/connections/{cid}/events/dup").json()
    assert status["status"] == "pending" and len(status["history"]) == 2


def test_bodies_that_are_not_events(api) -> None:
    cid = api.connection()["id"]
    url = f"/v1/connections/{cid}/events"
    answer = api.http.post(url, content=b"{not json", headers={"Content-Type": "application/json"})
    assert answer.status_code == 400 and "not valid JSON" in answer.json()["error"]["message"]
    assert api.http.post(url, content=b"").status_code == 400
    answer = api.http.post(url, json={"events": [good_event(str(i)) for i in range(10_001)]})
    assert answer.status_code == 413
    assert api.http.post("/v1/connections/999/events", json=good_event("x")).status_code == 404
    with api.service.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(events)).scalar_one() == 0


def test_stats_count_by_status_and_name(api) -> None:
    cid = api.connection(consent_category="marketing")["id"]
    api.http.post(f"/v1/connections/{cid}/events", json={"events": [
        good_event("s1"), good_event("s2"), good_event("s3", consent_categories=[]),
        good_event("s4", event="page_view", properties={}),
    ]})
    stats = api.http.get(f"/v1/connections/{cid}/stats").json()
    assert stats["by_status"] == {"pending": 3, "skipped": 1}
    assert stats["by_event_name"] == {"Purchase": {"pending": 2, "skipped": 1}, "PageView": {"pending": 1}}
    assert stats["by_reason"] == {"no_consent": 1}
    assert stats["health"] == "ok"


def test_test_event_returns_metas_raw_answer(api, sandbox) -> None:
    cid = api.connection(test_event_code="TEST123")["id"]
    answer = api.http.post(f"/v1/connections/{cid}/test-event", json={"event": good_event("t1")})
    body = answer.json()
    assert answer.status_code == 200, body
    assert body["sent"] is True and body["meta_status"] == 200
    assert body["meta_body"]["events_received"] == 1 and body["meta_body"]["fbtrace_id"]
    assert body["request"]["test_event_code"] == "TEST123"
    assert [e["event"]["event_id"] for e in sandbox.events("1234567890", test=True)] == ["t1"]
    assert sandbox.events("1234567890", test=False) == []
    # Meta's error comes back raw too
    sandbox.add_fault(count=1, error={"code": 190, "http_status": 400, "message": "Invalid OAuth access token."})
    body = api.http.post(f"/v1/connections/{cid}/test-event", json={"event": good_event("t2")}).json()
    assert body["meta_status"] == 400 and body["meta_body"]["error"]["code"] == 190
    # nothing is stored for test events
    assert stored(api) == {}


def test_ingest_uses_the_settings_of_the_moment_and_404s_once_deleted(api) -> None:
    cid = api.connection()["id"]
    no_consent = good_event("c1", consent_categories=["analytics"])
    assert api.http.post(f"/v1/connections/{cid}/events", json=no_consent).json()["pending"] == 1
    assert api.http.patch(f"/v1/connections/{cid}", json={"consent_category": "marketing"}).status_code == 200
    answer = api.http.post(f"/v1/connections/{cid}/events", json=good_event("c2", consent_categories=["analytics"]))
    assert (answer.json()["pending"], answer.json()["skipped"]) == (0, 1)  # the new consent rule applies at once
    assert api.http.delete(f"/v1/connections/{cid}?force=true").status_code == 204
    answer = api.http.post(f"/v1/connections/{cid}/events", json=good_event("c3"))
    assert answer.status_code == 404
