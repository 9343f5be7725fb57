"""Workers as real processes: crash safety and exclusive claims across processes.

These run ``metabridge worker`` subprocesses against one database and a sandbox served over HTTP by the
test process, exactly as a deployment with several worker machines would.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _postgres import fresh_database
from sqlalchemy import func, select

from metabridge.config import Settings
from metabridge.events import ConnectionSettings
from metabridge.ingest import ingest
from metabridge.service import Service
from metabridge.store.connections import create_connection
from metabridge.store.schema import delivery_requests, events

PIXEL = "5550001"


def incoming(n: int, prefix: str) -> list[dict]:
    now = int(time.time())
    return [
        {"event": "purchase", "event_id": f"{prefix}-{i}", "timestamp": now - 30, "action_source": "system_generated",
         "user": {"email": f"{prefix}{i}@example.com"}, "properties": {"value": i, "currency": "EUR"}}
        for i in range(n)
    ]


def prepare(tmp_path: Path, database_url: str, sandbox_url: str, n: int, prefix: str) -> tuple[Service, dict[str, str]]:
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url, graph_url=sandbox_url)
    service = Service.open(settings)
    with service.engine.begin() as conn:
        connection = create_connection(
            conn, service.box, name="shop", settings=ConnectionSettings(pixel_id=PIXEL), access_token="tok",
        )
    for start in range(0, n, 5000):
        outcome = ingest(service, connection, incoming(n, prefix)[start:start + 5000])
        assert not outcome.rejected
    env = {
        **os.environ,
        "METABRIDGE_DATA_DIR": str(tmp_path / "data"),
        "METABRIDGE_DATABASE_URL": database_url,
        "METABRIDGE_GRAPH_URL": sandbox_url,
        "METABRIDGE_LEASE_SECONDS": "4",
        "METABRIDGE_GRAPH_TIMEOUT_SECONDS": "1.5",
        "METABRIDGE_BATCH_LINGER_MS": "50",
        "METABRIDGE_LOG_LEVEL": "warning",
    }
    return service, env


def delivered_ids(sandbox) -> collections.Counter:
    """event_id -> how many times the sandbox accepted it (all pages of its event store)."""
    counts: collections.Counter = collections.Counter()
    offset = 0
    while page := sandbox.events(PIXEL, limit=1000, offset=offset):
        counts.update(e["event"]["event_id"] for e in page)
        offset += len(page)
    return counts


def leased_count(service: Service) -> int:
    with service.engine.connect() as conn:
        return conn.execute(select(func.count()).where(events.c.lease_owner.is_not(None))).scalar_one()


def start_worker(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "metabridge.cli.main", "worker"], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


def wait_until_all_sent(service: Service, n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with service.engine.connect() as conn:
            sent = conn.execute(select(func.count()).where(events.c.status == "sent")).scalar_one()
        if sent == n:
            return
        time.sleep(0.2)
    with service.engine.connect() as conn:
        counts = dict(conn.execute(select(events.c.status, func.count()).group_by(events.c.status)).all())
    raise AssertionError(f"not all {n} events were sent in {timeout} s: {counts}")


def stop(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out.decode(errors="replace")


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_worker_killed_mid_batch_loses_nothing(store, tmp_path: Path, sandbox, request) -> None:
    if store == "sqlite":
        url_cm = None
        database_url = f"sqlite:///{tmp_path / 'mb.db'}"
    else:
        url_cm = fresh_database(request.getfixturevalue("postgres_url"))
        database_url = url_cm.__enter__()
    try:
        n = 3000
        service, env = prepare(tmp_path, database_url, sandbox.base_url, n, "kill")
        # Every request now hangs long enough to kill the worker while it waits for Meta's answer.
        sandbox.add_fault(count=1, delay_ms=3000, path_contains="/events")
        first = start_worker(env)
        deadline = time.monotonic() + 30
        while not leased_count(service) and time.monotonic() < deadline:
            if first.poll() is not None:
                pytest.fail(f"worker exited: {stop(first)}")
            time.sleep(0.05)
        time.sleep(0.5)  # the request is on the wire; the sandbox holds its answer for 3 s
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        assert leased_count(service) > 0, "the killed worker held no claimed events: the test did not kill it mid-batch"
        second = start_worker(env)
        try:
            wait_until_all_sent(service, n, timeout=90)
        finally:
            stop(second)
        delivered = delivered_ids(sandbox)
        assert set(delivered) == {f"kill-{i}" for i in range(n)}
        service.close()
    finally:
        if url_cm is not None:
            url_cm.__exit__(None, None, None)


def test_two_workers_on_postgres_send_each_event_in_exactly_one_successful_request(tmp_path: Path, sandbox, postgres_url) -> None:
    n = 20_000
    with fresh_database(postgres_url) as database_url:
        service, env = prepare(tmp_path, database_url, sandbox.base_url, n, "pair")
        workers = [start_worker(env), start_worker(env)]
        try:
            wait_until_all_sent(service, n, timeout=180)
        finally:
            outputs = [stop(w) for w in workers]
        delivered = delivered_ids(sandbox)
        assert len(delivered) == n, outputs
        assert max(delivered.values()) == 1, [k for k, v in delivered.items() if v > 1][:10]
        requests = [r for r in sandbox.requests() if r.get("status") == 200]
        assert all(r["events_count"] <= 1000 for r in requests)
        with service.engine.connect() as conn:
            worker_ids = conn.execute(select(delivery_requests.c.worker).distinct()).scalars().all()
        pids = {worker_id.rsplit("-", 2)[1] for worker_id in worker_ids}  # ids are host-pid-random
        assert len(pids) == 2, f"both worker processes should have delivered batches: {worker_ids}"
        service.close()
