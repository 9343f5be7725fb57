"""Alembic migrations against the declared schema, on SQLite and a real PostgreSQL.

A database migrated to head must have exactly the tables and columns ``store.schema`` declares, and one
created at an earlier released revision must reach the same schema by upgrading (a column added to an
already released migration would be missing there).
"""

from __future__ import annotations

import hashlib

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from cryptography.fernet import Fernet
from sqlalchemy import Engine, insert, select

from metabridge.credentials import SecretBox
from metabridge.store import catalog_jobs
from metabridge.store.catalogs import create_catalog
from metabridge.store.db import make_engine
from metabridge.store.migrate import MIGRATIONS, current_revision, head_revision, upgrade
from metabridge.store.schema import catalog_batches, catalog_items_sent, catalog_products, metadata

#: Migrations a released version of metabridge ran, with the SHA-256 of their file as released.
RELEASED = {
    "0001_events_outbox_connections_api_keys.py": "92eaa7d9b4034f2bcc42869ec70d32cb2ac2fca62cb638463ac2cefedb80a837",
    "0002_custom_audiences.py": "690290d647be5ff26a8377f8333ceb9fddd87ad77ce987122c9f539dcee14757",
    "0003_catalog.py": "f780c9c740a32e1f291b4df57fa2765732087e54f6929a7bfb0e3a26fdb37d09",
    "0004_catalog_unsettled.py": "d51a968e0ee41136097b014ff874d243bdcf13db95a2e54d0d1111e60de5259f",
    "0005_catalog_unsettled_backfill.py": "ee600520caf076beb352e12da7d5145488dbe3ae8a2fe27424b5b7c9d8e19171",
}


@pytest.mark.parametrize("name", sorted(RELEASED))
def test_a_released_migration_is_never_edited(name: str) -> None:
    """A database already at a released revision never runs it again: a change must be a new migration."""
    digest = hashlib.sha256((MIGRATIONS / "versions" / name).read_bytes()).hexdigest()
    assert digest == RELEASED[name], f"{name} was edited after its release; add a new migration instead"


def _differences(engine: Engine) -> list[tuple]:
    """Table and column differences between the database and ``store.schema`` (types and indexes aside)."""
    with engine.connect() as conn:
        found = compare_metadata(MigrationContext.configure(conn), metadata)
    kinds = ("add_table", "remove_table", "add_column", "remove_column")
    return [d for d in found if isinstance(d, tuple) and d[0] in kinds]


@pytest.mark.parametrize("start", [None, "0001", "0002", "0003", "0004"], ids=["fresh", "0001", "0002", "0003", "0004"])
def test_every_released_revision_upgrades_to_the_declared_schema(database_url: str, start: str | None) -> None:
    engine = make_engine(database_url)
    try:
        if start is not None:
            upgrade(engine, start)
            assert current_revision(engine) == start
        upgrade(engine)
        assert current_revision(engine) == head_revision()
        assert _differences(engine) == []
    finally:
        engine.dispose()


# -- 0005: items of batches abandoned before 0004 ----------------------------------------------------------
def _batch(conn, job: int, catalog: int, status: str, items: list[list], at: int) -> int:
    return conn.execute(insert(catalog_batches).values(
        job_id=job, catalog_id=catalog, handle=None if status == "not_ingested" else f"h-{at}", status=status,
        items=items, sent_at=at - 10, finished_at=None if status == "sent" else at,
    ).returning(catalog_batches.c.id)).scalar_one()


def _sent(conn, catalog: int, rid: str, fingerprint: str | None, *, rejected: str | None = None,
          unsettled: list[str] | None = None) -> None:
    conn.execute(insert(catalog_items_sent).values(
        catalog_id=catalog, retailer_id=rid, fingerprint=fingerprint, rejected_fingerprint=rejected,
        rejected=["bad"] if rejected else None, unsettled=unsettled, confirmed_at=500))


