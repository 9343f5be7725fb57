"""A worker process killed in the middle of a 50,000-member sync: another one resumes it exactly."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys

from _service import RunningService, wait_for
from test_audience_sync import ACCOUNT, settled


def start_worker(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "metabridge.cli.main", "worker"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_crash_during_a_50000_member_sync_resumes_without_loss_or_double_count(
    audience_api: RunningService, database_url: str, sandbox
) -> None:
    api = audience_api  # the API without a worker: the worker runs as separate processes below
    account = api.http.post("/v1/ad-accounts", json={"name": "EU", "account_id": ACCOUNT, "access_token": "tok"}).json()
    assert api.http.put("/v1/audiences/big", json={"name": "Big"}).status_code == 201
    dest = api.http.post("/v1/audiences/big/destinations", json={"ad_account": account["id"], "keys": ["email"]}).json()
    members = [{"email": f"person{i}@example.com"} for i in range(50_000)]
    assert api.http.post("/v1/audiences/big/members", json={"members": members}).json()["added"] == 50_000

    sandbox.add_fault(count=10_000, delay_ms=700, path_contains="/users")  # slow Meta down: 5 batches of 10,000
    env = {
        **os.environ,
        "METABRIDGE_DATA_DIR": str(api.service.settings.data_dir),
        "METABRIDGE_DATABASE_URL": database_url,
        "METABRIDGE_GRAPH_URL": sandbox.base_url,
        "METABRIDGE_LEASE_SECONDS": "6",
        "METABRIDGE_GRAPH_TIMEOUT_SECONDS": "2.5",
        "METABRIDGE_AUDIENCE_DEBOUNCE_SECONDS": "0",
        "METABRIDGE_LOG_LEVEL": "warning",
    }

    def add_job() -> dict | None:
        jobs = api.http.get("/v1/jobs", params={"audience": "big", "kind": "add"}).json()
        return jobs[0] if jobs else None

    first = start_worker(env)
    try:
        running = wait_for(lambda: (j := add_job()) and j["rows_sent"] >= 20_000 and j, timeout=120,
                           what="two acknowledged batches", every=0.02)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    interrupted = api.http.get(f"/v1/jobs/{running['id']}").json()
    assert interrupted["status"] == "running" and 20_000 <= interrupted["rows_sent"] < 50_000

    sandbox.clear_faults()
    second = start_worker(env)
    try:
        settled(api, "big", timeout=120)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=60)

    job = api.http.get(f"/v1/jobs/{running['id']}").json()
    assert job["status"] == "done"
    assert job["rows_sent"] == 50_000 and job["batches"] == 5
    assert job["attempts"] == 2
    assert job["num_received"] >= 50_000 and job["num_invalid_entries"] == 0
    meta_id = dest["meta_audience_id"]
    assert sandbox.member_count(meta_id) == 50_000
    expected = {hashlib.sha256(f"person{i}@example.com".encode()).hexdigest() for i in range(50_000)}
    assert {m["EMAIL"] for m in sandbox.all_members(meta_id)} == expected
    assert api.http.get("/v1/audiences/big").json()["destinations"][0]["members_in_meta"] == 50_000
