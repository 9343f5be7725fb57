"""PostgreSQL planner statistics after bulk writes (store.bulk.refresh_stale_statistics).

Without an ANALYZE the planner keeps believing a freshly loaded table is empty; a sync of a 1,000,000-member
audience then hashed every held row for each page it read. Against a real PostgreSQL server.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from _postgres import fresh_database
from sqlalchemy import Engine, text

from metabridge.store.audiences import put_audience, upsert_members
from metabridge.store.bulk import ANALYZE_AFTER_ROWS, refresh_stale_statistics
from metabridge.store.db import make_engine
from metabridge.store.migrate import upgrade
from metabridge.store.schema import audience_members


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Engine]:
    with fresh_database(postgres_url) as url:
        engine = make_engine(url)
        upgrade(engine)
        with engine.begin() as conn:  # only the code under test analyzes (autovacuum would race it)
            conn.execute(text("ALTER TABLE audience_members SET (autovacuum_enabled = false)"))
        yield engine
        engine.dispose()


def _analyzed(engine: Engine) -> tuple[int, float]:
    """(analyses of audience_members so far, the row count the last one saw)."""
    with engine.connect() as conn:
        return conn.execute(text(
            "SELECT s.analyze_count + s.autoanalyze_count, c.reltuples FROM pg_stat_user_tables s "
            "JOIN pg_class c ON c.oid = s.relid WHERE s.relname = 'audience_members'"
        )).one()


def _load(engine: Engine, start: int, count: int) -> None:
    rows = [(f"email:{i:064x}", "{}", "{}") for i in range(start, start + count)]
    with engine.begin() as conn:
        upsert_members(conn, "aud-1", rows)
    time.sleep(1.2)  # PostgreSQL publishes a backend's row counters at most once a second


def test_a_large_load_is_analyzed_and_a_small_one_later_is_not(engine: Engine) -> None:
    with engine.begin() as conn:
        put_audience(conn, "aud-1", "Buyers", None)
    before, _ = _analyzed(engine)

    _load(engine, 0, ANALYZE_AFTER_ROWS // 2)  # under the threshold: nothing yet
    with engine.begin() as conn:
        refresh_stale_statistics(conn, audience_members)
    assert _analyzed(engine)[0] == before

    _load(engine, 10**6, 2 * ANALYZE_AFTER_ROWS)  # this call's own refresh cannot see its rows yet
    with engine.begin() as conn:
        refresh_stale_statistics(conn, audience_members)
    analyses, rows_seen = _analyzed(engine)
    assert analyses == before + 1 and rows_seen == 2.5 * ANALYZE_AFTER_ROWS

    _load(engine, 2 * 10**6, ANALYZE_AFTER_ROWS // 2)  # 5,000 of 30,000: under the threshold again
    with engine.begin() as conn:
        refresh_stale_statistics(conn, audience_members)
    assert _analyzed(engine)[0] == analyses