def test_0005_marks_the_items_of_batches_abandoned_before_0004(database_url: str) -> None:
    """A database at 0004 with the batches a sync of 0003 left (items ``[retailer_id, fingerprint, kind]``)
    and some of 0004 (their fields too): after the upgrade an item an abandoned batch carried is unsettled
    unless a later finished batch settled it, exactly as 0004's sync leaves what it abandons."""
    engine = make_engine(database_url)
    try:
        upgrade(engine, "0004")
        box = SecretBox(Fernet.generate_key())
        with engine.begin() as conn:
            shop = create_catalog(conn, box, name="shop", catalog_id="1", access_token="t", app_secret=None,
                                  schedule="off", currency="EUR").id
            other = create_catalog(conn, box, name="other", catalog_id="2", access_token="t", app_secret=None,
                                   schedule="off", currency="EUR").id
            job = catalog_jobs.create_job(conn, shop, trigger="manual", now=1)
            open_job = catalog_jobs.create_job(conn, shop, trigger="manual", now=2)
            other_job = catalog_jobs.create_job(conn, other, trigger="manual", now=1)
            # a job of 0003 failed with its batch open: abandoned, nothing marked
            _batch(conn, job, shop, "abandoned", [
                ["sku-a", "fa2", "updated"], ["sku-b", "fb1", "created"], ["sku-c", "fc2", "updated"],
                ["sku-d", "fd2", "updated"], ["sku-e", None, "deleted"], ["sku-f", None, "deleted"],
                ["sku-i", "fi2", "updated"], ["sku-l", "fl1", "created"], ["sku-m", "fm2", "updated"],
            ], 1_000)
            # the next syncs: c and m confirmed, d's new version rejected, e deleted, l created then deleted
            _batch(conn, job, shop, "finished", [
                ["sku-c", "fc2", "updated"], ["sku-d", "fd3", "updated"], ["sku-e", None, "deleted"],
                ["sku-g", "fg1", "created"], ["sku-l", "fl1", "created"], ["sku-m", "fm2", "updated"],
            ], 2_000)
            _batch(conn, job, shop, "finished", [["sku-l", None, "deleted"]], 2_100)
            _batch(conn, job, shop, "not_ingested", [["sku-k", "fk1", "created"]], 2_200)
            _batch(conn, job, shop, "abandoned", [["sku-m", "fm3", "updated"]], 3_000)  # m again, after
            # abandoned by 0004's sync (which marked i), and one of 0004's format it did not mark (j)
            _batch(conn, job, shop, "abandoned", [["sku-i", "fi3", "updated", ["color"]],
                                                  ["sku-j", "fj2", "updated", ["size", "color"]]], 4_000)
            _batch(conn, open_job, shop, "sent", [["sku-h", "fh2", "updated"], ["sku-n", None, "deleted"]], 5_000)
            _batch(conn, other_job, other, "abandoned", [["sku-z", "fz1", "created"]], 1_500)
            for rid, fp, rejected, unsettled in [
                ("sku-a", "fa1", None, None), ("sku-c", "fc2", None, None), ("sku-d", "fd1", "fd3", None),
                ("sku-f", "ff1", None, None), ("sku-g", "fg1", None, None), ("sku-h", "fh1", None, None),
                ("sku-i", "fi1", None, ["color"]), ("sku-j", "fj1", None, None), ("sku-m", "fm2", None, None),
                ("sku-n", "fn1", None, None),
            ]:
                _sent(conn, shop, rid, fp, rejected=rejected, unsettled=unsettled)
            _sent(conn, other, "sku-a", "x1")
            conn.execute(insert(catalog_products).values(
                catalog_id=shop, retailer_id="sku-a", data={}, item={}, fingerprint="fa1", created_at=1,
                updated_at=1))

        upgrade(engine)
        assert current_revision(engine) == head_revision()

        s = catalog_items_sent
        with engine.connect() as conn:
            rows = {(c, rid): (fp, unsettled, at) for c, rid, fp, unsettled, at in conn.execute(
                select(s.c.catalog_id, s.c.retailer_id, s.c.fingerprint, s.c.unsettled, s.c.confirmed_at))}
            open_items = conn.execute(
                select(catalog_batches.c["items"]).where(catalog_batches.c.status == "sent")).scalar_one()
        assert {rid: unsettled for (c, rid), (_, unsettled, _) in rows.items() if c == shop} == {
            "sku-a": [],  # a newer version may be in Meta: resent
            "sku-b": [],  # created, never confirmed, product gone: Meta may hold it, deleted next sync
            "sku-c": None,  # confirmed since
            "sku-d": [],  # only rejected since
            "sku-f": [],  # its DELETE abandoned, none since
            "sku-g": None, "sku-h": None, "sku-n": None,  # never in an abandoned batch
            "sku-i": ["color"], "sku-j": ["color", "size"],  # the fields 0004's batches may have given Meta
            "sku-m": [],  # confirmed, then abandoned again
        }  # sku-e and sku-l deleted since, sku-k never taken by Meta: no row
        assert rows[shop, "sku-b"] == (None, [], 1_000)
        assert rows[other, "sku-a"] == ("x1", None, 500) and rows[other, "sku-z"] == (None, [], 1_500)
        assert open_items == [["sku-h", "fh2", "updated", []], ["sku-n", None, "deleted", None]]

        # what the next sync reads: a resent, b deleted (retracted); the open batch can be abandoned
        with engine.begin() as conn:
            assert [p.retailer_id for p in catalog_jobs.product_states(conn, shop, "", 10)] == ["sku-a"]
            assert ("sku-b", None, True) in catalog_jobs.orphans(conn, shop, "", 100)
            assert catalog_jobs.abandon_batches(conn, open_job, 6_000) == 1
            marked = dict(conn.execute(select(s.c.retailer_id, s.c.unsettled).where(
                s.c.catalog_id == shop, s.c.retailer_id.in_(["sku-h", "sku-n"]))).all())
        assert marked == {"sku-h": [], "sku-n": []}
    finally:
        engine.dispose()
