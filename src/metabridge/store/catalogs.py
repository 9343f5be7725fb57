"""Catalogs (a Meta product catalog each), their products, linked connections and product sets.

A catalog holds encrypted credentials like connections and ad accounts (:mod:`metabridge.store.credentialed`).
Products are stored twice: as the shop gave them (``data``, for listing) and as Meta's items_batch takes them
(``item``, with its ``fingerprint``), which is all a sync compares and sends. Products are upserted in bulk
by ``(catalog_id, retailer_id)`` with the dialect's ``ON CONFLICT``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from metabridge.catalog.products import ProductItem
from metabridge.catalog.schedule import next_run
from metabridge.credentials import SecretBox
from metabridge.store.bulk import refresh_stale_statistics, upsert
from metabridge.store.credentialed import Credentialed, credential_changes, encrypted_credentials, find_by_id_or_name
from metabridge.store.schema import (
    catalog_connections,
    catalog_items_sent,
    catalog_product_sets,
    catalog_products,
    catalogs,
    product_activity,
)
from metabridge.timeutil import now_ms

_CHUNK = 500  # keys per IN (...)


@dataclass(frozen=True, slots=True)
class StoredCatalog(Credentialed):
    id: int
    name: str
    catalog_id: str
    schedule: str
    currency: str | None
    status: str
    paused_reason: str | None
    next_sync_at: int | None
    throttled_until: int | None
    last_sync_at: int | None
    last_sync_result: str | None
    last_sync_error: Any
    last_job_id: int | None
    created_at: int
    updated_at: int
    _access_token: str
    _app_secret: str | None

    def __repr__(self) -> str:  # never show credentials, even encrypted
        return f"StoredCatalog(id={self.id}, name={self.name!r}, catalog_id={self.catalog_id!r})"


_PUBLIC = tuple(name for name in StoredCatalog.__slots__ if not name.startswith("_"))


def _from_row(row: Any) -> StoredCatalog:
    m = row._mapping
    return StoredCatalog(**{k: m[k] for k in _PUBLIC}, _access_token=m["access_token"], _app_secret=m["app_secret"])


# -- catalogs ------------------------------------------------------------------------------------------
def create_catalog(
    conn: Connection, box: SecretBox, *, name: str, catalog_id: str, access_token: str, app_secret: str | None,
    schedule: str, currency: str | None,
) -> StoredCatalog:
    now = now_ms()
    new_id = conn.execute(
        insert(catalogs).values(
            name=name, catalog_id=catalog_id, **encrypted_credentials(box, access_token, app_secret),
            schedule=schedule, currency=currency, status="ok", next_sync_at=next_run(schedule, now),
            created_at=now, updated_at=now,
        ).returning(catalogs.c.id)
    ).scalar_one()
    found = get_catalog(conn, new_id)
    assert found is not None
    return found


def get_catalog(conn: Connection, catalog_id: int) -> StoredCatalog | None:
    row = conn.execute(select(catalogs).where(catalogs.c.id == catalog_id)).first()
    return _from_row(row) if row else None


def find_catalog(conn: Connection, id_or_name: str | int) -> StoredCatalog | None:
    """By metabridge id or by name."""
    return find_by_id_or_name(conn, catalogs, id_or_name, _from_row)


def list_catalogs(conn: Connection) -> list[StoredCatalog]:
    return [_from_row(row) for row in conn.execute(select(catalogs).order_by(catalogs.c.id))]


def update_catalog(
    conn: Connection, box: SecretBox, catalog_id: int, *, name: str | None = None, meta_catalog_id: str | None = None,
    schedule: str | None = None, currency: str | None = None, clear_currency: bool = False,
    access_token: str | None = None, app_secret: str | None = None,
) -> StoredCatalog | None:
    """Apply changes. A new schedule takes effect from now; new credentials resume a paused catalog."""
    now = now_ms()
    values: dict[str, Any] = {"updated_at": now}
    if name is not None:
        values["name"] = name
    if meta_catalog_id is not None:
        values["catalog_id"] = meta_catalog_id
    if schedule is not None:
        values.update(schedule=schedule, next_sync_at=next_run(schedule, now))
    if currency is not None or clear_currency:
        values["currency"] = currency
    credentials = credential_changes(box, access_token=access_token, app_secret=app_secret)
    values.update(credentials)
    if credentials or meta_catalog_id is not None:
        values.update(status="ok", paused_reason=None)
    result = conn.execute(update(catalogs).where(catalogs.c.id == catalog_id).values(**values))
    return get_catalog(conn, catalog_id) if result.rowcount else None


def delete_catalog(conn: Connection, catalog_id: int) -> bool:
    """Forget the catalog, its products, sets, jobs and sent state (the Meta catalog is left as it is)."""
    from metabridge.store.schema import catalog_batches, catalog_jobs

    for table in (catalog_batches, catalog_jobs, catalog_product_sets, catalog_items_sent, catalog_products,
                  catalog_connections):
        conn.execute(delete(table).where(table.c.catalog_id == catalog_id))
    return bool(conn.execute(delete(catalogs).where(catalogs.c.id == catalog_id)).rowcount)


def set_catalog(conn: Connection, catalog_id: int, **values: Any) -> None:
    conn.execute(update(catalogs).where(catalogs.c.id == catalog_id).values(**values))


# -- linked connections --------------------------------------------------------------------------------
def linked_connections(conn: Connection, catalog_id: int) -> list[int]:
    return list(conn.execute(
        select(catalog_connections.c.connection_id).where(catalog_connections.c.catalog_id == catalog_id)
        .order_by(catalog_connections.c.connection_id)
    ).scalars())


def link_connections(conn: Connection, catalog_id: int, connection_ids: Sequence[int]) -> None:
    """The catalog's linked connections become exactly ``connection_ids``."""
    conn.execute(delete(catalog_connections).where(catalog_connections.c.catalog_id == catalog_id))
    unique = list(dict.fromkeys(connection_ids))
    if unique:
        conn.execute(insert(catalog_connections), [{"catalog_id": catalog_id, "connection_id": c} for c in unique])


