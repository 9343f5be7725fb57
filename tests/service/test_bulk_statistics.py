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
    """Through the production write (upsert_members), which refreshes the statistics itself."""
    with engine.begin() as conn:
        put_audience(conn, "aud-1", "Buyers", None)
    before, _ = _analyzed(engine)

    _load(engine, 0, ANALYZE_AFTER_ROWS // 2)  # under the threshold: nothing yet
    assert _analyzed(engine)[0] == before

    _load(engine, 10**6, 2 * ANALYZE_AFTER_ROWS)  # the load's own rows count, before they are committed
    analyses, rows_seen = _analyzed(engine)
    assert analyses == before + 1 and rows_seen == 2.5 * ANALYZE_AFTER_ROWS

    # PostgreSQL counts the analyzing transaction's own rows again once it commits, so the next write
    # analyzes once more (an ANALYZE of ~0.1 s); after that, a small write leaves the statistics alone.
    _load(engine, 2 * 10**6, ANALYZE_AFTER_ROWS // 2)
    analyses += 1
    assert _analyzed(engine) == (analyses, 3 * ANALYZE_AFTER_ROWS)
    _load(engine, 3 * 10**6, ANALYZE_AFTER_ROWS // 2)  # 5,000 + 5,000 changed of 30,000: not stale
    assert _analyzed(engine)[0] == analyses

    with engine.begin() as conn:  # nothing written since: nothing to do
        refresh_stale_statistics(conn, audience_members, 0)
    assert _analyzed(engine)[0] == analyses
