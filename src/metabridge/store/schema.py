"""The database schema, shared by every surface: events, audiences and catalogs.

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

# --- Custom Audiences ---------------------------------------------------------------------------------

#: Meta ad accounts audiences are synced to; tokens encrypted like connections'.
ad_accounts = Table(
    "ad_accounts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("account_id", String(64), nullable=False, doc="Meta ad account id, digits only (no act_)."),
    Column("access_token", Text, nullable=False, doc="Encrypted (Fernet)."),
    Column("app_secret", Text, doc="Encrypted (Fernet)."),
    Column("throttled_until", BigInteger, doc="Rate-limited by Meta: no audience calls before this time."),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

#: An audience: id chosen by the caller, unique name.
audiences = Table(
    "audiences",
    metadata,
    Column("id", String(100), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("description", Text),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

#: Members as given (``data``) and normalized/hashed (``identity``: schema key -> value).
audience_members = Table(
    "audience_members",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("audience_id", String(100), ForeignKey("audiences.id", ondelete="CASCADE"), nullable=False),
    Column("member_key", String(300), nullable=False, doc="external_id:..., email:<sha256> or phone:<sha256>."),
    Column("data", JSON, nullable=False),
    Column("identity", JSON, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)
Index("ux_audience_members_key", audience_members.c.audience_id, audience_members.c.member_key, unique=True)

#: An audience linked to a Meta Custom Audience on an ad account. status: active | paused | detached.
audience_destinations = Table(
    "audience_destinations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("audience_id", String(100), ForeignKey("audiences.id", ondelete="CASCADE"), nullable=False),
    Column("ad_account_id", Integer, ForeignKey("ad_accounts.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("keys", JSON, nullable=False, doc="Member fields sent (email, phone, ...)."),
    Column("mode", String(16), nullable=False, doc="mirror or add_only."),
    Column("meta_audience_id", String(64), nullable=False),
    Column("created_meta_audience", Boolean, nullable=False, server_default=text("false")),
    Column("status", String(16), nullable=False, server_default="active"),
    Column("paused_reason", Text),
    Column("generation", Integer, nullable=False, server_default=text("0"), doc="Bumped by each replace."),
    Column("next_sync_at", BigInteger, doc="A sync is due at this time (debounced member changes)."),
    Column("purge_requested", Boolean, nullable=False, server_default=text("false"),
           doc="The audience was emptied: remove everything Meta holds, even in add_only mode."),
    Column("last_sync_at", BigInteger),
    Column("last_sync_result", String(16)),
    Column("last_sync_error", JSON),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("detached_at", BigInteger),
)
Index("ix_audience_destinations_audience", audience_destinations.c.audience_id, audience_destinations.c.status)

#: What Meta holds for a destination (as far as metabridge sent it): the row last sent per member.
destination_members = Table(
    "destination_members",
    metadata,
    Column("destination_id", Integer, ForeignKey("audience_destinations.id", ondelete="CASCADE"),
           primary_key=True),
    Column("member_key", String(300), primary_key=True),
    Column("row_schema", String(200), nullable=False, doc="Comma-separated schema the row was sent under."),
    Column("row", JSON, nullable=False, doc="The cells sent (hashed where Meta hashes)."),
    Column("fingerprint", String(64), nullable=False),
    Column("generation", Integer, nullable=False),
    Column("synced_at", BigInteger, nullable=False),
)

#: One upload job (add, remove, replace) per sync and destination: its history and its lease.
#: status: queued -> running -> done | failed. A running job with an expired lease is resumed.
audience_jobs = Table(
    "audience_jobs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("audience_id", String(100), ForeignKey("audiences.id", ondelete="CASCADE"), nullable=False),
    Column("destination_id", Integer, ForeignKey("audience_destinations.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False, doc="add, remove or replace."),
    Column("scope", String(16), nullable=False, server_default="diff", doc="diff, or all (emptied audience)."),
    Column("status", String(16), nullable=False),
    Column("trigger", String(16), nullable=False, server_default="changes", doc="changes, manual or replace."),
    Column("created_at", BigInteger, nullable=False),
    Column("started_at", BigInteger),
    Column("finished_at", BigInteger),
    Column("rows_sent", BigInteger, nullable=False, server_default=text("0")),
    Column("batches", Integer, nullable=False, server_default=text("0")),
    Column("num_received", BigInteger, nullable=False, server_default=text("0")),
    Column("num_invalid_entries", BigInteger, nullable=False, server_default=text("0")),
    Column("invalid_samples", JSON, doc="Up to 100 of Meta's invalid_entry_samples: {row, reason}."),
    Column("rejected_count", BigInteger, nullable=False, server_default=text("0")),
    Column("rejected", JSON, doc="Rows metabridge did not send: {by_reason, samples}."),
    Column("error", JSON, doc="Meta's error of the last failed attempt."),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", BigInteger, nullable=False, server_default=text("0")),
    Column("lease_owner", String(64)),
    Column("lease_expires_at", BigInteger),
    Column("session_id", BigInteger, doc="replace: the usersreplace session."),
    Column("session_started_at", BigInteger),
    Column("batch_seq", Integer, nullable=False, server_default=text("0"), doc="replace: last acknowledged batch."),
    Column("cursor", String(300), doc="replace: member_key of the last acknowledged row."),
    Column("generation", Integer, doc="replace: the destination generation this replace builds."),
    Column("replace_schema", String(200), doc="replace: the schema of the session (fixed for the session)."),
    Column("note", Text),
)
Index("ix_audience_jobs_due", audience_jobs.c.status, audience_jobs.c.next_attempt_at)
Index("ix_audience_jobs_audience", audience_jobs.c.audience_id, audience_jobs.c.id)
Index("ix_audience_jobs_destination", audience_jobs.c.destination_id, audience_jobs.c.status)

# --- Catalog ------------------------------------------------------------------------------------------

#: A Meta product catalog kept equal to the products stored here; credentials encrypted like connections'.
#: status: ok | paused (a person must act: token, permission). schedule: "hourly", a cron expression, "off".
catalogs = Table(
    "catalogs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("catalog_id", String(64), nullable=False, doc="Meta product catalog id (digits)."),
    Column("access_token", Text, nullable=False, doc="Encrypted (Fernet)."),
    Column("app_secret", Text, doc="Encrypted (Fernet)."),
    Column("schedule", String(100), nullable=False, server_default="hourly"),
    Column("currency", String(3), doc="ISO 4217 code for prices given as a bare number."),
    Column("status", String(16), nullable=False, server_default="ok"),
    Column("paused_reason", Text),
    Column("next_sync_at", BigInteger, doc="The next scheduled sync (null: schedule off, or paused)."),
    Column("throttled_until", BigInteger, doc="Rate-limited by Meta (80014/80009): no catalog calls before this time."),
    Column("last_sync_at", BigInteger),
    Column("last_sync_result", String(16)),
    Column("last_sync_error", JSON),
    Column("last_job_id", BigInteger),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

#: Connections whose delivered Purchase / ViewContent events feed the catalog's product sets.
catalog_connections = Table(
    "catalog_connections",
    metadata,
    Column("catalog_id", Integer, ForeignKey("catalogs.id", ondelete="CASCADE"), primary_key=True),
    Column("connection_id", Integer, ForeignKey("connections.id", ondelete="CASCADE"), primary_key=True),
)

#: Products as given (``data``) and as Meta's items_batch takes them (``item``), with the item's fingerprint.
catalog_products = Table(
    "catalog_products",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("catalog_id", Integer, ForeignKey("catalogs.id", ondelete="CASCADE"), nullable=False),
    Column("retailer_id", String(100), nullable=False),
    Column("data", JSON, nullable=False),
    Column("item", JSON, nullable=False, doc="The items_batch data object (Meta's field names)."),
    Column("fingerprint", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)
Index("ux_catalog_products_retailer", catalog_products.c.catalog_id, catalog_products.c.retailer_id, unique=True)

#: What Meta holds, as far as it CONFIRMED it (check_batch_request_status finished without an error for the
#: item): one row per retailer id Meta holds, rejected, or may hold (``unsettled``). A crash never loses a
#: confirmation nor invents one.
catalog_items_sent = Table(
    "catalog_items_sent",
    metadata,
    Column("catalog_id", Integer, ForeignKey("catalogs.id", ondelete="CASCADE"), primary_key=True),
    Column("retailer_id", String(100), primary_key=True),
    Column("fingerprint", String(64), doc="Of the item Meta confirmed; null: Meta holds nothing confirmed."),
    Column("rejected_fingerprint", String(64), doc="Meta rejected this version: not resent until it changes."),
    Column("rejected", JSON, doc="Meta's errors for the rejected version."),
    Column("fields", JSON, doc="Optional fields of the confirmed item: an UPDATE empties those it drops."),
    Column("unsettled", JSON(none_as_null=True),
           doc="An abandoned batch carried the item since Meta last confirmed it: the optional fields it may "
               "have given Meta ([] for none, or a DELETE). Null: Meta holds what it confirmed. The next sync "
               "resends the item (emptying these too) or, its product gone, deletes it."),
    Column("confirmed_at", BigInteger, nullable=False),
)

#: Items_batch calls of a sync: the handle Meta returned (stored before polling) and the items it carried,
#: so a resumed sync polls it instead of sending it again. status: sent -> finished | abandoned (outcome never
#: known: its items become ``catalog_items_sent.unsettled``); not_ingested (no handle: Meta took nothing).
catalog_batches = Table(
    "catalog_batches",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("job_id", BigInteger, ForeignKey("catalog_jobs.id", ondelete="CASCADE"), nullable=False),
    Column("catalog_id", Integer, ForeignKey("catalogs.id", ondelete="CASCADE"), nullable=False),
    Column("handle", String(200), doc="Null: Meta ingested nothing (every item failed validation)."),
    Column("status", String(16), nullable=False),
    Column("items", JSON, nullable=False,
           doc="[[retailer_id, fingerprint, kind, optional fields], ...]; a delete has null fingerprint, fields"),
    Column("sent_at", BigInteger, nullable=False),
    Column("finished_at", BigInteger),
    Column("polls", Integer, nullable=False, server_default=text("0")),
)
Index("ix_catalog_batches_job", catalog_batches.c.job_id, catalog_batches.c.status)

#: Product sets synced to Meta: a computed kind (most_sold, ...) or a filter given by the user.
catalog_product_sets = Table(
    "catalog_product_sets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("catalog_id", Integer, ForeignKey("catalogs.id", ondelete="CASCADE"), nullable=False),
    Column("key", String(100), nullable=False, doc="The kind (most_sold, ...) or the user's name for a filter set."),
    Column("kind", String(32), nullable=False, doc="A computed kind, or 'filter'."),
    Column("name", String(200), nullable=False, doc="The set's name in Meta."),
    Column("size", Integer),
    Column("filter", JSON, doc="filter sets: the user's Meta filter."),
    Column("meta_product_set_id", String(64)),
    Column("sent_filter", JSON, doc="The filter Meta last accepted for this set."),
    Column("members", Integer, doc="Products in the set at the last sync (computed kinds)."),
    Column("synced_at", BigInteger),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)
Index("ux_catalog_product_sets_key", catalog_product_sets.c.catalog_id, catalog_product_sets.c.key, unique=True)

#: Purchases and views per connection and content id, counted when Meta accepted the event (its payload is
#: dropped then): what most_sold and most_viewed sets are computed from.
product_activity = Table(
    "product_activity",
    metadata,
    Column("connection_id", Integer, ForeignKey("connections.id", ondelete="CASCADE"), primary_key=True),
    Column("content_id", String(100), primary_key=True),
    Column("purchases", BigInteger, nullable=False, server_default=text("0")),
    Column("views", BigInteger, nullable=False, server_default=text("0")),
    Column("updated_at", BigInteger, nullable=False),
)

#: One sync of a catalog: its counters, Meta's per-item errors and warnings, and its lease.
#: status: queued -> running -> done | failed. A running job with an expired lease is resumed.
catalog_jobs = Table(
    "catalog_jobs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("catalog_id", Integer, ForeignKey("catalogs.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False, server_default="sync"),
    Column("trigger", String(16), nullable=False, doc="schedule or manual."),
    Column("status", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("started_at", BigInteger),
    Column("finished_at", BigInteger),
    Column("items_created", BigInteger, nullable=False, server_default=text("0")),
    Column("items_updated", BigInteger, nullable=False, server_default=text("0")),
    Column("items_deleted", BigInteger, nullable=False, server_default=text("0")),
    Column("items_rejected", BigInteger, nullable=False, server_default=text("0")),
    Column("rejected", JSON, doc="Items Meta rejected: {by_reason, samples: [{retailer_id, method, errors}]}."),
    Column("warnings_count", BigInteger, nullable=False, server_default=text("0")),
    Column("warnings", JSON, doc="Up to 100 of Meta's per-item warnings: {retailer_id, message}."),
    Column("batches", Integer, nullable=False, server_default=text("0")),
    Column("product_sets", JSON, doc="What the sync did to each product set."),
    Column("error", JSON, doc="Meta's error of the last failed attempt (or why the job failed)."),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", BigInteger, nullable=False, server_default=text("0")),
    Column("lease_owner", String(64)),
    Column("lease_expires_at", BigInteger),
    Column("note", Text),
)
Index("ix_catalog_jobs_due", catalog_jobs.c.status, catalog_jobs.c.next_attempt_at)
Index("ix_catalog_jobs_catalog", catalog_jobs.c.catalog_id, catalog_jobs.c.id)