# -- products ------------------------------------------------------------------------------------------
def _existing(conn: Connection, catalog_id: int, retailer_ids: Sequence[str]) -> dict[str, str]:
    """retailer_id -> stored fingerprint, for the ids that are stored."""
    found: dict[str, str] = {}
    p = catalog_products
    for start in range(0, len(retailer_ids), _CHUNK):
        chunk = list(retailer_ids[start:start + _CHUNK])
        found.update((rid, fp) for rid, fp in conn.execute(
            select(p.c.retailer_id, p.c.fingerprint).where(p.c.catalog_id == catalog_id, p.c.retailer_id.in_(chunk))
        ))
    return found


@dataclass(frozen=True, slots=True)
class ProductsStored:
    created: int
    updated: int
    unchanged: int


def upsert_products(conn: Connection, catalog_id: int, products: Sequence[tuple[dict[str, Any], ProductItem]]) -> ProductsStored:
    """Store ``(as given, validated item)`` pairs; the last of two with one retailer id wins."""
    latest = {item.retailer_id: (raw, item) for raw, item in products}
    if not latest:
        return ProductsStored(0, 0, 0)
    existing = _existing(conn, catalog_id, list(latest))
    now = now_ms()
    rows = [
        {"catalog_id": catalog_id, "retailer_id": rid, "data": raw, "item": item.data,
         "fingerprint": item.fingerprint, "created_at": now, "updated_at": now}
        for rid, (raw, item) in latest.items()
    ]
    upsert(conn, catalog_products, rows, ("catalog_id", "retailer_id"), lambda excluded: {
        "data": excluded.data, "item": excluded.item, "fingerprint": excluded.fingerprint,
        "updated_at": excluded.updated_at})
    refresh_stale_statistics(conn, catalog_products, len(rows))  # every row is written, unchanged ones too
    changed = sum(1 for rid, (_, item) in latest.items() if rid in existing and existing[rid] != item.fingerprint)
    return ProductsStored(len(latest) - len(existing), changed, len(existing) - changed)


def delete_products(conn: Connection, catalog_id: int, retailer_ids: Sequence[str]) -> int:
    removed = 0
    unique = list(dict.fromkeys(retailer_ids))
    for start in range(0, len(unique), _CHUNK):
        removed += conn.execute(delete(catalog_products).where(
            catalog_products.c.catalog_id == catalog_id,
            catalog_products.c.retailer_id.in_(unique[start:start + _CHUNK]),
        )).rowcount or 0
    return removed


