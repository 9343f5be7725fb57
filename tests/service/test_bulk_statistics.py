"""PostgreSQL planner statistics after bulk writes (store.bulk.refresh_stale_statistics).

Without an ANALYZE the planner keeps believing a freshly loaded table is empty; a sync of a 1,000,000-member
audience then hashed every held row for each page it read, and a catalog import or first sync scanned the
whole table for each keyed lookup. Against a real PostgreSQL server.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from _postgres import fresh_database
from sqlalchemy import Engine, text

from cryptography.fernet import Fernet

from metabridge.catalog_ingest import store_products
from metabridge.credentials import SecretBox
from metabridge.store import catalog_jobs
from metabridge.store.audiences import put_audience, upsert_members
from metabridge.store.bulk import ANALYZE_AFTER_ROWS, refresh_stale_statistics
from metabridge.store.catalogs import StoredCatalog, create_catalog
from metabridge.store.db import make_engine
from metabridge.store.migrate import upgrade
from metabridge.store.schema import audience_members

#: The tables whose analyses the tests count.
TABLES = ("audience_members", "catalog_products", "catalog_items_sent")
#: Products per transaction of ``metabridge catalog import`` (its --chunk default), confirmations per items_batch.
CHUNK = 5_000


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Engine]:
    with fresh_database(postgres_url) as url:
        engine = make_engine(url)
        upgrade(engine)
        with engine.begin() as conn:  # only the code under test analyzes (autovacuum would race it)
            for table in TABLES:
                conn.execute(text(f"ALTER TABLE {table} SET (autovacuum_enabled = false)"))
        yield engine
        engine.dispose()


def _analyzed(engine: Engine, table: str = "audience_members") -> tuple[int, float]:
    """(analyses of ``table`` so far, the row count the last one saw: -1 before any)."""
    with engine.connect() as conn:
        return tuple(conn.execute(text(
            "SELECT s.analyze_count + s.autoanalyze_count, c.reltuples FROM pg_stat_user_tables s "
            "JOIN pg_class c ON c.oid = s.relid WHERE s.relname = :table"
        ), {"table": table}).one())


def _published() -> None:
    time.sleep(1.2)  # PostgreSQL publishes a backend's row counters at most once a second


def _load(engine: Engine, start: int, count: int) -> None:
    rows = [(f"email:{i:064x}", "{}", "{}") for i in range(start, start + count)]
    with engine.begin() as conn:
        upsert_members(conn, "aud-1", rows)
    _published()


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


def _catalog(engine: Engine) -> StoredCatalog:
    with engine.begin() as conn:
        return create_catalog(conn, SecretBox(Fernet.generate_key()), name="shop", catalog_id="42",
                              access_token="tok", app_secret=None, schedule="off", currency="EUR")


def _product(i: int) -> dict[str, object]:
    return {"id": f"sku-{i}", "title": f"Product {i}", "description": f"The product number {i}.",
            "availability": "in stock", "condition": "new", "price": {"amount": 10 + i % 50, "currency": "EUR"},
            "link": f"https://shop.example/p/{i}", "image_link": f"https://shop.example/img/{i}.jpg", "brand": "Acme"}


def test_a_catalog_imported_in_chunks_is_analyzed(engine: Engine) -> None:
    """``metabridge catalog import`` commits 5,000 products per transaction (store_products, as here): each
    is under ANALYZE_AFTER_ROWS, yet the import leaves the statistics counting every product it stored."""
    catalog = _catalog(engine)
    before, _ = _analyzed(engine, "catalog_products")
    for chunk in range(4):
        outcome = store_products(engine, catalog, [_product(i) for i in range(chunk * CHUNK, (chunk + 1) * CHUNK)],
                                 start_index=chunk * CHUNK)
        assert outcome.created == CHUNK and not outcome.rejected
        _published()
    # 5,000 changed: nothing; then 10,000 changed (of 0, 10,000, 15,000 counted) at each later chunk
    assert _analyzed(engine, "catalog_products") == (before + 3, 4 * CHUNK)

    # importing the same products again rewrites them: those writes count too (not only new rows). The
    # last analysis counted its own chunk again once it committed: 5,000 + 5,000 changed of 20,000 counted.
    outcome = store_products(engine, catalog, [_product(i) for i in range(CHUNK)])
    assert outcome.unchanged == CHUNK
    assert _analyzed(engine, "catalog_products") == (before + 4, 4 * CHUNK)


def test_confirmations_of_a_first_sync_are_analyzed(engine: Engine) -> None:
    """A sync confirms at most 5,000 items per items_batch (catalog_jobs.confirm, one transaction each)."""
    catalog = _catalog(engine)
    before, _ = _analyzed(engine, "catalog_items_sent")
    for chunk in range(3):
        with engine.begin() as conn:
            catalog_jobs.confirm(conn, catalog.id, upserted=[(f"sku-{i}", f"{i:064x}", ["brand"]) for i in
                                                             range(chunk * CHUNK, (chunk + 1) * CHUNK)],
                                 deleted=[], rejected=[], now=1)
        _published()
    assert _analyzed(engine, "catalog_items_sent") == (before + 2, 3 * CHUNK)
