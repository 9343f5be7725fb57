"""Every statement the catalog sync runs: jobs (leased), the schedule, the difference, batches, confirmations.

- A catalog is *due* when its ``next_sync_at`` has passed (schedule ``hourly`` or cron; ``off`` never is).
  :func:`take_due` moves ``next_sync_at`` to the next scheduled time in one conditional ``UPDATE``, so of
  several workers exactly one creates the job; jobs are then leased (:class:`~metabridge.store.leased_jobs.LeasedJobs`,
  ``FOR UPDATE SKIP LOCKED`` on PostgreSQL) and the jobs of one catalog run one at a time, oldest first.
- The difference is read in keyset pages of products joined with ``catalog_items_sent`` (what Meta
  confirmed), plus the confirmed items whose product is gone (deletes): memory depends on the page size.
- Each items_batch call is recorded in ``catalog_batches`` with the handle Meta returned and the items it
  carried, *before* it is polled; when ``check_batch_request_status`` says it finished, one transaction
  records what Meta confirmed (and rejected), closes the batch and counts it on the job, only while the
  caller still holds the job's lease. A resumed job polls its open batches instead of sending them again,
  and never resends an item Meta confirmed.
- A batch whose outcome is never known (its job failed, it was given up, or Meta ended it in an error state
  without per-item errors) is *abandoned*: in the same transaction its items become ``unsettled`` in
  ``catalog_items_sent`` (:func:`abandon_batch`), the optional fields it may have given Meta merged with
  those of earlier abandoned batches, so the next sync resends or deletes them; the next confirmation of
  the item makes its state exact again (:func:`confirm`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, NamedTuple

import orjson
from sqlalchemy import Connection, Text, and_, cast, delete, exists, func, insert, not_, null, or_, select, update

from metabridge.catalog.clearing import merge_held
from metabridge.catalog.diff import CHANGE_RULES, ChangeKind
from metabridge.store.bulk import refresh_stale_statistics, upsert
from metabridge.store.leased_jobs import LeasedJobs
from metabridge.store.schema import catalog_batches, catalog_items_sent, catalog_jobs, catalog_products, catalogs

MAX_SAMPLES = 100
_CHUNK = 500

leases = LeasedJobs(catalog_jobs, "catalog_id")


# -- jobs ------------------------------------------------------------------------------------------------
def get_job(conn: Connection, job_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(catalog_jobs).where(catalog_jobs.c.id == job_id)).first()
    return dict(row._mapping) if row else None


def list_jobs(conn: Connection, *, catalog_id: int | None = None, status: str | None = None,
              before: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
    j = catalog_jobs
    query = select(j)
    if catalog_id is not None:
        query = query.where(j.c.catalog_id == catalog_id)
    if status is not None:
        query = query.where(j.c.status == status)
    if before is not None:
        query = query.where(j.c.id < before)
    return [dict(r._mapping) for r in conn.execute(query.order_by(j.c.id.desc()).limit(limit))]


def create_job(conn: Connection, catalog_id: int, *, trigger: str, now: int) -> int:
    return int(conn.execute(
        insert(catalog_jobs).values(catalog_id=catalog_id, kind="sync", trigger=trigger, status="queued",
                                    created_at=now, next_attempt_at=0).returning(catalog_jobs.c.id)
    ).scalar_one())


def queued_job(conn: Connection, catalog_id: int) -> int | None:
    """A job of the catalog that has not started yet (a new sync request joins it)."""
    return conn.execute(
        select(catalog_jobs.c.id).where(catalog_jobs.c.catalog_id == catalog_id, catalog_jobs.c.status == "queued")
        .order_by(catalog_jobs.c.id).limit(1)
    ).scalar()


def request_sync(conn: Connection, catalog_id: int, *, trigger: str, now: int) -> tuple[int, bool]:
    """A sync job for the catalog: the queued one, else a new one. Returns (job id, created)."""
    waiting = queued_job(conn, catalog_id)
    if waiting is not None:
        return waiting, False
    return create_job(conn, catalog_id, trigger=trigger, now=now), True


def due_catalogs(conn: Connection, now: int) -> list[Any]:
    c = catalogs
    return conn.execute(
        select(c.c.id, c.c.schedule, c.c.next_sync_at)
        .where(c.c.status == "ok", c.c.next_sync_at.is_not(None), c.c.next_sync_at <= now)
        .order_by(c.c.next_sync_at, c.c.id)
    ).all()


def take_due(conn: Connection, catalog_id: int, seen_next: int, next_at: int | None) -> bool:
    """Move a due catalog's ``next_sync_at`` from ``seen_next`` to ``next_at``; False if another worker did."""
    return bool(conn.execute(
        update(catalogs).where(catalogs.c.id == catalog_id, catalogs.c.status == "ok",
                               catalogs.c.next_sync_at == seen_next)
        .values(next_sync_at=next_at)
    ).rowcount)