def count_products(conn: Connection, catalog_id: int) -> int:
    return conn.execute(
        select(func.count()).select_from(catalog_products).where(catalog_products.c.catalog_id == catalog_id)
    ).scalar_one()


def count_in_meta(conn: Connection, catalog_id: int) -> int:
    """Items Meta confirmed holding."""
    s = catalog_items_sent
    return conn.execute(
        select(func.count()).select_from(s).where(s.c.catalog_id == catalog_id, s.c.fingerprint.is_not(None))
    ).scalar_one()


def product_page(conn: Connection, catalog_id: int, after: int, limit: int) -> list[dict[str, Any]]:
    """Products in insertion order after the product with id ``after``, with what Meta confirmed of them and
    whether an abandoned batch left their state in Meta unknown (``unsettled``)."""
    p, s = catalog_products, catalog_items_sent
    rows = conn.execute(
        select(p.c.id, p.c.retailer_id, p.c.data, p.c.item, p.c.fingerprint, p.c.created_at, p.c.updated_at,
               s.c.fingerprint.label("sent_fingerprint"), s.c.rejected_fingerprint, s.c.rejected,
               s.c.unsettled.is_not(None).label("unsettled"))
        .select_from(p.outerjoin(s, (s.c.catalog_id == p.c.catalog_id) & (s.c.retailer_id == p.c.retailer_id)))
        .where(p.c.catalog_id == catalog_id, p.c.id > after)
        .order_by(p.c.id).limit(limit)
    )
    return [dict(r._mapping) for r in rows]


def set_inputs(conn: Connection, catalog_id: int) -> list[dict[str, Any]]:
    """Every product's items_batch data, for computing product sets (one read per sync that has sets)."""
    p = catalog_products
    return list(conn.execute(
        select(p.c.item).where(p.c.catalog_id == catalog_id).order_by(p.c.retailer_id)
    ).scalars())


# -- product activity ------------------------------------------------------------------------------------
def activity(conn: Connection, connection_ids: Sequence[int]) -> tuple[dict[str, int], dict[str, int]]:
    """(purchases, views) per content id, summed over ``connection_ids``."""
    if not connection_ids:
        return {}, {}
    a = product_activity
    purchases: dict[str, int] = {}
    views: dict[str, int] = {}
    rows = conn.execute(
        select(a.c.content_id, func.sum(a.c.purchases), func.sum(a.c.views))
        .where(a.c.connection_id.in_(list(connection_ids))).group_by(a.c.content_id)
    )
    for content_id, bought, viewed in rows:
        if bought:
            purchases[content_id] = int(bought)
        if viewed:
            views[content_id] = int(viewed)
    return purchases, views


# -- product sets --------------------------------------------------------------------------------------
def get_product_set(conn: Connection, catalog_id: int, key: str) -> dict[str, Any] | None:
    s = catalog_product_sets
    row = conn.execute(select(s).where(s.c.catalog_id == catalog_id, s.c.key == key)).first()
    return dict(row._mapping) if row else None


def list_product_sets(conn: Connection, catalog_id: int) -> list[dict[str, Any]]:
    s = catalog_product_sets
    return [dict(r._mapping) for r in conn.execute(select(s).where(s.c.catalog_id == catalog_id).order_by(s.c.id))]


def put_product_set(
    conn: Connection, catalog_id: int, key: str, *, kind: str, name: str, size: int | None, filter: Any,
) -> tuple[dict[str, Any], bool]:
    """Create or change a set's definition; returns (set, created). The next sync sends it to Meta."""
    now = now_ms()
    s = catalog_product_sets
    existing = get_product_set(conn, catalog_id, key)
    if existing is None:
        conn.execute(insert(s).values(catalog_id=catalog_id, key=key, kind=kind, name=name, size=size,
                                      filter=filter, created_at=now, updated_at=now))
    else:
        conn.execute(update(s).where(s.c.id == existing["id"])
                     .values(kind=kind, name=name, size=size, filter=filter, updated_at=now))
    found = get_product_set(conn, catalog_id, key)
    assert found is not None
    return found, existing is None


def delete_product_set(conn: Connection, set_id: int) -> bool:
    return bool(conn.execute(delete(catalog_product_sets).where(catalog_product_sets.c.id == set_id)).rowcount)


def set_product_set(conn: Connection, set_id: int, **values: Any) -> None:
    conn.execute(update(catalog_product_sets).where(catalog_product_sets.c.id == set_id).values(**values))
