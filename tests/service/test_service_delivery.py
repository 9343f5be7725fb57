"""The whole service: HTTP ingest -> outbox -> worker thread -> sandbox over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _service import RunningService, running_service, wait_for
from test_api_ingest import good_event

PIXEL = "1234567890"


@pytest.fixture
def live(tmp_path: Path, database_url: str, sandbox) -> Iterator[RunningService]:
    """API + in-process worker."""
    with running_service(tmp_path, database_url, sandbox.base_url, run_worker=True) as running:
        yield running


def status_of(live: RunningService, cid: int, event_id: str) -> dict:
    return live.http.get(f"/v1/connections/{cid}/events/{event_id}").json()


def test_ingest_to_delivery_and_skips_never_reach_meta(live: RunningService, sandbox) -> None:
    cid = live.connection(consent_category="marketing")["id"]
    batch = [good_event(f"ok-{i}") for i in range(5)] + [
        good_event("no-consent", consent_categories=["analytics"]),
        good_event("too-little", user={"city": "Paris", "user_agent": "Mozilla/5.0"}),
    ]
    assert live.http.post(f"/v1/connections/{cid}/events", json={"events": batch}).json()["pending"] == 5
    wait_for(lambda: status_of(live, cid, "ok-4")["status"] == "sent", what="delivery")
    delivered = {e["event"]["event_id"]: e for e in sandbox.events(PIXEL)}
    assert set(delivered) == {f"ok-{i}" for i in range(5)}
    sent = status_of(live, cid, "ok-0")
    assert sent["fbtrace_id"] == delivered["ok-0"]["fbtrace_id"]
    assert sent["attempts"] == 1
    stats = live.http.get(f"/v1/connections/{cid}/stats").json()
    assert stats["by_status"] == {"sent": 5, "skipped": 2}
    assert stats["meta_events_received"] == 5


def test_transient_errors_and_rate_limits_are_retried(live: RunningService, sandbox) -> None:
    cid = live.connection()["id"]
    sandbox.add_fault(count=2, error={"code": 2, "http_status": 503, "message": "Service temporarily unavailable", "is_transient": True})
    sandbox.add_fault(count=1, error={"code": 80004, "http_status": 400, "message": "There have been too many calls to this ad-account."})
    live.http.post(f"/v1/connections/{cid}/events", json=good_event("retry-me"))
    record = wait_for(lambda: (s := status_of(live, cid, "retry-me"))["status"] == "sent" and s, what="delivery after retries")
    assert record["attempts"] == 4
    codes = [r["error_code"] for r in sandbox.requests()]
    assert codes == [2, 2, 80004, None]
    stats = live.http.get(f"/v1/connections/{cid}/stats").json()
    assert stats["last_error"]["error"]["code"] == 80004


def test_token_error_pauses_until_the_token_is_updated(live: RunningService, sandbox) -> None:
    cid = live.connection(access_token="old-token")["id"]
    sandbox.revoke_token("old-token")
    live.http.post(f"/v1/connections/{cid}/events", json=good_event("held"))
    paused = wait_for(lambda: (c := live.http.get(f"/v1/connections/{cid}").json())["health"] == "paused" and c,
                      what="pause")
    assert "190" in paused["paused_reason"]
    time.sleep(0.5)
    assert status_of(live, cid, "held")["status"] == "pending"
    assert sandbox.events(PIXEL) == []
    live.http.patch(f"/v1/connections/{cid}", json={"access_token": "new-token"})
    wait_for(lambda: status_of(live, cid, "held")["status"] == "sent", what="delivery after the token update")
    assert [e["event"]["event_id"] for e in sandbox.events(PIXEL)] == ["held"]
    assert live.http.get(f"/v1/connections/{cid}/stats").json()["health"] == "ok"
