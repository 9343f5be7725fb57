"""Alembic environment: runs on the connection metabridge hands it (see metabridge.store.migrate)."""

from __future__ import annotations

from alembic import context

from metabridge.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - metabridge always passes its connection
    raise RuntimeError("run migrations through `metabridge db upgrade`")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
