"""Audiences, their members (as given + normalized) and their destinations (links to Meta audiences).

Members are upserted in bulk by ``(audience_id, member_key)`` with the dialect's ``ON CONFLICT`` (SQLite
and PostgreSQL both have it). Any member change schedules a sync of the audience's linked destinations,
debounced: the first change sets ``next_sync_at`` to now + the debounce delay, later changes join it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, and_, bindparam, case, delete, func, insert, select, update

from metabridge.audiences.members import Member
from metabridge.store.bulk import bulk_upsert, refresh_stale_statistics
from metabridge.store.schema import audience_destinations, audience_jobs, audience_members, audiences
from metabridge.timeutil import now_ms

_CHUNK = 500  # keys per IN (...)

LINKED = ("active", "paused")  # destination statuses that count as "linked"


@dataclass(frozen=True, slots=True)
class StoredAudience:
    id: str
    name: str
    description: str | None
    created_at: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class StoredDestination:
    id: int
    audience_id: str
    ad_account_id: int
    name: str
    keys: tuple[str, ...]
    mode: str
    meta_audience_id: str
    created_meta_audience: bool
    status: str
    paused_reason: str | None
    generation: int
    next_sync_at: int | None
    purge_requested: bool
    last_sync_at: int | None
    last_sync_result: str | None
    last_sync_error: Any
    created_at: int
    updated_at: int
    detached_at: int | None


def _audience(row: Any) -> StoredAudience:
    return StoredAudience(row.id, row.name, row.description, row.created_at, row.updated_at)


def _destination(row: Any) -> StoredDestination:
    m = row._mapping
    return StoredDestination(**{**{k: m[k] for k in StoredDestination.__slots__}, "keys": tuple(m["keys"])})


# -- audiences -----------------------------------------------------------------------------------------
def get_audience(conn: Connection, audience_id: str) -> StoredAudience | None:
    row = conn.execute(select(audiences).where(audiences.c.id == audience_id)).first()
    return _audience(row) if row else None


def audience_named(conn: Connection, name: str) -> StoredAudience | None:
    row = conn.execute(select(audiences).where(audiences.c.name == name)).first()
    return _audience(row) if row else None


def list_audiences(conn: Connection) -> list[StoredAudience]:
    return [_audience(r) for r in conn.execute(select(audiences).order_by(audiences.c.created_at, audiences.c.id))]


def put_audience(
    conn: Connection, audience_id: str, name: str, description: str | None
) -> tuple[StoredAudience, StoredAudience | None]:
    """Create or rename; returns (the audience now, the audience before: None when just created).

    Names are unique by constraint: a taken name raises ``IntegrityError`` (the caller answers 409)."""
    now = now_ms()
    before = get_audience(conn, audience_id)
    if before is None:
        conn.execute(insert(audiences).values(id=audience_id, name=name, description=description,
                                              created_at=now, updated_at=now))
    else:
        conn.execute(update(audiences).where(audiences.c.id == audience_id)
                     .values(name=name, description=description, updated_at=now))
    found = get_audience(conn, audience_id)
    assert found is not None
    return found, before


def delete_audience(conn: Connection, audience_id: str) -> bool:
    """Delete an audience, its members, destinations (all detached: the caller checks) and jobs."""
    conn.execute(delete(audience_jobs).where(audience_jobs.c.audience_id == audience_id))
    conn.execute(delete(audience_destinations).where(audience_destinations.c.audience_id == audience_id))
    conn.execute(delete(audience_members).where(audience_members.c.audience_id == audience_id))
    return bool(conn.execute(delete(audiences).where(audiences.c.id == audience_id)).rowcount)


# -- members -------------------------------------------------------------------------------------------
_MEMBER_COLUMNS = ("audience_id", "member_key", "data", "identity", "created_at", "updated_at")


def _existing_keys(conn: Connection, audience_id: str, keys: Sequence[str]) -> set[str]:
    query = select(audience_members.c.member_key).where(
        audience_members.c.audience_id == audience_id,
        audience_members.c.member_key.in_(bindparam("keys", expanding=True)),  # no per-key SQL expression
    )
    found: set[str] = set()
    for start in range(0, len(keys), _CHUNK):
        found.update(conn.execute(query, {"keys": list(keys[start:start + _CHUNK])}).scalars())
    return found


#: A member ready to store: (member_key, data as JSON, identity as JSON).
MemberRow = tuple[str, str, str]


def member_row(member: Member) -> MemberRow:
    """A member as :func:`upsert_members` stores it.

    A call holds up to 100,000 members between reading and storing them: as tuples of strings (which the
    garbage collector stops tracking) rather than objects holding dicts, they do not set off full
    collections of the API process, which took a third of a large call's time.
    """
    return member.key, orjson.dumps(member.data).decode(), orjson.dumps(member.identity).decode()


def upsert_members(conn: Connection, audience_id: str, rows: Sequence[MemberRow]) -> tuple[int, int]:
    """Add or update members (:func:`member_row`; the last of two with one key wins); returns (added, updated)."""
    latest = {row[0]: row for row in rows}
    if not latest:
        return 0, 0
    existing = _existing_keys(conn, audience_id, sorted(latest))  # in key order: the index read page by page
    now = now_ms()
    bulk_upsert(conn, audience_members, ("audience_id", "member_key"), _MEMBER_COLUMNS,
                ("data", "identity", "updated_at"),
                [(audience_id, key, data, identity, now, now) for key, data, identity in latest.values()])
    refresh_stale_statistics(conn, audience_members, len(latest))
    return len(latest) - len(existing), len(existing)


def delete_members(conn: Connection, audience_id: str, keys: Sequence[str]) -> int:
    statement = delete(audience_members).where(
        audience_members.c.audience_id == audience_id,
        audience_members.c.member_key.in_(bindparam("keys", expanding=True)),
    )
    unique = sorted(set(keys))
    return sum(conn.execute(statement, {"keys": unique[start:start + _CHUNK]}).rowcount or 0
               for start in range(0, len(unique), _CHUNK))


def empty_audience(conn: Connection, audience_id: str) -> int:
    return conn.execute(delete(audience_members).where(audience_members.c.audience_id == audience_id)).rowcount or 0


def count_members(conn: Connection, audience_id: str) -> int:
    return conn.execute(
        select(func.count()).select_from(audience_members).where(audience_members.c.audience_id == audience_id)
    ).scalar_one()


def member_page(conn: Connection, audience_id: str, after: int, limit: int) -> list[dict[str, Any]]:
    """Members in insertion order after the member with id ``after``: {id, member_key, data, updated_at}."""
    rows = conn.execute(
        select(audience_members.c.id, audience_members.c.member_key, audience_members.c.data,
               audience_members.c.created_at, audience_members.c.updated_at)
        .where(audience_members.c.audience_id == audience_id, audience_members.c.id > after)
        .order_by(audience_members.c.id).limit(limit)
    )
    return [dict(r._mapping) for r in rows]


def iter_members(engine: Any, audience_id: str, page: int = 5_000) -> Iterator[dict[str, Any]]:
    """Every member, streamed page by page (one short transaction per page: memory bounded by ``page``)."""
    after = 0
    while True:
        with engine.connect() as conn:
            rows = member_page(conn, audience_id, after, page)
        if not rows:
            return
        yield from rows
        after = rows[-1]["id"]


# -- destinations --------------------------------------------------------------------------------------
def create_destination(
    conn: Connection, *, audience_id: str, ad_account_id: int, name: str, keys: Sequence[str], mode: str,
    meta_audience_id: str, created_meta_audience: bool, sync_at: int,
) -> StoredDestination:
    now = now_ms()
    new_id = conn.execute(
        insert(audience_destinations).values(
            audience_id=audience_id, ad_account_id=ad_account_id, name=name, keys=list(keys), mode=mode,
            meta_audience_id=meta_audience_id, created_meta_audience=created_meta_audience, status="active",
            generation=0, next_sync_at=sync_at, purge_requested=False, created_at=now, updated_at=now,
        ).returning(audience_destinations.c.id)
    ).scalar_one()
    found = get_destination(conn, new_id)
    assert found is not None
    return found


def get_destination(conn: Connection, destination_id: int) -> StoredDestination | None:
    row = conn.execute(select(audience_destinations).where(audience_destinations.c.id == destination_id)).first()
    return _destination(row) if row else None


def list_destinations(conn: Connection, audience_id: str, *, linked_only: bool = False) -> list[StoredDestination]:
    query = select(audience_destinations).where(audience_destinations.c.audience_id == audience_id)
    if linked_only:
        query = query.where(audience_destinations.c.status.in_(LINKED))
    return [_destination(r) for r in conn.execute(query.order_by(audience_destinations.c.id))]


def linked_destinations_of_account(conn: Connection, ad_account_id: int) -> list[StoredDestination]:
    query = select(audience_destinations).where(
        audience_destinations.c.ad_account_id == ad_account_id, audience_destinations.c.status.in_(LINKED)
    )
    return [_destination(r) for r in conn.execute(query.order_by(audience_destinations.c.id))]


def detach_destination(conn: Connection, destination_id: int) -> bool:
    """Stop syncing; queued jobs are failed as cancelled (a running one stops at its next batch)."""
    now = now_ms()
    changed = conn.execute(
        update(audience_destinations)
        .where(audience_destinations.c.id == destination_id, audience_destinations.c.status != "detached")
        .values(status="detached", detached_at=now, updated_at=now, next_sync_at=None)
    ).rowcount
    conn.execute(
        update(audience_jobs)
        .where(audience_jobs.c.destination_id == destination_id, audience_jobs.c.status == "queued")
        .values(status="failed", finished_at=now, error={"class": "cancelled", "message": "destination detached"})
    )
    return bool(changed)


def schedule_sync(conn: Connection, audience_id: str, at_ms: int, *, purge: bool = False,
                  destination_id: int | None = None, resume: bool = False) -> int:
    """Make the linked destinations due at ``at_ms`` (or earlier, if already due earlier)."""
    values: dict[str, Any] = {
        "next_sync_at": case(
            (and_(audience_destinations.c.next_sync_at.is_not(None),
                  audience_destinations.c.next_sync_at <= at_ms), audience_destinations.c.next_sync_at),
            else_=at_ms,
        ),
    }
    if purge:
        values["purge_requested"] = True
    if resume:
        values.update(status="active", paused_reason=None)
    query = update(audience_destinations).where(
        audience_destinations.c.audience_id == audience_id, audience_destinations.c.status.in_(LINKED)
    )
    if destination_id is not None:
        query = query.where(audience_destinations.c.id == destination_id)
    return conn.execute(query.values(**values)).rowcount or 0


def resume_account_destinations(conn: Connection, ad_account_id: int, at_ms: int) -> int:
    """New credentials for an ad account: its paused destinations sync again."""
    return conn.execute(
        update(audience_destinations)
        .where(audience_destinations.c.ad_account_id == ad_account_id, audience_destinations.c.status == "paused")
        .values(status="active", paused_reason=None, next_sync_at=at_ms)
    ).rowcount or 0
