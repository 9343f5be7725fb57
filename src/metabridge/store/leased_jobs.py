"""Leased jobs on any job table: claim, renew, finish, retry later, release.

The rules are those of the events outbox (:mod:`metabridge.delivery.claims`), written once for the job
tables (audience jobs and catalog jobs) with the lease columns (``status``,
``next_attempt_at``, ``attempts``, ``started_at``, ``finished_at``, ``error``, ``lease_owner``,
``lease_expires_at``) and one *group* column whose jobs run one at a time, oldest first:

- a job is leased to one worker; a ``running`` job whose lease expired (crashed worker) is claimable
  again and resumes from what its earlier attempts committed;
- claiming is one ``UPDATE ... WHERE id = (SELECT ... LIMIT 1 [FOR UPDATE SKIP LOCKED]) RETURNING``, so two
  workers never claim the same job and never wait for each other on PostgreSQL (SQLite serializes writers
  with ``BEGIN IMMEDIATE``);
- every later write only touches the job while the caller still holds its lease.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table, and_, exists, func, not_, or_, select, update

__all__ = ["UNFINISHED", "LeasedJobs"]

UNFINISHED = ("queued", "running")


class LeasedJobs:
    """The lease statements for ``table``; jobs with the same ``group`` value run one at a time."""

    def __init__(self, table: Table, group: str) -> None:
        self.table = table
        self.group = table.c[group]

    def claimable(self, now: int, *conditions: Any) -> Any:
        t = self.table
        earlier = t.alias("earlier")
        return and_(
            t.c.status.in_(UNFINISHED),
            t.c.next_attempt_at <= now,
            or_(t.c.lease_expires_at.is_(None), t.c.lease_expires_at < now),
            not_(exists().where(earlier.c[self.group.name] == self.group, earlier.c.id < t.c.id,
                                earlier.c.status.in_(UNFINISHED))),
            *conditions,
        )

    def claim(self, conn: Connection, worker_id: str, now: int, lease_ms: int, *conditions: Any) -> dict[str, Any] | None:
        """Lease the oldest claimable job (a crashed worker's running job included) and count the attempt."""
        t = self.table
        picked = select(t.c.id).where(self.claimable(now, *conditions)).order_by(t.c.id).limit(1)
        if conn.dialect.name == "postgresql":
            picked = picked.with_for_update(skip_locked=True, of=t)
        row = conn.execute(
            update(t)
            .where(t.c.id == picked.scalar_subquery(), self.claimable(now, *conditions))
            .values(status="running", lease_owner=worker_id, lease_expires_at=now + lease_ms,
                    attempts=t.c.attempts + 1, started_at=func.coalesce(t.c.started_at, now))
            .returning(*t.c)
        ).first()
        return dict(row._mapping) if row else None

    def _mine(self, job_id: int, worker_id: str) -> Any:
        t = self.table
        return and_(t.c.id == job_id, t.c.lease_owner == worker_id, t.c.status == "running")

    def renew(self, conn: Connection, job_id: int, worker_id: str, now: int, lease_ms: int, **values: Any) -> bool:
        """Extend the lease (and apply ``values``) if the caller still holds the job."""
        return bool(conn.execute(
            update(self.table).where(self._mine(job_id, worker_id)).values(lease_expires_at=now + lease_ms, **values)
        ).rowcount)

    def finish(self, conn: Connection, job_id: int, worker_id: str, now: int, status: str, **values: Any) -> bool:
        return bool(conn.execute(
            update(self.table).where(self._mine(job_id, worker_id))
            .values(status=status, finished_at=now, lease_owner=None, lease_expires_at=None, **values)
        ).rowcount)

    def retry_later(self, conn: Connection, job_id: int, worker_id: str, next_attempt_at: int, error: Any) -> bool:
        """Give the job back (still ``running``: its progress is kept) to be resumed at ``next_attempt_at``."""
        return bool(conn.execute(
            update(self.table).where(self._mine(job_id, worker_id))
            .values(next_attempt_at=next_attempt_at, error=error, lease_owner=None, lease_expires_at=None)
        ).rowcount)

    def release(self, conn: Connection, job_id: int, worker_id: str) -> bool:
        """Shutting down: give the job back at once without counting the attempt."""
        return bool(conn.execute(
            update(self.table).where(self._mine(job_id, worker_id))
            .values(attempts=self.table.c.attempts - 1, lease_owner=None, lease_expires_at=None)
        ).rowcount)

