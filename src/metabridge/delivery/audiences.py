"""The audience sync engine: turn due destinations into jobs, claim jobs, send the difference to Meta.

Runs beside the events :class:`~metabridge.delivery.worker.DeliveryWorker` in every ``metabridge worker``
and in ``metabridge serve`` (see :mod:`metabridge.delivery.runner`). Per job kind:

- ``remove``: the rows Meta holds (``destination_members``) whose member is gone, or (mirror mode) whose
  row changed or can no longer be sent; with scope ``all`` (the audience was emptied) every row Meta holds.
  Sent as ``DELETE /{audience}/users`` with the rows in the JSON body, never the URL.
- ``add``: members whose row for the destination's keys is not what Meta holds. ``POST /{audience}/users``.
  In mirror mode, after its remove job succeeded, only the members Meta holds nothing for (the remove job
  has just compared every row Meta holds).
- ``replace``: ``POST /{audience}/usersreplace`` in one session (``batch_seq`` from 1, ``last_batch_flag``
  on the last batch); Meta then holds exactly what the session sent.
- ``rename``: ``POST /{audience}`` with the audience's current name, queued when an audience is renamed, for
  the Meta audiences metabridge created (a Meta audience someone linked keeps the name they gave it).

Both sides are read by keyset pages of at most 10,000 members, and rows are grouped by the schema they are
sent under, so memory is bounded by the batch size, not the audience size. Adds and removes are pipelined:
a batch travels (sent by a second thread) while the next one is read and built and the previous one is
recorded, one request in flight at a time (:class:`_InFlight`). Every acknowledged batch commits its effect
on ``destination_members`` together with the job's counters and lease (see
:mod:`metabridge.store.audience_jobs`): a crashed job resumes from the tables without losing or
double-counting rows.

Errors follow the Graph error table (:mod:`metabridge.graph.error_table`, which holds the audience codes of
the facts file §2.8): TRANSIENT/UNKNOWN and transport failures retry with backoff; RATE_LIMITED (80003,
613, ...) also throttles the ad account for at least Meta's ``estimated_time_to_regain_access``; AUTH
(token, permission, Custom Audience Terms 200/1870090) fails the job with a "needs a person" message and
pauses the destination; INVALID fails the job with Meta's error.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for_futures
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import orjson
from sqlalchemy import Connection, Engine

from metabridge.audiences import MAX_ROWS, RowBuilder, columns_for, replace_body, users_body
from metabridge.audiences.rows import schema_of
from metabridge.config import Settings
from metabridge.credentials import SecretBox, SecretKeyError
from metabridge.delivery.report import internal_detail
from metabridge.delivery.common import Clock, JobWorker
from metabridge.graph import ErrorClass, GraphClient, GraphError, GraphResponse
from metabridge.store import audience_jobs as jobs
from metabridge.store.ad_accounts import StoredAdAccount, get_ad_account, throttle_ad_account
from metabridge.store.audiences import StoredDestination, get_audience, get_destination

__all__ = ["AudienceWorker", "REPLACE_SESSION_MS", "needs_person_message"]

log = logging.getLogger(__name__)

#: Meta closes a replace session 90 minutes after its first batch (§2.5); metabridge stops 5 minutes early.
REPLACE_SESSION_MS = 85 * 60 * 1000
#: Members read per page (a page never exceeds one request's rows).
PAGE = MAX_ROWS
TOS_URL = "https://business.facebook.com/ads/manage/customaudiences/tos/?act={account}"


def needs_person_message(exc: GraphError, account: StoredAdAccount | None, destination_id: int | None = None) -> str:
    """What a person must do about an AUTH-class error (token, permission, terms of service)."""
    code = f"#{exc.code}" + (f"/{exc.subcode}" if exc.subcode is not None else "") if exc.code is not None else f"HTTP {exc.http_status}"
    act = account.account_id if account else "?"
    if (exc.code, exc.subcode) == (200, 1870090) or exc.code in (2655, 2663):
        what = (f"accept the Custom Audience Terms for ad account act_{act} ({TOS_URL.format(account=act)}), "
                "then refresh the token if needed and sync again")
    elif exc.code == 190:
        what = f"give ad account act_{act} a new access token (PATCH /v1/ad-accounts/{account.id if account else '?'})"
    else:
        what = f"grant the token the permissions to manage ad account act_{act}'s custom audiences"
    return f"needs a person: Meta refused ({code}: {exc.message}); {what}"


@dataclass(slots=True)
class _Rejected:
    """Rows metabridge did not send, and why: count, count by reason, up to 100 samples."""

    count: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    samples: list[dict[str, str]] = field(default_factory=list)

    @classmethod
    def load(cls, stored: Any, count: int) -> _Rejected:
        stored = stored or {}
        return cls(count, dict(stored.get("by_reason") or {}), list(stored.get("samples") or []))

    def add(self, member_key: str, reason: str) -> None:
        self.count += 1
        self.by_reason[reason] = self.by_reason.get(reason, 0) + 1
        if len(self.samples) < jobs.MAX_SAMPLES:
            self.samples.append({"member": member_key, "reason": reason})  # email/phone keys are hashes

    def as_values(self) -> dict[str, Any]:
        """The job columns, as a copy (a batch commits them while the next batch adds rejections)."""
        return {"rejected_count": self.count,
                "rejected": {"by_reason": dict(self.by_reason), "samples": list(self.samples)} if self.count else None}


def invalid_samples(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Meta's ``invalid_entry_samples`` (a map row_json -> reason, or a list) as ``[{row, reason}]``."""
    raw = body.get("invalid_entry_samples")
    out: list[dict[str, Any]] = []
    if isinstance(raw, dict):
        for row, reason in raw.items():
            try:
                parsed: Any = orjson.loads(row)
            except orjson.JSONDecodeError:
                parsed = row
            out.append({"row": parsed, "reason": reason})
    elif isinstance(raw, list):
        for item in raw:
            if isinstance(item, dict):
                out.append({"row": item.get("row", item), "reason": item.get("reason")})
            else:
                out.append({"row": item, "reason": None})
    return out


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class _LostLease(Exception):
    """Another worker took the job over (this one was too slow): stop without touching it."""


