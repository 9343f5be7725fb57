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
from sqlalchemy import Engine

from metabridge.store.db import make_engine
from metabridge.store.migrate import MIGRATIONS, current_revision, head_revision, upgrade
from metabridge.store.schema import metadata

#: Migrations a released version of metabridge ran, with the SHA-256 of their file as released.
RELEASED = {
    "0001_events_outbox_connections_api_keys.py": "92eaa7d9b4034f2bcc42869ec70d32cb2ac2fca62cb638463ac2cefedb80a837",
    "0002_custom_audiences.py": "690290d647be5ff26a8377f8333ceb9fddd87ad77ce987122c9f539dcee14757",
    "0003_catalog.py": "f780c9c740a32e1f291b4df57fa2765732087e54f6929a7bfb0e3a26fdb37d09",
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


@pytest.mark.parametrize("start", [None, "0001", "0002", "0003"], ids=["fresh", "0001", "0002", "0003"])
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
