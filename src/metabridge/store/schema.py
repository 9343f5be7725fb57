"""The database schema, shared by every surface (events now; audiences and catalog add their tables here).

Times are integer milliseconds since the epoch (UTC): portable between SQLite and PostgreSQL, cheap to
compare in the claim queries, and exactly what the Conversions API needs. JSON payloads are stored as
the bytes metabridge will send (a built Conversions API event with customer data already hashed), so
a worker assembles a request body without parsing, and no plaintext personal data is kept for events.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    text,
)

#: Deterministic constraint names, so Alembic migrations are identical on SQLite and PostgreSQL.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

#: BIGINT on PostgreSQL, INTEGER on SQLite (only INTEGER PRIMARY KEY is SQLite's auto-increment rowid).
BigId = BigInteger().with_variant(Integer(), "sqlite")

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("prefix", String(16), nullable=False, doc="First characters of the key, to recognise it."),
    Column("key_hash", String(64), nullable=False, unique=True, doc="SHA-256 of the key; the key is never stored."),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger),
)

connections = Table(
    "connections",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("pixel_id", String(64), nullable=False),
    Column("access_token", Text, nullable=False, doc="Encrypted (Fernet); see metabridge.secrets."),
    Column("app_secret", Text, doc="Encrypted (Fernet)."),
    Column("settings", JSON, nullable=False, doc="ConnectionSettings fields other than pixel_id."),
    Column("status", String(16), nullable=False, server_default="ok", doc="ok or paused."),
    Column("paused_reason", Text),
    Column("paused_at", BigInteger),
    Column("throttled_until", BigInteger, doc="Rate-limited by Meta: no sends before this time."),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

#: The durable outbox. status: pending -> sent | invalid | failed; or skipped / deduplicated at ingest.
#: A pending row is *leased* by a worker while lease_expires_at is in the future.
events = Table(
    "events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("connection_id", Integer, ForeignKey("connections.id", ondelete="CASCADE"), nullable=False),
    Column("event_id", String(500), nullable=False),
    Column("event_name", String(200), nullable=False),
    Column("event_time", BigInteger, nullable=False, doc="Seconds, as sent to Meta."),
    Column("received_at", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", String(64)),
    Column("detail", JSON, doc="Field errors, or Meta's error for invalid/failed events."),
    Column("payload", LargeBinary, doc="The built Conversions API event (JSON bytes), for pending rows."),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", BigInteger, nullable=False, server_default=text("0")),
    Column("lease_owner", String(64)),
    Column("lease_expires_at", BigInteger),
    Column("sent_at", BigInteger),
    Column("request_id", BigInteger, doc="delivery_requests.id of the request that delivered it."),
    Column("fbtrace_id", String(64)),
)
Index("ix_events_due", events.c.status, events.c.connection_id, events.c.next_attempt_at)
Index("ix_events_dedup", events.c.connection_id, events.c.event_name, events.c.event_id)
Index("ix_events_received", events.c.connection_id, events.c.received_at)

#: One row per Conversions API request a worker made: the audit trail behind stats and fbtrace ids.
delivery_requests = Table(
    "delivery_requests",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("connection_id", Integer, ForeignKey("connections.id", ondelete="CASCADE"), nullable=False),
    Column("worker", String(64), nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("finished_at", BigInteger, nullable=False),
    Column("event_count", Integer, nullable=False),
    Column("http_status", Integer),
    Column("ok", Boolean, nullable=False),
    Column("events_received", Integer),
    Column("fbtrace_id", String(64)),
    Column("error", JSON),
)
Index("ix_delivery_requests_conn_time", delivery_requests.c.connection_id, delivery_requests.c.started_at)