class _Stopped(Exception):
    """The worker is shutting down: the job is given back, its progress is kept."""


class _Detached(Exception):
    """The destination was detached while the job ran."""


class _InFlight:
    """Batches sent by a second thread while this one builds the next batch and records the previous one.

    One request is in flight at a time and batches go out in the order they were built, so Meta still sees
    one request at a time per destination. :meth:`submit` waits for the previous batch's answer, sends the
    new batch, then records the previous one (``commit``) while the new one travels: the worker's reading,
    building and recording overlap Meta (or the sandbox) answering. Recording stays in this thread, so the
    database work never waits for the interpreter lock held by the building. Each batch still commits only
    once Meta acknowledged it, so a crash loses nothing and counts nothing twice. What a send raised is
    raised here, by the next :meth:`submit` or by :meth:`drain`.
    """

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._pending: tuple[Future[GraphResponse], Callable[[GraphResponse], None]] | None = None

    def submit(self, send: Callable[[], GraphResponse], commit: Callable[[GraphResponse], None]) -> None:
        previous, self._pending = self._pending, None
        answer = previous[0].result() if previous is not None else None
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="metabridge-audience-send")
        self._pending = (self._pool.submit(send), commit)
        if previous is not None and answer is not None:
            previous[1](answer)

    def drain(self) -> None:
        """Wait for the last batch's answer and record it."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending[1](pending[0].result())

    def __enter__(self) -> _InFlight:
        return self

    def __exit__(self, *_: object) -> None:
        try:
            if self._pending is not None:  # failing: let the batch in flight end unrecorded (it is resent later)
                wait_for_futures([self._pending[0]])
                self._pending = None
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)


class _Batch:
    """Rows of one schema on their way to Meta, as parallel lists.

    The per-row objects are then only strings and the cells tuple, which CPython's garbage collector stops
    tracking; a ``(key, cells, fingerprint)`` tuple per row mostly stayed tracked, and 10,000 of them per
    batch set off a full collection every few batches (a tenth of a large sync's time).
    """

    __slots__ = ("schema_key", "keys", "cells", "fingerprints")

    def __init__(self, schema_key: str) -> None:
        self.schema_key = schema_key
        self.keys: list[str] = []
        self.cells: list[Sequence[str]] = []
        self.fingerprints: list[str] = []  # adds only

    def __len__(self) -> int:
        return len(self.keys)


@dataclass(slots=True)
class _Run:
    """One claimed job in progress."""

    job: dict[str, Any]
    destination: StoredDestination
    account: StoredAdAccount
    token: str
    secret: str | None
    columns: tuple[str, ...]
    lease_until: int
    samples: list[dict[str, Any]]
    rejected: _Rejected


class AudienceWorker(JobWorker):
    """Runs audience jobs. Not shared between threads: one per thread (any number per database)."""

    kind = "audience"

    def __init__(
        self, engine: Engine, settings: Settings, box: SecretBox, graph: GraphClient, worker_id: str | None = None,
        *, rng: random.Random | None = None,
    ) -> None:
        super().__init__(engine, settings, box, graph, worker_id, rng=rng)
        self._rng = rng or random.Random()

    # -- loop (run(stop) and run_once() come from JobWorker) -----------------------------------------------
    def claim(self, conn: Connection, now: int) -> dict[str, Any] | None:
        return jobs.claim_job(conn, self.worker_id, now, self.lease_ms)

    def schedule(self, now: int) -> list[int]:
        """Create the jobs of every destination whose sync is due; returns the new job ids."""
        created: list[int] = []
        with self.engine.begin() as conn:
            for row in jobs.due_destinations(conn, now):
                if not jobs.take_due(conn, row.id, now, bool(row.purge_requested)):
                    continue
                if row.purge_requested:
                    created.append(jobs.create_job(conn, audience_id=row.audience_id, destination_id=row.id,
                                                   kind="remove", scope="all", now=now))
                elif row.mode == "mirror":
                    created.append(jobs.create_job(conn, audience_id=row.audience_id, destination_id=row.id,
                                                   kind="remove", now=now))
                created.append(jobs.create_job(conn, audience_id=row.audience_id, destination_id=row.id,
                                               kind="add", now=now))
        return created

    # -- one job -------------------------------------------------------------------------------------------
    def process(self, job: dict[str, Any], clock: Clock) -> None:
        job_id = job["id"]
        now = clock()
        with self.engine.connect() as conn:
            destination = get_destination(conn, job["destination_id"])
            account = get_ad_account(conn, destination.ad_account_id) if destination else None
        if destination is None or account is None or destination.status == "detached":
            with self.engine.begin() as conn:
                jobs.leases.finish(conn, job_id, self.worker_id, now, "failed",
                            error={"class": "cancelled", "message": "destination detached"})
            return
        try:
            token, secret = account.access_token(self.box), account.app_secret(self.box)
        except SecretKeyError as exc:
            self._needs_person(job, destination, str(exc), None, clock())
            return
        fresh = job["kind"] != "replace"  # diff jobs recompute everything on each attempt
        run = _Run(
            job=job, destination=destination, account=account, token=token, secret=secret,
            columns=columns_for(destination.keys), lease_until=now + self.lease_ms,
            samples=list(job.get("invalid_samples") or []),
            rejected=_Rejected() if fresh else _Rejected.load(job.get("rejected"), job.get("rejected_count") or 0),
        )
        try:
            if job["kind"] == "remove":
                self._run_remove(run, clock)
            elif job["kind"] == "add":
                self._run_add(run, clock)
            elif job["kind"] == "rename":
                self._run_rename(run, clock)
            else:
                self._run_replace(run, clock)
        except _LostLease:
            log.warning("audience job %d: lease lost (taken over by another worker)", job_id)
        except _Stopped:
            with self.engine.begin() as conn:
                jobs.leases.release(conn, job_id, self.worker_id)
        except _Detached:
            with self.engine.begin() as conn:
                jobs.leases.finish(conn, job_id, self.worker_id, clock(), "failed",
                            error={"class": "cancelled", "message": "destination detached"})
        except GraphError as exc:
            self._on_graph_error(run, exc, clock())
        except Exception as exc:  # noqa: BLE001 - database error, bug: retried like a transient failure
            log.exception("audience job %d failed", job_id)
            self._retry_or_fail(run, ErrorClass.TRANSIENT, internal_detail(exc, clock()), 0.0, clock())

    def _finish(self, run: _Run, now: int, status: str = "done", *, note: str | None = None,
                error: Any = None, sync_again: bool = False) -> None:
        with self.engine.begin() as conn:
            values: dict[str, Any] = dict(run.rejected.as_values(), invalid_samples=run.samples or None)
            if note is not None:
                values["note"] = note
            values["error"] = error
            jobs.leases.finish(conn, run.job["id"], self.worker_id, now, status, **values)
            dest: dict[str, Any] = {}
            if status != "done" or run.job["kind"] != "rename":  # a rename's success says nothing of the members
                dest.update(last_sync_at=now, last_sync_result="ok" if status == "done" else "failed",
                            last_sync_error=error)
            if sync_again:
                dest["next_sync_at"] = now
            if dest:
                jobs.set_destination(conn, run.destination.id, **dest)
        log.info("audience job %d (%s %s) %s", run.job["id"], run.job["kind"], run.destination.name, status)

    # -- sending -------------------------------------------------------------------------------------------
    def _before_send(self, run: _Run, clock: Clock) -> None:
        if self._stopping():
            raise _Stopped
        now = clock()
        if run.lease_until - now >= self.send_margin_ms:
            return
        with self.engine.begin() as conn:
            if not jobs.leases.renew(conn, run.job["id"], self.worker_id, now, self.lease_ms):
                raise _LostLease
        run.lease_until = now + self.lease_ms

    def _send(self, run: _Run, method: str, edge: str, body: dict[str, Any], clock: Clock) -> GraphResponse:
        """``method /{meta audience}/{edge}`` (``edge`` "": the audience node itself) with a JSON body."""
        self._before_send(run, clock)
        node = run.destination.meta_audience_id
        return self.graph.request(method, f"{node}/{edge}" if edge else node, access_token=run.token,
                                  app_secret=run.secret, json=body)

    def _commit_batch(self, run: _Run, clock: Clock, response: GraphResponse, sent: int, *,
                      rejected: dict[str, Any], adds: _Batch | None = None, removes: Sequence[str] | None = None,
                      cumulative: bool = False, **job_values: Any) -> None:
        """One transaction: what Meta now holds + the job's counters + the lease, only if still ours.

        ``rejected`` is the job's own rejection report as of this batch (a copy: the next batch is being built
        meanwhile).
        """
        body = response.body
        received, invalid = _int(body.get("num_received")), _int(body.get("num_invalid_entries"))
        for sample in invalid_samples(body):
            if len(run.samples) < jobs.MAX_SAMPLES:
                run.samples.append(sample)
        j = jobs.audience_jobs.c
        if cumulative and received > sent:  # a session's running totals (usersreplace)
            counters = {"num_received": received, "num_invalid_entries": invalid}
        else:
            counters = {"num_received": j.num_received + received, "num_invalid_entries": j.num_invalid_entries + invalid}
        now = clock()
        with self.engine.begin() as conn:
            if not jobs.leases.renew(conn, run.job["id"], self.worker_id, now, self.lease_ms,
                              rows_sent=j.rows_sent + sent, batches=j.batches + 1, invalid_samples=run.samples or None,
                              **counters, **rejected, **job_values):
                raise _LostLease
            generation = run.job.get("generation")
            if adds:
                jobs.apply_adds(conn, run.destination.id, adds.schema_key, adds.keys, adds.cells, adds.fingerprints,
                                generation=generation if generation is not None else run.destination.generation,
                                now=now)
            if removes:
                jobs.apply_removes(conn, run.destination.id, removes)
            current = get_destination(conn, run.destination.id)
        run.lease_until = now + self.lease_ms
        if current is None or current.status == "detached":
            raise _Detached

    def _pages(self, fetch: Callable[..., list[Any]], run: _Run, after: str = "") -> Iterator[list[Any]]:
        """Keyset pages of ``fetch`` (a ``jobs.*_candidates`` query) after member key ``after``, one short
        read each: memory holds one page, whatever the audience size."""
        while True:
            with self.engine.connect() as conn:
                page = fetch(conn, run.destination.audience_id, run.destination.id, after, PAGE)
            if not page:
                return
            yield page
            after = page[-1][0]

    # -- remove and add ------------------------------------------------------------------------------------
    def _run_remove(self, run: _Run, clock: Clock) -> None:
        self._send_users(run, "DELETE", self._removals(run), clock)

    def _run_add(self, run: _Run, clock: Clock) -> None:
        fetch = jobs.member_candidates
        if run.destination.mode == "mirror":
            with self.engine.connect() as conn:
                if jobs.remove_checked_held_rows(conn, run.job):  # what Meta holds is current: only new members
                    fetch = partial(jobs.member_candidates, unheld_only=True)
        self._send_users(run, "POST", self._additions(run, fetch), clock)

    def _removals(self, run: _Run) -> Iterator[tuple[str, str, tuple[str, ...], None]]:
        """The rows Meta holds that go: ``(schema_key, member_key, cells, None)``."""
        everything = run.job["scope"] == "all"
        mirror = run.destination.mode == "mirror"
        build, decode = RowBuilder(run.columns, run.destination.keys), jobs.decode
        for page in self._pages(jobs.held_candidates, run):
            for key, schema, cells, fingerprint, identity in page:
                if not everything and identity is not None:
                    if not mirror:
                        continue
                    row = build(decode(identity))
                    if type(row) is tuple and row[2] == fingerprint:
                        continue
                yield schema, key, tuple(decode(cells)), None

    def _additions(self, run: _Run, fetch: Callable[..., list[Any]]) -> Iterator[tuple[str, str, Any, str]]:
        """The members' rows Meta does not hold as they are: ``(schema_key, member_key, cells, fingerprint)``;
        the members that cannot be sent are counted as rejected on the way."""
        build, decode = RowBuilder(run.columns, run.destination.keys), jobs.decode
        for page in self._pages(fetch, run):
            for key, identity, held in page:
                row = build(decode(identity))
                if type(row) is str:
                    run.rejected.add(key, row)
                    continue
                if row[2] != held:
                    yield row[0], key, row[1], row[2]

    def _send_users(self, run: _Run, method: str, rows: Iterator[tuple[str, str, Any, str | None]],
                    clock: Clock) -> None:
        """Send ``rows`` to ``/{audience}/users`` (POST adds them, DELETE removes them) in batches of one schema
        and at most ``MAX_ROWS``, then finish the job. A fingerprint (adds) is what Meta then holds."""
        batches: dict[str, _Batch] = {}
        with _InFlight() as flight:
            for schema_key, key, cells, fingerprint in rows:
                batch = batches.get(schema_key)
                if batch is None:
                    batch = batches[schema_key] = _Batch(schema_key)
                batch.keys.append(key)
                batch.cells.append(cells)
                if fingerprint is not None:
                    batch.fingerprints.append(fingerprint)
                if len(batch.keys) >= MAX_ROWS:
                    self._send_batch(run, method, flight, batches.pop(schema_key), clock)
            for batch in batches.values():
                self._send_batch(run, method, flight, batch, clock)
            flight.drain()
        self._finish(run, clock())

    def _send_batch(self, run: _Run, method: str, flight: _InFlight, batch: _Batch, clock: Clock) -> None:
        body = users_body(schema_of(batch.schema_key), batch.cells)
        rejected = run.rejected.as_values()
        recorded: dict[str, Any] = {"removes": batch.keys} if method == "DELETE" else {"adds": batch}
        flight.submit(lambda: self._send(run, method, "users", body, clock),
                      lambda answer: self._commit_batch(run, clock, answer, len(batch), rejected=rejected,
                                                        **recorded))

    # -- replace -------------------------------------------------------------------------------------------
    def _replace_schema(self, run: _Run) -> tuple[str, ...]:
        """The session's schema: the destination's columns; without EXTERN_ID if no member has one.

        Members without an external id (when the keys hold it) cannot share the session's schema (Meta
        rejects empty EXTERN_ID cells): they are added by the sync that follows the replace.
        """
        if "EXTERN_ID" not in run.columns:
            return run.columns
        with self.engine.connect() as conn:
            if jobs.has_extern_ids(conn, run.destination.audience_id):
                return run.columns
        return tuple(c for c in run.columns if c != "EXTERN_ID")

    def _replace_rows(self, run: _Run, schema_key: str, after: str) -> Iterator[tuple[str, Any]]:
        """``("row", (key, cells, fingerprint))`` for the rows of the session's schema after ``after``,
        ``("rejected", (key, reason))`` for the members that cannot be sent (one at a time: short-lived)."""
        build, decode = RowBuilder(run.columns, run.destination.keys), jobs.decode
        for page in self._pages(jobs.member_candidates, run, after):
            for key, identity, _ in page:
                row = build(decode(identity))
                if type(row) is str:
                    yield "rejected", (key, row)
                elif row[0] == schema_key:
                    yield "row", (key, row[1], row[2])

    def _run_replace(self, run: _Run, clock: Clock) -> None:
        job = run.job
        now = clock()
        resumed_session = job.get("session_id") is not None
        if not resumed_session:
            schema = self._replace_schema(run)
            values = {
                "session_id": self._rng.randrange(1, 2**63), "session_started_at": now,
                "generation": run.destination.generation + 1, "replace_schema": ",".join(schema),
                "batch_seq": 0, "cursor": None,
            }
            with self.engine.begin() as conn:
                if not jobs.leases.renew(conn, job["id"], self.worker_id, now, self.lease_ms, **values):
                    raise _LostLease
            job.update(values)
        elif now - (job.get("session_started_at") or now) > REPLACE_SESSION_MS:
            self._end_replace(run, clock(), partial="the replace session timed out")
            return
        schema_key = job["replace_schema"]
        schema = schema_of(schema_key)
        source = self._replace_rows(run, schema_key, job.get("cursor") or "")
        batch_seq = job.get("batch_seq") or 0

        def next_batch() -> tuple[_Batch, list[tuple[str, str]]]:
            """The next ≤10,000 rows, and the rejections met since the previous batch (counted with it)."""
            batch = _Batch(schema_key)
            rejected: list[tuple[str, str]] = []
            for what, item in source:
                if what == "rejected":
                    rejected.append(item)
                    continue
                key, cells, fingerprint = item
                batch.keys.append(key)
                batch.cells.append(cells)
                batch.fingerprints.append(fingerprint)
                if len(batch.keys) >= MAX_ROWS:
                    break
            return batch, rejected

        current, current_rejected = next_batch()
        if not current and batch_seq == 0:
            for key, reason in current_rejected:
                run.rejected.add(key, reason)
            self._finish(run, clock(), "failed", error={
                "class": "invalid", "message": "nothing to replace with: no member can be sent with this "
                "destination's keys (to remove everything, empty the audience)"})
            return
        # A resumed session whose first batch was never acknowledged may still have reached Meta (crash
        # between Meta's answer and the commit): batch 1 must not be resent in a running session, so the
        # same rows go as batch 2; Meta answers "first batch missing" if batch 1 never arrived.
        guess_second = resumed_session and batch_seq == 0
        while current:
            following, following_rejected = next_batch()
            last = not following
            for key, reason in current_rejected + (following_rejected if last else []):
                run.rejected.add(key, reason)
            seq = 2 if guess_second else batch_seq + 1
            cells = current.cells
            try:
                try:
                    response = self._send(run, "POST", "usersreplace", replace_body(
                        schema, cells, session_id=int(job["session_id"]), batch_seq=seq, last_batch=last), clock)
                except GraphError as exc:
                    if not (guess_second and (exc.code, exc.subcode) == (2650, 1870147)):
                        raise
                    response = self._send(run, "POST", "usersreplace", replace_body(
                        schema, cells, session_id=int(job["session_id"]), batch_seq=1, last_batch=last), clock)
                guess_second = False
            except GraphError as exc:
                if (exc.code, exc.subcode) == (2650, 1870159) and resumed_session:
                    # The session is already finished: Meta got our last batch (the only one with the flag)
                    # before a crash. Its rows, never recorded, are added again by the sync that follows.
                    self._end_replace(run, clock())
                    return
                if (exc.code, exc.subcode) == (2650, 1870158):
                    self._end_replace(run, clock(), partial=f"Meta closed the replace session ({exc.message})")
                    return
                raise
            batch_seq = max(batch_seq + 1, seq)
            job["batch_seq"] = batch_seq
            self._commit_batch(run, clock, response, len(current), rejected=run.rejected.as_values(),
                               adds=current, cumulative=True, batch_seq=batch_seq, cursor=current.keys[-1])
            current, current_rejected = following, following_rejected
        self._end_replace(run, clock())

    def _end_replace(self, run: _Run, now: int, partial: str | None = None) -> None:
        """Meta now holds exactly what the session sent: forget the rest, then sync what is missing."""
        generation = run.job["generation"]
        with self.engine.begin() as conn:
            jobs.drop_other_generations(conn, run.destination.id, generation)
            jobs.set_destination(conn, run.destination.id, generation=generation)
        note = None
        if partial:
            note = f"{partial} after {run.job.get('batch_seq') or 0} batches: Meta holds what was sent; " \
                   "the rest is added by the next sync"
        self._finish(run, now, note=note, sync_again=True)

    # -- rename --------------------------------------------------------------------------------------------
    def _run_rename(self, run: _Run, clock: Clock) -> None:
        """Give the Meta audience the audience's name as it is now (``POST /{audience_id}`` name=...), so a job
        queued by several renames sends the last one."""
        with self.engine.connect() as conn:
            audience = get_audience(conn, run.destination.audience_id)
        if audience is None:  # deleted meanwhile (its destinations and jobs go with it)
            raise _Detached
        self._send(run, "POST", "", {"name": audience.name}, clock)
        self._finish(run, clock(), note=f"the Meta audience is now named '{audience.name}'")

    # -- failures ------------------------------------------------------------------------------------------
    def _needs_person_message(self, run: _Run, exc: GraphError) -> str:
        return needs_person_message(exc, run.account)

    def _pause_for_person(self, run: _Run, message: str, detail: Any, now: int) -> None:
        self._needs_person(run.job, run.destination, message, detail, now, run=run)

    def _retry_later(self, conn: Connection, run: _Run, at: int, detail: Any, throttled_until: int | None) -> None:
        if throttled_until is not None:
            throttle_ad_account(conn, run.account.id, max(throttled_until, run.account.throttled_until or 0))
        jobs.leases.retry_later(conn, run.job["id"], self.worker_id, at, detail)
        jobs.set_destination(conn, run.destination.id, last_sync_error=detail)

    def _needs_person(self, job: dict[str, Any], destination: StoredDestination, message: str, detail: Any,
                      now: int, run: _Run | None = None) -> None:
        error = {**(detail or {}), "class": "needs_person", "message": message}
        with self.engine.begin() as conn:
            values: dict[str, Any] = {"error": error}
            if run is not None:
                values.update(run.rejected.as_values(), invalid_samples=run.samples or None)
            jobs.leases.finish(conn, job["id"], self.worker_id, now, "failed", **values)
            jobs.set_destination(conn, destination.id, status="paused", paused_reason=message,
                                 last_sync_at=now, last_sync_result="failed", last_sync_error=error)
        log.warning("audience destination %d paused: %s", destination.id, message)