def claim_job(conn: Connection, worker_id: str, now: int, lease_ms: int) -> dict[str, Any] | None:
    """Lease the oldest claimable job of a catalog that is not paused nor throttled."""
    usable = exists().where(
        catalogs.c.id == catalog_jobs.c.catalog_id, catalogs.c.status == "ok",
        or_(catalogs.c.throttled_until.is_(None), catalogs.c.throttled_until <= now),
    )
    return leases.claim(conn, worker_id, now, lease_ms, usable)


# -- the difference ---------------------------------------------------------------------------------------
class ProductState(NamedTuple):
    retailer_id: str
    fingerprint: str
    confirmed: str | None  # the fingerprint Meta confirmed; None: Meta holds nothing confirmed
    rejected: str | None  # a version Meta rejected (not resent until the product changes)
    fields: list[str] | None  # optional fields of the confirmed item (catalog.clearing.held_fields)
    unsettled: list[str] | None  # optional fields abandoned batches may have given Meta; None: settled


def product_states(conn: Connection, catalog_id: int, after: str, limit: int) -> list[ProductState]:
    """Products after ``after`` (by retailer id) whose version is not the one Meta confirmed, or whose Meta
    state is unsettled, unless it is a version Meta rejected; with what Meta confirmed and rejected of them
    and the optional fields it holds or may hold (the database skips the unchanged ones, so a re-sync reads
    only what changed)."""
    p, s = catalog_products, catalog_items_sent
    rows = conn.execute(
        select(p.c.retailer_id, p.c.fingerprint, s.c.fingerprint, s.c.rejected_fingerprint, s.c.fields,
               s.c.unsettled)
        .select_from(p.outerjoin(s, and_(s.c.catalog_id == p.c.catalog_id, s.c.retailer_id == p.c.retailer_id)))
        .where(p.c.catalog_id == catalog_id, p.c.retailer_id > after,
               or_(s.c.fingerprint.is_(None), s.c.fingerprint != p.c.fingerprint, s.c.unsettled.is_not(None)),
               or_(s.c.rejected_fingerprint.is_(None), s.c.rejected_fingerprint != p.c.fingerprint))
        .order_by(p.c.retailer_id).limit(limit)
    ).all()
    return [ProductState(*row) for row in rows]


class Orphan(NamedTuple):
    """A sent-state row whose product is gone."""

    retailer_id: str
    confirmed: str | None  # the fingerprint Meta confirmed; None: Meta holds nothing confirmed
    unsettled: bool  # an abandoned batch carried it: Meta may hold it, confirmed or not


def orphans(conn: Connection, catalog_id: int, after: str, limit: int) -> list[Orphan]:
    """Sent-state rows whose product is gone, after ``after`` (by retailer id)."""
    p, s = catalog_products, catalog_items_sent
    rows = conn.execute(
        select(s.c.retailer_id, s.c.fingerprint, s.c.unsettled.is_not(None))
        .where(s.c.catalog_id == catalog_id, s.c.retailer_id > after,
               not_(exists().where(p.c.catalog_id == s.c.catalog_id, p.c.retailer_id == s.c.retailer_id)))
        .order_by(s.c.retailer_id).limit(limit)
    ).all()
    return [Orphan(rid, fp, bool(unsettled)) for rid, fp, unsettled in rows]


