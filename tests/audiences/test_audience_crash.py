"""Crashes in the middle of syncs: a worker process killed during a 50,000-member add sync or a 30,000-member
replace, and (in-process, exactly placed) a crash between Meta's answer to a ``usersreplace`` batch and the
commit recording it. Each time another worker resumes and the Meta side ends up equal to the audience."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from collections.abc import Callable
from typing import Any

import pytest
from _service import RunningService, wait_for
from test_audience_sync import ACCOUNT, settled

from metabridge.delivery.audiences import AudienceWorker
from metabridge.graph import GraphClient
from metabridge.timeutil import now_ms


def h(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _worker_log(env: dict[str, str]) -> Path:
    return Path(env["METABRIDGE_DATA_DIR"]) / "workers.log"


def start_worker(env: dict[str, str]) -> subprocess.Popen:
    """A ``metabridge worker`` process; its log goes to a file (a pipe nobody reads would block it once full)."""
    with _worker_log(env).open("ab") as log:
        return subprocess.Popen([sys.executable, "-m", "metabridge.cli.main", "worker"], env=env,
                                stdout=subprocess.DEVNULL, stderr=log)


def worker_env(api: RunningService, database_url: str, sandbox) -> dict[str, str]:
    return {
        **os.environ,
        "METABRIDGE_DATA_DIR": str(api.service.settings.data_dir),
        "METABRIDGE_DATABASE_URL": database_url,
        "METABRIDGE_GRAPH_URL": sandbox.base_url,
        "METABRIDGE_LEASE_SECONDS": "6",
        "METABRIDGE_GRAPH_TIMEOUT_SECONDS": "2.5",
        "METABRIDGE_AUDIENCE_DEBOUNCE_SECONDS": "0",
        "METABRIDGE_LOG_LEVEL": "warning",
    }


def people(count: int, prefix: str = "person") -> list[dict[str, str]]:
    return [{"email": f"{prefix}{i}@example.com"} for i in range(count)]


def kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


def kill_worker_once(env: dict[str, str], condition: Callable[[], Any], what: str) -> Any:
    """Run a worker process until ``condition`` holds (its value is returned), then SIGKILL it."""
    worker = start_worker(env)
    try:
        return wait_for(condition, timeout=120, what=what, every=0.02)
    finally:
        kill(worker)


def resume_until_settled(api: RunningService, env: dict[str, str], audience_id: str) -> None:
    """A new worker process finishes every job of the audience, then stops on SIGTERM."""
    worker = start_worker(env)
    try:
        settled(api, audience_id, timeout=120)
    except AssertionError as exc:  # say what the workers logged
        raise AssertionError(f"{exc}; workers' log:\n{_worker_log(env).read_text()[-4000:]}") from None
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)


def test_crash_during_a_50000_member_sync_resumes_without_loss_or_double_count(
    audience_api: RunningService, database_url: str, sandbox
) -> None:
    api = audience_api  # the API without a worker: the worker runs as separate processes below
    account = api.http.post("/v1/ad-accounts", json={"name": "EU", "account_id": ACCOUNT, "access_token": "tok"}).json()
    assert api.http.put("/v1/audiences/big", json={"name": "Big"}).status_code == 201
    dest = api.http.post("/v1/audiences/big/destinations", json={"ad_account": account["id"], "keys": ["email"]}).json()
    assert api.http.post("/v1/audiences/big/members", json={"members": people(50_000)}).json()["added"] == 50_000

    sandbox.add_fault(count=10_000, delay_ms=700, path_contains="/users")  # slow Meta down: 5 batches of 10,000
    env = worker_env(api, database_url, sandbox)

    def add_job() -> dict | None:
        jobs = api.http.get("/v1/jobs", params={"audience": "big", "kind": "add"}).json()
        return jobs[0] if jobs else None

    running = kill_worker_once(env, lambda: (j := add_job()) and j["rows_sent"] >= 20_000 and j,
                               "two acknowledged batches")
    interrupted = api.http.get(f"/v1/jobs/{running['id']}").json()
    assert interrupted["status"] == "running" and 20_000 <= interrupted["rows_sent"] < 50_000

    sandbox.clear_faults()
    resume_until_settled(api, env, "big")

    job = api.http.get(f"/v1/jobs/{running['id']}").json()
    assert job["status"] == "done"
    assert job["rows_sent"] == 50_000 and job["batches"] == 5
    assert job["attempts"] == 2
    assert job["num_received"] >= 50_000 and job["num_invalid_entries"] == 0
    meta_id = dest["meta_audience_id"]
    assert sandbox.member_count(meta_id) == 50_000
    assert {m["EMAIL"] for m in sandbox.all_members(meta_id)} == {h(f"person{i}@example.com") for i in range(50_000)}
    assert api.http.get("/v1/audiences/big").json()["destinations"][0]["members_in_meta"] == 50_000


def _replace_setup(api: RunningService, sandbox, members: int) -> tuple[dict, dict]:
    """An audience of ``members`` linked to a Meta audience holding 5 other people, a replace queued;
    returns (destination, replace job)."""
    account = api.http.post("/v1/ad-accounts", json={"name": "EU", "account_id": ACCOUNT, "access_token": "tok"}).json()
    legacy = sandbox.create_audience(ACCOUNT, "Legacy list", members=[{"EMAIL": h(f"old{i}@example.com")} for i in range(5)])
    assert api.http.put("/v1/audiences/rep", json={"name": "Rebuilt"}).status_code == 201
    assert api.http.post("/v1/audiences/rep/members", json={"members": people(members)}).json()["added"] == members
    dest = api.http.post("/v1/audiences/rep/destinations",
                         json={"ad_account": account["id"], "keys": ["email"], "meta_audience_id": legacy}).json()
    job = api.http.post(f"/v1/audiences/rep/destinations/{dest['id']}/replace")
    assert job.status_code == 202
    return dest, job.json()


def _assert_meta_equals_audience(api: RunningService, sandbox, dest: dict, members: int) -> list[dict[str, Any]]:
    jobs = api.http.get("/v1/jobs", params={"audience": "rep"}).json()
    assert all(j["status"] == "done" for j in jobs), jobs
    meta_id = dest["meta_audience_id"]
    assert {m["EMAIL"] for m in sandbox.all_members(meta_id)} == {h(f"person{i}@example.com") for i in range(members)}
    view = sandbox.audience(meta_id)
    assert view["operation_status"]["code"] == 200 and view["replace_session"] is None
    assert api.http.get("/v1/audiences/rep").json()["destinations"][0]["members_in_meta"] == members
    # every row acknowledged once: by the replace, or by the diff sync adding what the replace left out
    assert sum(j["rows_sent"] for j in jobs) == members
    return jobs


def test_crash_during_a_replace_resumes_the_session(audience_api: RunningService, database_url: str, sandbox) -> None:
    api = audience_api
    dest, replace = _replace_setup(api, sandbox, 30_000)
    sandbox.add_fault(count=10_000, delay_ms=700, path_contains="/usersreplace")  # 3 batches of 10,000
    env = worker_env(api, database_url, sandbox)

    kill_worker_once(env, lambda: api.http.get(f"/v1/jobs/{replace['id']}").json()["batch_seq"] >= 1,
                     "an acknowledged replace batch")
    interrupted = api.http.get(f"/v1/jobs/{replace['id']}").json()
    assert interrupted["status"] == "running" and interrupted["session_id"]
    assert 10_000 <= interrupted["rows_sent"] < 30_000
    assert sandbox.audience(dest["meta_audience_id"])["replace_session"]["session_id"] == str(interrupted["session_id"])

    sandbox.clear_faults()
    resume_until_settled(api, env, "rep")

    job = api.http.get(f"/v1/jobs/{replace['id']}").json()
    assert job["status"] == "done" and job["attempts"] == 2
    assert job["session_id"] == interrupted["session_id"]  # the same session, resumed
    assert job["rows_sent"] == 30_000 and job["batch_seq"] == 3
    _assert_meta_equals_audience(api, sandbox, dest, 30_000)  # the legacy people are gone


class Crash(BaseException):
    """The worker process "dies" (nothing of metabridge catches it)."""


class CrashAfterAnswer(GraphClient):
    """A Graph client whose process dies right after Meta answered the n-th ``usersreplace`` batch, before
    the worker could record it."""

    def __init__(self, *args: Any, crash_after: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.left = crash_after

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = super().request(method, path, **kwargs)
        if path.endswith("/usersreplace"):
            self.left -= 1
            if self.left == 0:
                raise Crash
        return answer


@pytest.mark.parametrize(
    ("members", "crash_after"),
    [(25_000, 1), (25_000, 3), (5_000, 1)],
    ids=["first-of-3-batches", "last-of-3-batches", "single-batch"],
)
def test_crash_between_metas_answer_and_the_commit_of_a_replace_batch(
    audience_api: RunningService, sandbox, members: int, crash_after: int
) -> None:
    api = audience_api
    dest, replace = _replace_setup(api, sandbox, members)
    service = api.service

    def worker(graph: GraphClient) -> AudienceWorker:
        return AudienceWorker(service.engine, service.settings, service.box, graph)

    with CrashAfterAnswer(base_url=sandbox.base_url, crash_after=crash_after) as graph:
        with pytest.raises(Crash):
            worker(graph).run_once()
    crashed = api.http.get(f"/v1/jobs/{replace['id']}").json()
    assert crashed["status"] == "running" and crashed["batch_seq"] == crash_after - 1
    assert crashed["rows_sent"] == (crash_after - 1) * 10_000  # the answered batch is not recorded

    expired = int(service.settings.lease_seconds * 1000) + 1_000  # the crashed worker's lease is over
    with GraphClient(base_url=sandbox.base_url) as graph:
        second = worker(graph)
        while second.run_once(now_ms=now_ms() + expired):
            pass
    job = api.http.get(f"/v1/jobs/{replace['id']}").json()
    assert job["status"] == "done" and job["attempts"] == 2 and job["session_id"] == crashed["session_id"]
    jobs = _assert_meta_equals_audience(api, sandbox, dest, members)
    if crash_after == 1 and members > 10_000:
        # Meta had batch 1: the rows went again as batch 2 of the same session, never as a second batch 1
        assert job["batch_seq"] == 4 and job["rows_sent"] == members
    else:
        # Meta had the last batch: the session was finished; the sync that follows added its rows again
        last = members % 10_000 or 10_000
        assert job["rows_sent"] == members - last
        assert [j["rows_sent"] for j in jobs if j["kind"] == "add"] == [last]
