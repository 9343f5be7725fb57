"""Every statement the audience sync engine runs: jobs (with leases), the diff, what Meta holds.

Jobs are leased with :class:`~metabridge.store.leased_jobs.LeasedJobs` (:data:`leases`), the rules the
events outbox and catalog jobs follow too:

- a job is *leased* to one worker (``lease_owner`` + ``lease_expires_at``); a ``running`` job whose lease
  expired (crashed worker) is claimable again and resumes;
- claiming is one ``UPDATE ... WHERE id = (SELECT ... LIMIT 1 [FOR UPDATE SKIP LOCKED]) RETURNING``;
- the jobs of one destination run one at a time, oldest first (a replace is never overlapped by an add);
- each acknowledged batch commits, in ONE transaction, the change to ``destination_members`` (what Meta
  now holds), the job's counters and the lease renewal (``leases.renew``), and only if the caller still
  holds the lease. A crash between Meta's answer and that commit re-sends one batch (adds and removes
  are idempotent at Meta) and never counts it twice; a restart recomputes the remaining difference from
  the tables.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, Text, and_, bindparam, cast, delete, exists, func, insert, not_, select, update

from metabridge.store.bulk import bulk_upsert, refresh_stale_statistics
from metabridge.store.leased_jobs import UNFINISHED, LeasedJobs
from metabridge.store.schema import (
    ad_accounts,
    audience_destinations,
    audience_jobs,
    audience_members,
    destination_members,
)

MAX_SAMPLES = 100
_CHUNK = 500

#: Claim, renew, finish, retry later, release: the jobs of one destination run one at a time.
leases = LeasedJobs(audience_jobs, "destination_id")


def job_dict(row: Any) -> dict[str, Any]:
    return dict(row._mapping)


def get_job(conn: Connection, job_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(audience_jobs).where(audience_jobs.c.id == job_id)).first()
    return job_dict(row) if row else None


def list_jobs(
    conn: Connection, *, audience_id: str | None = None, destination_id: int | None = None,
    status: str | None = None, kind: str | None = None, before: int | None = None, limit: int = 100,
) -> list[dict[str, Any]]:
    query = select(audience_jobs)
    if audience_id is not None:
        query = query.where(audience_jobs.c.audience_id == audience_id)
    if destination_id is not None:
        query = query.where(audience_jobs.c.destination_id == destination_id)
    if status is not None:
        query = query.where(audience_jobs.c.status == status)
    if kind is not None:
        query = query.where(audience_jobs.c.kind == kind)
    if before is not None:
        query = query.where(audience_jobs.c.id < before)
    return [job_dict(r) for r in conn.execute(query.order_by(audience_jobs.c.id.desc()).limit(limit))]


def create_job(
    conn: Connection, *, audience_id: str, destination_id: int, kind: str, now: int, scope: str = "diff",
    trigger: str = "changes", generation: int | None = None,
) -> int:
    return int(conn.execute(
        insert(audience_jobs).values(
            audience_id=audience_id, destination_id=destination_id, kind=kind, scope=scope, status="queued",
            trigger=trigger, created_at=now, next_attempt_at=0, generation=generation,
        ).returning(audience_jobs.c.id)
    ).scalar_one())


def queue_renames(conn: Connection, audience_id: str, now: int) -> list[int]:
    """After a rename: a ``rename`` job for each linked destination whose Meta audience metabridge created
    (named after the audience), unless one is still queued (it will send the newest name).

    The queued jobs relied on are locked (``UPDATE ... RETURNING``) until the rename commits, and only
    those still queued then count. On PostgreSQL (READ COMMITTED) a plain read would see a job a worker is
    claiming as still queued, and a job claimed after that read but before the rename commits reads the old
    name: either way the new name would never be sent. The update waits for a claim in progress and
    re-checks ``status`` once it commits; a later claim skips the locked job (``SKIP LOCKED``) until the
    rename commits, so the worker then reads the new name. SQLite has one writer at a time: no race.
    """
    d, j = audience_destinations, audience_jobs
    targets = conn.execute(
        select(d.c.id).where(d.c.audience_id == audience_id, d.c.status.in_(("active", "paused")),
                             d.c.created_meta_audience.is_(True))
        .order_by(d.c.id)
    ).scalars().all()
    if not targets:
        return []
    queued = set(conn.execute(
        update(j).where(j.c.destination_id.in_(targets), j.c.kind == "rename", j.c.status == "queued")
        .values(status="queued")  # no change: the row lock (and PostgreSQL's re-check of the WHERE) is the point
        .returning(j.c.destination_id)
    ).scalars().all())
    return [create_job(conn, audience_id=audience_id, destination_id=destination_id, kind="rename", now=now,
                       trigger="rename") for destination_id in targets if destination_id not in queued]


def _unfinished_for(destination_id: Any) -> Any:
    return exists().where(audience_jobs.c.destination_id == destination_id, audience_jobs.c.status.in_(UNFINISHED))


def has_unfinished(conn: Connection, destination_id: int, kind: str | None = None) -> bool:
    query = select(audience_jobs.c.id).where(
        audience_jobs.c.destination_id == destination_id, audience_jobs.c.status.in_(UNFINISHED)
    )
    if kind is not None:
        query = query.where(audience_jobs.c.kind == kind)
    return conn.execute(query.limit(1)).first() is not None


def due_destinations(conn: Connection, now: int) -> list[Any]:
    d = audience_destinations
    return conn.execute(
        select(d.c.id, d.c.audience_id, d.c.mode, d.c.purge_requested)
        .where(d.c.status == "active", d.c.next_sync_at.is_not(None), d.c.next_sync_at <= now,
               not_(_unfinished_for(d.c.id)))
        .order_by(d.c.next_sync_at, d.c.id)
    ).all()


def take_due(conn: Connection, destination_id: int, now: int, purge_seen: bool) -> bool:
    """Clear a destination's due mark if it is still due (exactly one scheduler wins).

    ``purge_seen`` must still hold: a purge requested after the caller read the row is not lost (the
    update then matches nothing and the next pass sees it).
    """
    d = audience_destinations
    return bool(conn.execute(
        update(d)
        .where(d.c.id == destination_id, d.c.status == "active", d.c.next_sync_at.is_not(None),
               d.c.next_sync_at <= now, d.c.purge_requested == purge_seen, not_(_unfinished_for(d.c.id)))
        .values(next_sync_at=None, purge_requested=False)
    ).rowcount)


def _runnable(now: int) -> Any:
    """Only jobs of an active destination whose ad account Meta is not throttling are claimed."""
    d = audience_destinations
    return exists().where(d.c.id == audience_jobs.c.destination_id, d.c.status == "active",
                          not_(exists().where(ad_accounts.c.id == d.c.ad_account_id,
                                              ad_accounts.c.throttled_until.is_not(None),
                                              ad_accounts.c.throttled_until > now)))


def claim_job(conn: Connection, worker_id: str, now: int, lease_ms: int) -> dict[str, Any] | None:
    """Lease the oldest claimable job (a crashed worker's running job included) and count the attempt."""
    return leases.claim(conn, worker_id, now, lease_ms, _runnable(now))


# -- the difference ---------------------------------------------------------------------------------------
# Pages of candidates hold JSON as text, decoded by the caller one row at a time (:func:`decode`): a tuple
# holding a dict stays tracked by the garbage collector, and 10,000 of them per page set off a full
# collection every few pages (the page is long-lived enough to reach the oldest generation), which cost a
# large sync more time than decoding did. A tuple of strings is untracked at the first collection.

#: (member_key, identity JSON, fingerprint of the row Meta holds or None)
MemberCandidate = tuple[str, str, "str | None"]
#: (member_key, row_schema, cells JSON, fingerprint, the member's current identity JSON or None: member gone)
HeldCandidate = tuple[str, str, str, str, "str | None"]


def _json_text(column: Any) -> Any:
    """A JSON column read as its text (decoded with orjson: a sync reads every member, and the stdlib
    decoder the JSON type uses was a large share of a sync's CPU time)."""
    return cast(column, Text)


def decode(text: str) -> Any:
    """A JSON column's text (as the candidate queries return it) decoded."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # what orjson refuses but the stdlib JSON type accepted (lone surrogates)
        return json.loads(text)


def _fetch(conn: Connection, query: Any) -> list[tuple[Any, ...]]:
    """All rows as the driver's plain tuples (no per-row SQLAlchemy Row objects: see above)."""
    result = conn.execute(query)
    try:
        return result.cursor.fetchall()
    finally:
        result.close()


def member_candidates(conn: Connection, audience_id: str, destination_id: int, after: str, limit: int, *,
                      unheld_only: bool = False) -> list[MemberCandidate]:
    """Members after ``after`` (by key) with what Meta holds for them: (member_key, identity, fingerprint).

    ``unheld_only``: only the members Meta holds nothing for (fingerprint always None).
    """
    m, d = audience_members, destination_members
    held = and_(d.c.destination_id == destination_id, d.c.member_key == m.c.member_key)
    query = (select(m.c.member_key, _json_text(m.c.identity), d.c.fingerprint)
             .select_from(m.outerjoin(d, held)).where(m.c.audience_id == audience_id, m.c.member_key > after))
    if unheld_only:
        query = query.where(d.c.member_key.is_(None))
    return _fetch(conn, query.order_by(m.c.member_key).limit(limit))


def remove_checked_held_rows(conn: Connection, job: dict[str, Any]) -> bool:
    """Whether the remove job scheduled with this add job (same destination, same moment) is done.

    In mirror mode that job compared every row Meta holds with its member's current row and removed the
    ones that differ, so the add job only needs the members Meta holds nothing for. A member changed since
    then was also scheduled for the next sync, which removes and adds it.
    """
    j = audience_jobs.c
    status = conn.execute(
        select(j.status).where(j.destination_id == job["destination_id"], j.kind == "remove", j.id < job["id"],
                               j.created_at == job["created_at"])
        .order_by(j.id.desc()).limit(1)
    ).scalar()
    return status == "done"


def held_candidates(conn: Connection, audience_id: str, destination_id: int, after: str,
                    limit: int) -> list[HeldCandidate]:
    """Rows Meta holds after ``after`` (by key) with the member's current identity (None: member gone)."""
    m, d = audience_members, destination_members
    return _fetch(conn, select(d.c.member_key, d.c.row_schema, _json_text(d.c.row), d.c.fingerprint,
                               _json_text(m.c.identity))
                  .select_from(d.outerjoin(m, and_(m.c.audience_id == audience_id, m.c.member_key == d.c.member_key)))
                  .where(d.c.destination_id == destination_id, d.c.member_key > after)
                  .order_by(d.c.member_key).limit(limit))


def has_extern_ids(conn: Connection, audience_id: str) -> bool:
    """Whether any member is identified by an external id (its key then starts with ``external_id``)."""
    m = audience_members
    return conn.execute(
        select(m.c.id).where(m.c.audience_id == audience_id, m.c.member_key.like("external_id%")).limit(1)
    ).first() is not None


def held_count(conn: Connection, destination_id: int) -> int:
    return conn.execute(
        select(func.count()).select_from(destination_members).where(destination_members.c.destination_id == destination_id)
    ).scalar_one()


_HELD_COLUMNS = ("destination_id", "member_key", "row_schema", "row", "fingerprint", "generation", "synced_at")
_HELD_UPDATED = ("row_schema", "row", "fingerprint", "generation", "synced_at")


def apply_adds(conn: Connection, destination_id: int, schema_key: str, keys: Sequence[str],
               cells: Sequence[Sequence[str]], fingerprints: Sequence[str], *, generation: int, now: int) -> None:
    """Record that Meta now holds these rows of one schema (parallel sequences: member key, cells, fingerprint)."""
    dumps = orjson.dumps
    bulk_upsert(conn, destination_members, ("destination_id", "member_key"), _HELD_COLUMNS, _HELD_UPDATED,
                [(destination_id, key, schema_key, dumps(row).decode(), fingerprint, generation, now)
                 for key, row, fingerprint in zip(keys, cells, fingerprints)])
    refresh_stale_statistics(conn, destination_members, len(keys))


def apply_removes(conn: Connection, destination_id: int, keys: Sequence[str]) -> None:
    statement = delete(destination_members).where(
        destination_members.c.destination_id == destination_id,
        destination_members.c.member_key.in_(bindparam("keys", expanding=True)),
    )
    for start in range(0, len(keys), _CHUNK):
        conn.execute(statement, {"keys": list(keys[start:start + _CHUNK])})


def drop_other_generations(conn: Connection, destination_id: int, generation: int) -> int:
    """After a replace: Meta holds only what the replace sent."""
    return conn.execute(delete(destination_members).where(
        destination_members.c.destination_id == destination_id, destination_members.c.generation != generation,
    )).rowcount or 0


def set_destination(conn: Connection, destination_id: int, **values: Any) -> None:
    conn.execute(update(audience_destinations).where(audience_destinations.c.id == destination_id).values(**values))