def forget_unsent(conn: Connection, catalog_id: int, retailer_ids: Sequence[str]) -> None:
    """Drop sent-state rows of deleted products Meta cannot hold (only a rejected version, none unsettled)."""
    s = catalog_items_sent
    for start in range(0, len(retailer_ids), _CHUNK):
        conn.execute(delete(s).where(s.c.catalog_id == catalog_id, s.c.fingerprint.is_(None),
                                     s.c.unsettled.is_(None),
                                     s.c.retailer_id.in_(list(retailer_ids[start:start + _CHUNK]))))


def _loads(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # what orjson refuses but the stdlib JSON type accepted (lone surrogates)
        return json.loads(text)


def items_of(conn: Connection, catalog_id: int, retailer_ids: Sequence[str]) -> dict[str, tuple[dict[str, Any], str]]:
    """retailer_id -> (items_batch data, fingerprint) of the stored products among ``retailer_ids``.

    The JSON column is read as text and decoded with orjson (a first sync reads every product).
    """
    p = catalog_products
    found: dict[str, tuple[dict[str, Any], str]] = {}
    for start in range(0, len(retailer_ids), _CHUNK):
        rows = conn.execute(
            select(p.c.retailer_id, cast(p.c.item, Text), p.c.fingerprint)
            .where(p.c.catalog_id == catalog_id, p.c.retailer_id.in_(list(retailer_ids[start:start + _CHUNK])))
        )
        for rid, item, fp in rows:
            found[rid] = (_loads(item), fp)
    return found


# -- batches ---------------------------------------------------------------------------------------------
def add_batch(conn: Connection, *, job_id: int, catalog_id: int, handle: str | None, items: list[list[Any]],
              now: int, status: str = "sent") -> int:
    """Record an items_batch call Meta answered: its handle and its items
    ``[retailer_id, fingerprint, kind, optional fields sent (None for a delete)]``."""
    return int(conn.execute(
        insert(catalog_batches).values(job_id=job_id, catalog_id=catalog_id, handle=handle, status=status,
                                       items=items, sent_at=now).returning(catalog_batches.c.id)
    ).scalar_one())


def open_batches(conn: Connection, job_id: int) -> list[dict[str, Any]]:
    """The job's batches Meta took but whose outcome is not recorded yet, oldest first, without their items
    (:func:`batch_items`): a first sync of N products leaves N / 5,000 batches open at once, whose items
    held together would make the worker's memory grow with the catalog rather than with one batch."""
    b = catalog_batches
    rows = conn.execute(select(*(c for c in b.c if c.name != "items"))
                        .where(b.c.job_id == job_id, b.c.status == "sent").order_by(b.c.id))
    return [dict(r._mapping) for r in rows]


def batch_items(conn: Connection, batch_id: int) -> list[list[Any]]:
    """The items a batch carried: ``[retailer_id, fingerprint, kind, optional fields]`` each."""
    items = conn.execute(select(catalog_batches.c["items"]).where(catalog_batches.c.id == batch_id)).scalar()
    return list(items or [])


def job_batches(conn: Connection, job_id: int) -> list[dict[str, Any]]:
    """{id, handle, status, items (count), sent_at, finished_at, polls} of each batch of the job."""
    b = catalog_batches
    count = func.json_array_length(b.c["items"]).label("items")  # counted by the database: up to 5,000 each
    rows = conn.execute(select(b.c.id, b.c.handle, b.c.status, count, b.c.sent_at, b.c.finished_at, b.c.polls)
                        .where(b.c.job_id == job_id).order_by(b.c.id))
    return [dict(r._mapping) for r in rows]


def count_poll(conn: Connection, batch_id: int) -> None:
    conn.execute(update(catalog_batches).where(catalog_batches.c.id == batch_id)
                 .values(polls=catalog_batches.c.polls + 1))


def close_batch(conn: Connection, batch_id: int, now: int, status: str = "finished") -> bool:
    """Mark a batch done; False when it was already (another worker recorded it)."""
    return bool(conn.execute(
        update(catalog_batches).where(catalog_batches.c.id == batch_id, catalog_batches.c.status == "sent")
        .values(status=status, finished_at=now)
    ).rowcount)


def abandon_batch(conn: Connection, batch: dict[str, Any], now: int) -> bool:
    """Close an open batch (as :func:`open_batches` gives it) whose outcome will never be known and mark its
    items unsettled (:func:`unsettle`); False when it was already closed (another worker recorded it)."""
    if not close_batch(conn, batch["id"], now, status="abandoned"):
        return False
    unsettle(conn, batch["catalog_id"], batch_items(conn, batch["id"]), now)
    return True


def abandon_batches(conn: Connection, job_id: int, now: int) -> int:
    """A failed job's open batches (:func:`abandon_batch`): the next sync sends their items again."""
    return sum(abandon_batch(conn, batch, now) for batch in open_batches(conn, job_id))


def _unsettled_of(conn: Connection, catalog_id: int, retailer_ids: Sequence[str]) -> dict[str, list[str] | None]:
    """retailer_id -> its ``unsettled`` fields, for the ids that have a sent-state row."""
    s = catalog_items_sent
    found: dict[str, list[str] | None] = {}
    for start in range(0, len(retailer_ids), _CHUNK):
        rows = conn.execute(
            select(s.c.retailer_id, s.c.unsettled)
            .where(s.c.catalog_id == catalog_id, s.c.retailer_id.in_(list(retailer_ids[start:start + _CHUNK])))
        )
        found.update((rid, fields) for rid, fields in rows)
    return found


def unsettle(conn: Connection, catalog_id: int, items: Sequence[Sequence[Any]], now: int) -> None:
    """Record that Meta may hold ``items`` (batch records) as their abandoned batch left them: an UPDATE's
    optional fields join the item's unsettled fields (Meta may have applied any of the abandoned batches),
    a DELETE leaves them as they are but unsettled (Meta may or may not have applied it)."""
    before = _unsettled_of(conn, catalog_id, [item[0] for item in items])
    rows = []
    for rid, _, kind, fields in items:
        sent = [] if CHANGE_RULES[ChangeKind(kind)].method == "DELETE" else fields
        rows.append({"catalog_id": catalog_id, "retailer_id": rid, "unsettled": merge_held(before.get(rid), sent),
                     "confirmed_at": now})
    upsert(conn, catalog_items_sent, rows, ("catalog_id", "retailer_id"),
           lambda excluded: {"unsettled": excluded.unsettled})


# -- confirmations ----------------------------------------------------------------------------------------
def confirm(conn: Connection, catalog_id: int, *, upserted: Sequence[tuple[str, str, list[str]]],
            deleted: Sequence[str], rejected: Sequence[tuple[str, str | None, Any]], now: int) -> None:
    """Record Meta's outcome: ``upserted`` (retailer_id, fingerprint, optional fields) items now held
    exactly (no longer unsettled), ``deleted`` ids gone, ``rejected`` (retailer_id, fingerprint, errors)
    versions refused (what Meta held before, its fields and unsettled fields included, stays)."""
    s = catalog_items_sent
    keys = ("catalog_id", "retailer_id")
    held = [{"catalog_id": catalog_id, "retailer_id": rid, "fingerprint": fp, "rejected_fingerprint": None,
             "rejected": None, "fields": fields, "confirmed_at": now} for rid, fp, fields in upserted]
    upsert(conn, s, held, keys,
           lambda excluded: {"fingerprint": excluded.fingerprint, "rejected_fingerprint": null(), "rejected": null(),
                             "fields": excluded.fields, "unsettled": null(),
                             "confirmed_at": excluded.confirmed_at})
    for start in range(0, len(deleted), _CHUNK):
        conn.execute(delete(s).where(s.c.catalog_id == catalog_id, s.c.retailer_id.in_(list(deleted[start:start + _CHUNK]))))
    refused = [{"catalog_id": catalog_id, "retailer_id": rid, "fingerprint": None, "rejected_fingerprint": fp,
                "rejected": errors, "confirmed_at": now} for rid, fp, errors in rejected if fp is not None]
    upsert(conn, s, refused, keys,
           lambda excluded: {"rejected_fingerprint": excluded.rejected_fingerprint, "rejected": excluded.rejected,
                             "confirmed_at": excluded.confirmed_at})
    written = len(held) + len(deleted) + len(refused)
    if written:  # at most 5,000 items per items_batch: a first sync of a large catalog is many such writes
        refresh_stale_statistics(conn, s, written)
