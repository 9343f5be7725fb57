"""Rename jobs (store.audience_jobs.queue_renames) against a worker claiming the queued one.

A rename relies on a queued ``rename`` job to send the newest name only if that job is still queued when
the rename commits. On PostgreSQL (READ COMMITTED) the worker's claim and the rename run concurrently: these
tests hold one transaction open on one connection and run the other on a second, against a real server.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from _postgres import fresh_database
from cryptography.fernet import Fernet
from sqlalchemy import Connection, Engine, select, text

from metabridge.credentials import SecretBox
from metabridge.store import audience_jobs as jobs
from metabridge.store.ad_accounts import create_ad_account
from metabridge.store.audiences import create_destination, get_audience, put_audience
from metabridge.store.db import make_engine
from metabridge.store.migrate import upgrade
from metabridge.store.schema import audience_jobs

NOW = 1_700_000_000_000
LEASE_MS = 60_000
WAIT_S = 20  # a failure must not hang the suite


def _engine(url: str) -> Engine:
    engine = make_engine(url)
    upgrade(engine)
    return engine


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = _engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_engine(postgres_url: str) -> Iterator[Engine]:
    with fresh_database(postgres_url) as url:
        engine = _engine(url)
        yield engine
        engine.dispose()


def _audience_with_destinations(engine: Engine, *created: bool) -> list[int]:
    """Audience ``season`` named "Spring buyers" with one active destination per ``created`` flag
    (whether metabridge created its Meta audience); none is due for a sync."""
    with engine.begin() as conn:
        put_audience(conn, "season", "Spring buyers", None)
        account = create_ad_account(conn, SecretBox(Fernet.generate_key()), name="acct", account_id="1234",
                                    access_token="token")
        return [create_destination(conn, audience_id="season", ad_account_id=account.id, name=f"dest {i}",
                                   keys=["email"], mode="mirror", meta_audience_id=f"2385{i}",
                                   created_meta_audience=flag, sync_at=0).id
                for i, flag in enumerate(created)]


def _rename_jobs(engine: Engine) -> list[tuple[int, str]]:
    with engine.connect() as conn:
        j = audience_jobs.c
        return [tuple(r) for r in conn.execute(  # type: ignore[misc]
            select(j.destination_id, j.status).where(j.kind == "rename").order_by(j.id))]


def _rename(conn: Connection, name: str) -> list[int]:
    """What ``PUT /v1/audiences/season`` does on a new name (the caller commits)."""
    put_audience(conn, "season", name, None)
    return jobs.queue_renames(conn, "season", NOW)


def test_a_rename_job_per_destination_metabridge_created_unless_one_is_still_queued(engine: Engine) -> None:
    created, linked, other = _audience_with_destinations(engine, True, False, True)
    with engine.begin() as conn:
        first = _rename(conn, "Summer buyers")
    assert len(first) == 2
    assert _rename_jobs(engine) == [(created, "queued"), (other, "queued")]

    with engine.begin() as conn:  # both still queued: they will send the newest name
        assert _rename(conn, "Autumn buyers") == []

    with engine.begin() as conn:  # one claimed meanwhile: it may have read the old name
        claimed = jobs.claim_job(conn, "w1", NOW, LEASE_MS)
    assert claimed is not None and claimed["destination_id"] == created
    with engine.begin() as conn:
        again = _rename(conn, "Winter buyers")
    assert len(again) == 1
    assert _rename_jobs(engine) == [(created, "running"), (other, "queued"), (created, "queued")]
    assert linked not in {d for d, _ in _rename_jobs(engine)}


def _waiting_for_a_lock(engine: Engine, pid: int) -> bool:
    with engine.connect() as conn:
        return conn.execute(text("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = :pid"),
                            {"pid": pid}).scalar() is True


def test_a_rename_during_a_claim_in_progress_queues_a_new_job(pg_engine: Engine) -> None:
    """The worker's claim has changed the queued job to running but not committed: the rename must not count
    on that job (the worker may read the old name), so it waits for the claim and queues a new one."""
    (destination,) = _audience_with_destinations(pg_engine, True)
    with pg_engine.begin() as conn:
        jobs.queue_renames(conn, "season", NOW)  # an earlier rename's job, still queued

    outcome: dict[str, Any] = {}
    pid: list[int] = []

    def rename() -> None:
        try:
            with pg_engine.begin() as conn:
                conn.execute(text("SET LOCAL lock_timeout = '20s'"))
                pid.append(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
                outcome["created"] = _rename(conn, "Summer buyers")
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            outcome["error"] = exc

    with pg_engine.connect() as worker:
        worker.begin()
        claimed = jobs.claim_job(worker, "w1", NOW, LEASE_MS)  # the real claim, not committed yet
        assert claimed is not None and claimed["kind"] == "rename"
        thread = threading.Thread(target=rename, daemon=True)
        thread.start()
        # Until the rename either waits for the claim's row lock or (without the lock) has already decided.
        deadline = time.monotonic() + WAIT_S
        while thread.is_alive() and not (pid and _waiting_for_a_lock(pg_engine, pid[0])):
            assert time.monotonic() < deadline, "the rename neither finished nor waited for the claim"
            time.sleep(0.01)
        worker.commit()
    thread.join(WAIT_S)
    assert not thread.is_alive(), "the rename did not end after the claim committed"
    assert "error" not in outcome, outcome.get("error")

    assert len(outcome["created"]) == 1  # the newest name is sent by a job of its own
    assert _rename_jobs(pg_engine) == [(destination, "running"), (destination, "queued")]


def test_a_claim_during_a_rename_waits_for_the_new_name(pg_engine: Engine) -> None:
    """A rename kept the queued job (it will send the newest name): a worker claiming it before the rename
    commits would read the old name, so the job is not claimable until the rename commits."""
    _audience_with_destinations(pg_engine, True)
    with pg_engine.begin() as conn:
        jobs.queue_renames(conn, "season", NOW)

    def claim_and_read_name() -> str | None:
        """What a worker does: claim (committed), then read the audience's name to send it."""
        with pg_engine.begin() as conn:
            conn.execute(text("SET LOCAL lock_timeout = '20s'"))
            job = jobs.claim_job(conn, "w1", NOW, LEASE_MS)
        if job is None:
            return None
        with pg_engine.connect() as conn:
            audience = get_audience(conn, job["audience_id"])
            assert audience is not None
            return audience.name

    with pg_engine.connect() as renaming:
        renaming.begin()
        assert _rename(renaming, "Summer buyers") == []  # the queued job will send it
        sent = claim_and_read_name()  # SKIP LOCKED: never waits
        renaming.commit()
    assert sent in (None, "Summer buyers")
    if sent is None:
        assert claim_and_read_name() == "Summer buyers"
