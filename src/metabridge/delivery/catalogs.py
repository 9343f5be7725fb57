"""The catalog sync engine: schedule due catalogs, claim sync jobs, send only what changed, confirm it.

Runs as the third thread of every worker runner (:mod:`metabridge.delivery.runner`). One sync job:

1. **Resume.** Batches an earlier attempt of the job sent (their handle is stored) are polled, never sent
   again, and their outcome recorded.
2. **Send.** The products are compared, in keyset pages, with the fingerprint Meta last *confirmed* for each
   (``catalog_items_sent``) by :func:`metabridge.catalog.diff.plan_changes`: created and changed products go
   as ``UPDATE`` with ``allow_upsert`` (an optional field Meta holds or may hold that the product dropped is
   sent empty, :mod:`metabridge.catalog.clearing`: an UPDATE changes only the fields it carries), confirmed
   items whose product is gone as ``DELETE``. Items an abandoned batch carried (*unsettled*: Meta may hold
   them as that batch left them) are resent whatever their fingerprint, or, their product gone, *retracted*
   with a ``DELETE`` that succeeds even if Meta answers that it has no such item. All go in
   ``items_batch`` calls of at most 5,000 requests under the 28 MB limit
   (:func:`metabridge.catalog.batches.chunk_requests`). A version Meta rejected is not sent again until the
   product changes. Each call's handle is stored, with the items it carried, before anything is polled.
3. **Confirm.** Each handle is polled with ``check_batch_request_status`` (back-off from
   :data:`POLL_FIRST_S` to :data:`POLL_MAX_S`) until Meta says it finished; then, in one transaction, the
   items Meta accepted become the confirmed state (fingerprint and optional fields, both stored with the
   batch when it was sent), the rejected ones are recorded with Meta's errors, and the
   job counts them (created, updated, deleted, rejected with reasons, warnings). A handle given up after
   :data:`POLL_GIVE_UP_MS`, a job that fails with open handles, or a batch Meta ends in an error state
   without per-item errors leaves its items' outcome unknown: the batch is *abandoned* and its items
   become unsettled (:func:`metabridge.store.catalog_jobs.abandon_batch`).
4. **Product sets.** Each computed set (:mod:`metabridge.catalog.product_sets`) is recomputed from the
   products and the purchases / views counted from the linked connections' delivered events; its Meta filter
   (``retailer_id is_any [...]``) is written only when the membership changed. A create answered 10803 (a
   set with that filter exists) adopts the existing set.

Errors follow the Graph error table: rate limits (80014, 80009, ...) throttle the catalog for at least
Meta's estimate and the job resumes later; transient errors back off; token and permission errors fail the
job with a "needs a person" message and pause the catalog until new credentials; other rejections fail
the job with Meta's error.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection, Engine

from metabridge.catalog import (
    CHANGE_RULES,
    MAX_REQUESTS,
    ChangeKind,
    Changes,
    canonical_filter,
    chunk_requests,
    clear_dropped,
    compute_members,
    delete_request,
    encode_body,
    held_fields,
    merge_held,
    plan_changes,
    product_info,
    retailer_id_filter,
    upsert_request,
)
from metabridge.catalog.schedule import next_run
from metabridge.config import Settings
from metabridge.credentials import SecretBox, SecretKeyError
from metabridge.delivery.common import Clock, JobWorker
from metabridge.delivery.report import error_detail, internal_detail
from metabridge.graph import ErrorClass, GraphClient, GraphError, GraphResponse
from metabridge.store import catalog_jobs as jobs
from metabridge.store import catalogs as store
from metabridge.store.catalogs import StoredCatalog

__all__ = ["CatalogWorker", "needs_person_message"]

log = logging.getLogger(__name__)

#: Products compared per page (a page never holds more than one call's requests).
PAGE = MAX_REQUESTS
#: Polling a handle: first wait, longest wait, and when to give a handle up (its items are sent again).
POLL_FIRST_S = 0.05
POLL_MAX_S = 10.0
POLL_GIVE_UP_MS = 2 * 3_600_000
#: check_batch_request_status statuses meaning "still working" (§6.1: neither finished nor final).
IN_PROGRESS = frozenset({"started", "dispatched", "in_progress", "pending", "created"})
STATUS_FIELDS = "handle,status,errors,errors_total_count,warnings,warnings_total_count,ids_of_invalid_requests"
DUPLICATE_FILTER = 10803


def needs_person_message(exc: GraphError, catalog: StoredCatalog) -> str:
    """What a person must do about an AUTH-class error on a catalog."""
    code = (f"#{exc.code}" + (f"/{exc.subcode}" if exc.subcode is not None else "")) if exc.code is not None \
        else f"HTTP {exc.http_status}"
    if exc.code == 190:
        what = f"give catalog '{catalog.name}' a new access token (PATCH /v1/catalogs/{catalog.id})"
    else:
        what = (f"grant the token catalog_management permission on Meta catalog {catalog.catalog_id} "
                f"(then PATCH /v1/catalogs/{catalog.id} or POST /v1/catalogs/{catalog.id}/sync)")
    return f"needs a person: Meta refused ({code}: {exc.message}); {what}"


@dataclass(slots=True)
class _Report:
    """Per-item outcomes of a job: counts, reasons, bounded samples (persisted with every confirmation)."""

    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    rejected_samples: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def load(cls, job: dict[str, Any]) -> _Report:
        rejected = job.get("rejected") or {}
        return cls(dict(rejected.get("by_reason") or {}), list(rejected.get("samples") or []),
                   list(job.get("warnings") or []))

    def reject(self, retailer_id: str, method: str, messages: list[str]) -> None:
        for message in messages or ["rejected by Meta"]:
            self.rejected_by_reason[message] = self.rejected_by_reason.get(message, 0) + 1
        if len(self.rejected_samples) < jobs.MAX_SAMPLES:
            self.rejected_samples.append({"retailer_id": retailer_id, "method": method, "errors": messages})

    def warn(self, retailer_id: str | None, message: str) -> None:
        if len(self.warnings) < jobs.MAX_SAMPLES:
            self.warnings.append({"retailer_id": retailer_id, "message": message})

    def values(self) -> dict[str, Any]:
        rejected = {"by_reason": self.rejected_by_reason, "samples": self.rejected_samples} \
            if self.rejected_by_reason else None
        return {"rejected": rejected, "warnings": self.warnings or None}


class _LostLease(Exception):
    """Another worker took the job over: stop without touching it."""


class _Stopped(Exception):
    """The worker is shutting down: the job is given back, its progress (handles, confirmations) kept."""


class _Gone(Exception):
    """The catalog was deleted while the job ran."""


@dataclass(slots=True)
class _Run:
    job: dict[str, Any]
    catalog: StoredCatalog
    token: str
    secret: str | None
    lease_until: int
    report: _Report
    sent_calls: int = 0


def _messages(entries: Any) -> list[str]:
    if not isinstance(entries, list):
        return []
    return [str(e.get("message")) if isinstance(e, dict) else str(e) for e in entries]


@dataclass(slots=True)
class _Outcomes:
    """What Meta's answer for some records of a batch does to the sent state and to the job's counters."""

    upserted: list[tuple[str, str, list[str]]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str | None, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: {"created": 0, "updated": 0, "deleted": 0})
    noted: int = 0  # retractions Meta answered with an error, reported as warnings

    def counters(self, warned: int = 0) -> dict[str, Any]:
        """The job's counter columns, incremented by these outcomes (for ``leases.renew``)."""
        j = jobs.catalog_jobs.c
        return {"items_created": j.items_created + self.counts["created"],
                "items_updated": j.items_updated + self.counts["updated"],
                "items_deleted": j.items_deleted + self.counts["deleted"],
                "items_rejected": j.items_rejected + len(self.rejected),
                "warnings_count": j.warnings_count + warned + self.noted}


def _outcomes(report: _Report, records: list[list[Any]], errors_by_id: dict[str, list[str]],
              invalid: set[str]) -> _Outcomes:
    """Sort ``records`` by Meta's answer: the ``invalid`` ones are rejected, with Meta's messages, unless
    their kind reaches its goal anyway (a retraction: :data:`~metabridge.catalog.diff.CHANGE_RULES`); the
    others are done."""
    outcomes = _Outcomes()
    for rid, fp, kind, fields in records:
        rule = CHANGE_RULES[ChangeKind(kind)]
        if rid in invalid:
            messages = errors_by_id.get(rid) or ["rejected by Meta (no message given)"]
            if not rule.error_is_done:
                report.reject(rid, rule.method, messages)
                outcomes.rejected.append((rid, fp, messages))
                continue
            report.warn(rid, "DELETE of an item Meta may hold but never confirmed: taken as absent "
                             f"(Meta answered: {'; '.join(messages)})")
            outcomes.noted += 1
        outcomes.counts[rule.counter] += 1
        if rule.method == "DELETE":
            outcomes.deleted.append(rid)
        else:
            outcomes.upserted.append((rid, fp, fields))
    return outcomes


class CatalogWorker(JobWorker):
    """Runs catalog sync jobs. One per thread; any number per database."""

    kind = "catalog"

    def __init__(
        self, engine: Engine, settings: Settings, box: SecretBox, graph: GraphClient, worker_id: str | None = None,
        *, rng: random.Random | None = None, sleep: Any = None,
    ) -> None:
        super().__init__(engine, settings, box, graph, worker_id, rng=rng)
        self._sleep = sleep

    # -- loop (run(stop) and run_once() come from JobWorker) -----------------------------------------------
    def claim(self, conn: Connection, now: int) -> dict[str, Any] | None:
        return jobs.claim_job(conn, self.worker_id, now, self.lease_ms)

    def schedule(self, now: int) -> list[int]:
        """A sync job for every catalog whose scheduled time has come; returns the new job ids."""
        created: list[int] = []
        with self.engine.begin() as conn:
            for row in jobs.due_catalogs(conn, now):
                if not jobs.take_due(conn, row.id, row.next_sync_at, next_run(row.schedule, now)):
                    continue
                job_id, new = jobs.request_sync(conn, row.id, trigger="schedule", now=now)
                if new:
                    created.append(job_id)
        return created

    def _wait(self, seconds: float) -> None:
        if self._sleep is not None:
            self._sleep(seconds)
        elif self._stop is not None:
            self._stop.wait(seconds)
        else:
            time.sleep(seconds)

    # -- one job -------------------------------------------------------------------------------------------
    def process(self, job: dict[str, Any], clock: Clock) -> None:
        job_id = job["id"]
        with self.engine.connect() as conn:
            catalog = store.get_catalog(conn, job["catalog_id"])
        if catalog is None:
            return  # deleted with its jobs
        try:
            token, secret = catalog.access_token(self.box), catalog.app_secret(self.box)
        except SecretKeyError as exc:
            self._needs_person(job, catalog, str(exc), None, clock())
            return
        run = _Run(job=job, catalog=catalog, token=token, secret=secret, lease_until=clock() + self.lease_ms,
                   report=_Report.load(job))
        try:
            self._confirm_open(run, clock)  # a resumed job: what it sent before is polled, not resent
            self._send_changes(run, clock)
            self._confirm_open(run, clock)
            sets = self._sync_sets(run, clock)
            self._finish(run, clock(), "done", product_sets=sets)
        except _LostLease:
            log.warning("catalog job %d: lease lost (taken over by another worker)", job_id)
        except _Stopped:
            with self.engine.begin() as conn:
                jobs.leases.release(conn, job_id, self.worker_id)
        except _Gone:
            log.info("catalog job %d: the catalog was deleted", job_id)
        except GraphError as exc:
            self._on_graph_error(run, exc, clock())
        except Exception as exc:  # noqa: BLE001 - database error, bug: retried like a transient failure
            log.exception("catalog job %d failed", job_id)
            self._retry_or_fail(run, ErrorClass.TRANSIENT, internal_detail(exc, clock()), 0.0, clock())

    def _finish(self, run: _Run, now: int, status: str, *, error: Any = None, **values: Any) -> None:
        with self.engine.begin() as conn:
            if not jobs.leases.finish(conn, run.job["id"], self.worker_id, now, status, error=error,
                                      **run.report.values(), **values):
                log.warning("catalog job %d: lease lost before it could be marked %s", run.job["id"], status)
                return
            if status != "done":
                jobs.abandon_batches(conn, run.job["id"], now)
            store.set_catalog(conn, run.catalog.id, last_sync_at=now, last_job_id=run.job["id"],
                              last_sync_result="ok" if status == "done" else "failed", last_sync_error=error)
        log.info("catalog job %d (%s) %s", run.job["id"], run.catalog.name, status)

    # -- Graph calls ---------------------------------------------------------------------------------------
    def _before_call(self, run: _Run, clock: Clock) -> None:
        if self._stopping():
            raise _Stopped
        now = clock()
        if run.lease_until - now >= self.send_margin_ms:
            return
        with self.engine.begin() as conn:
            if not jobs.leases.renew(conn, run.job["id"], self.worker_id, now, self.lease_ms):
                if store.get_catalog(conn, run.catalog.id) is None:
                    raise _Gone
                raise _LostLease
        run.lease_until = now + self.lease_ms

    def _call(self, run: _Run, clock: Clock, method: str, path: str, **kwargs: Any) -> GraphResponse:
        self._before_call(run, clock)
        return self.graph.request(method, path, access_token=run.token, app_secret=run.secret, **kwargs)

    # -- 2. send ---------------------------------------------------------------------------------------------
    def _changes(self, run: _Run) -> Iterator[tuple[dict[str, Any], list[Any]]]:
        """``(request, [retailer_id, fingerprint, kind, optional fields])`` for every item to send, in
        retailer-id order. An UPDATE empties the optional fields Meta holds or may hold (confirmed, or given
        by an abandoned batch) that the product dropped."""
        catalog_id = run.catalog.id
        after = ""
        while True:
            with self.engine.connect() as conn:
                page = jobs.product_states(conn, catalog_id, after, PAGE)
            if not page:
                break
            after = page[-1].retailer_id
            current = {p.retailer_id: p.fingerprint for p in page}
            # What Meta last answered for each item: the confirmed version, or a rejected one that is still
            # the current version (not resent until the product changes).
            sent = {p.retailer_id: (p.rejected if p.rejected == p.fingerprint else p.confirmed)
                    for p in page if p.confirmed is not None or p.rejected == p.fingerprint}
            unsettled = {p.retailer_id for p in page if p.unsettled is not None}
            changes: Changes = plan_changes(current, sent, unsettled)
            wanted = changes.created + changes.updated
            if not wanted:
                continue
            held = {p.retailer_id: merge_held(p.fields if p.confirmed is not None else None, p.unsettled)
                    for p in page}
            with self.engine.connect() as conn:
                items = jobs.items_of(conn, catalog_id, wanted)
            created = set(changes.created)
            for rid in sorted(wanted):
                found = items.get(rid)
                if found is None:  # deleted meanwhile: the next sync deletes it if Meta has it
                    continue
                data, fp = found
                kind = "created" if rid in created else "updated"
                yield upsert_request(clear_dropped(data, held.get(rid))), [rid, fp, kind, held_fields(data)]
        after = ""
        while True:
            with self.engine.connect() as conn:
                page = jobs.orphans(conn, catalog_id, after, PAGE)
            if not page:
                return
            after = page[-1].retailer_id
            not_in_meta = [o.retailer_id for o in page if o.confirmed is None and not o.unsettled]
            if not_in_meta:
                with self.engine.begin() as conn:
                    jobs.forget_unsent(conn, catalog_id, not_in_meta)
            changes = plan_changes({}, {o.retailer_id: o.confirmed for o in page if o.confirmed is not None},
                                   {o.retailer_id for o in page if o.unsettled})
            kinds = {**dict.fromkeys(changes.deleted, ChangeKind.DELETED),
                     **dict.fromkeys(changes.retracted, ChangeKind.RETRACTED)}
            for rid in sorted(kinds):
                yield delete_request(rid), [rid, None, kinds[rid].value, None]

    def _send_changes(self, run: _Run, clock: Clock) -> None:
        pending: list[tuple[dict[str, Any], list[Any]]] = []
        for change in self._changes(run):
            pending.append(change)
            if len(pending) >= MAX_REQUESTS:
                self._send_pending(run, pending, clock)
                pending = []
        if pending:
            self._send_pending(run, pending, clock)

    def _send_pending(self, run: _Run, pending: list[tuple[dict[str, Any], list[Any]]], clock: Clock) -> None:
        start = 0
        for chunk in chunk_requests([request for request, _ in pending]):
            records = [record for _, record in pending[start:start + len(chunk)]]
            start += len(chunk)
            response = self._call(run, clock, "POST", f"{run.catalog.catalog_id}/items_batch",
                                  json=encode_body(chunk))
            self._record_batch(run, clock, response, records)

    def _record_batch(self, run: _Run, clock: Clock, response: GraphResponse, records: list[list[Any]]) -> None:
        """Store the handle and the items (minus those Meta refused at once) before anything is polled."""
        body = response.body
        handles = body.get("handles") if isinstance(body.get("handles"), list) else []
        handle = str(handles[0]) if handles else None
        by_id = {record[0]: record for record in records}
        refused: dict[str, list[str]] = {}
        warned = 0
        for status in body.get("validation_status") or []:
            if not isinstance(status, dict):
                continue
            rid = status.get("retailer_id")
            errors = _messages(status.get("errors"))
            if errors and rid in by_id:
                refused[rid] = errors
            if handle is None:  # with a handle, the finished status repeats the warnings: counted then
                for message in _messages(status.get("warnings")):
                    warned += 1
                    run.report.warn(rid, message)
        kept = [record for record in records if record[0] not in refused]
        outcomes = _outcomes(run.report, [by_id[rid] for rid in refused], refused, set(refused))
        now = clock()
        with self.engine.begin() as conn:
            j = jobs.catalog_jobs.c
            if not jobs.leases.renew(conn, run.job["id"], self.worker_id, now, self.lease_ms,
                                     batches=j.batches + 1, **outcomes.counters(warned), **run.report.values()):
                raise _LostLease
            jobs.confirm(conn, run.catalog.id, upserted=outcomes.upserted, deleted=outcomes.deleted,
                         rejected=outcomes.rejected, now=now)
            if handle is None:  # Meta ingested nothing: the items stay unconfirmed (sent again next sync)
                jobs.add_batch(conn, job_id=run.job["id"], catalog_id=run.catalog.id, handle=None, items=kept,
                               now=now, status="not_ingested")
            elif kept:
                jobs.add_batch(conn, job_id=run.job["id"], catalog_id=run.catalog.id, handle=handle, items=kept,
                               now=now)
        run.lease_until = now + self.lease_ms
        run.sent_calls += 1

    # -- 1 and 3. confirm --------------------------------------------------------------------------------------
    def _confirm_open(self, run: _Run, clock: Clock) -> None:
        with self.engine.connect() as conn:
            batches = jobs.open_batches(conn, run.job["id"])
        for batch in batches:
            self._poll_batch(run, batch, clock)

    def _poll_batch(self, run: _Run, batch: dict[str, Any], clock: Clock) -> None:
        delay = POLL_FIRST_S
        while True:
            response = self._call(run, clock, "GET", f"{run.catalog.catalog_id}/check_batch_request_status",
                                  params={"handle": batch["handle"], "load_ids_of_invalid_requests": "true",
                                          "fields": STATUS_FIELDS})
            data = response.body.get("data")
            status = data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else {}
            state = str(status.get("status") or "").lower()
            if state and state not in IN_PROGRESS:
                self._confirm_batch(run, batch, status, clock)
                return
            if clock() - batch["sent_at"] > POLL_GIVE_UP_MS:
                log.warning("catalog job %d: handle %s still %r after 2 h; its items are sent again next sync",
                            run.job["id"], batch["handle"], state)
                self._abandon_unknown_batch(run, batch, f"is still {state or 'without a status'} after 2 h", clock)
                return
            with self.engine.begin() as conn:
                jobs.count_poll(conn, batch["id"])
            self._wait(delay)
            delay = min(delay * 2, POLL_MAX_S)

    def _confirm_batch(self, run: _Run, batch: dict[str, Any], status: dict[str, Any], clock: Clock) -> None:
        """Meta finished a handle: every item it does not list as invalid is confirmed."""
        errors_by_id: dict[str, list[str]] = {}
        for entry in status.get("errors") or []:
            if isinstance(entry, dict) and entry.get("id") is not None:
                errors_by_id.setdefault(str(entry["id"]), []).append(str(entry.get("message")))
        invalid = {str(i) for i in status.get("ids_of_invalid_requests") or []} | set(errors_by_id)
        state = str(status.get("status") or "").lower()
        if state not in ("finished", "complete", "completed") and not invalid:
            self._abandon_unknown_batch(run, batch, f"ended {state or 'without a status'}", clock)
            return
        for entry in status.get("warnings") or []:
            if isinstance(entry, dict):
                run.report.warn(entry.get("id"), str(entry.get("message")))
        warned = status.get("warnings_total_count")
        warned = warned if isinstance(warned, int) else len(status.get("warnings") or [])
        with self.engine.connect() as conn:
            records = jobs.batch_items(conn, batch["id"])  # one batch's items in memory at a time
        outcomes = _outcomes(run.report, records, errors_by_id, invalid)
        now = clock()
        with self.engine.begin() as conn:
            if not jobs.leases.renew(conn, run.job["id"], self.worker_id, now, self.lease_ms,
                                     **outcomes.counters(warned), **run.report.values()):
                raise _LostLease
            if not jobs.close_batch(conn, batch["id"], now):
                raise _LostLease
            jobs.confirm(conn, run.catalog.id, upserted=outcomes.upserted, deleted=outcomes.deleted,
                         rejected=outcomes.rejected, now=now)
        run.lease_until = now + self.lease_ms

    def _abandon_unknown_batch(self, run: _Run, batch: dict[str, Any], what: str, clock: Clock) -> None:
        """Meta ended a handle in a state other than finished (``error``: "some of the requests might not
        have finished successfully"; ``canceled``) without naming an item, or never finished it: which items
        it applied is unknown, so the batch is abandoned (its items unsettled, sent again next sync), not
        confirmed; the job's report says so."""
        run.report.warn(None, f"items_batch handle {batch['handle']} {what}: "
                              "which of its items Meta applied is unknown; they are sent again next sync")
        now = clock()
        j = jobs.catalog_jobs.c
        with self.engine.begin() as conn:
            if not jobs.leases.renew(conn, run.job["id"], self.worker_id, now, self.lease_ms,
                                     warnings_count=j.warnings_count + 1, **run.report.values()):
                raise _LostLease
            if not jobs.abandon_batch(conn, batch, now):
                raise _LostLease
        run.lease_until = now + self.lease_ms

    # -- 4. product sets ---------------------------------------------------------------------------------------
    def _sync_sets(self, run: _Run, clock: Clock) -> list[dict[str, Any]] | None:
        catalog = run.catalog
        with self.engine.connect() as conn:
            sets = store.list_product_sets(conn, catalog.id)
            if not sets:
                return None
            computed = [s for s in sets if s["kind"] != "filter"]
            infos: dict[str, Any] = {}
            purchases: dict[str, int] = {}
            views: dict[str, int] = {}
            if computed:
                for item in store.set_inputs(conn, catalog.id):
                    infos[item["id"]] = product_info(item)
                purchases, views = store.activity(conn, store.linked_connections(conn, catalog.id))
        outcomes: list[dict[str, Any]] = []
        for product_set in sets:
            outcome: dict[str, Any] = {"key": product_set["key"], "kind": product_set["kind"]}
            if product_set["kind"] == "filter":
                wanted = canonical_filter(product_set["filter"])
                members = None
            else:
                ids = compute_members(product_set["kind"], product_set["size"], infos, purchases, views,
                                      seed=f"{catalog.id}:{product_set['key']}")
                members = len(ids)
                outcome["members"] = members
                if not ids:
                    outcome["result"] = "empty: no product qualifies yet; Meta's set is left as it was"
                    outcomes.append(outcome)
                    continue
                wanted = retailer_id_filter(ids)
            if product_set["meta_product_set_id"] and product_set["sent_filter"] == wanted:
                outcome["result"] = "unchanged"
                outcomes.append(outcome)
                continue
            try:
                set_id, result = self._write_set(run, clock, product_set, wanted)
            except GraphError as exc:
                if exc.error_class is not ErrorClass.INVALID:
                    raise
                outcome.update(result="failed", error=error_detail(exc, clock()))
                outcomes.append(outcome)
                continue
            with self.engine.begin() as conn:
                store.set_product_set(conn, product_set["id"], meta_product_set_id=set_id, sent_filter=wanted,
                                      members=members, synced_at=clock())
            outcome.update(result=result, meta_product_set_id=set_id)
            outcomes.append(outcome)
        return outcomes

    def _write_set(self, run: _Run, clock: Clock, product_set: dict[str, Any], wanted: dict[str, Any]) -> tuple[str, str]:
        """Create or update the Meta set; returns (its id, what was done)."""
        encoded = orjson.dumps(wanted).decode()
        catalog_id = run.catalog.catalog_id
        if product_set["meta_product_set_id"]:
            self._call(run, clock, "POST", product_set["meta_product_set_id"],
                       data={"filter": encoded, "name": product_set["name"]})
            return product_set["meta_product_set_id"], "updated"
        try:
            answer = self._call(run, clock, "POST", f"{catalog_id}/product_sets",
                                data={"name": product_set["name"], "filter": encoded})
        except GraphError as exc:
            if exc.code != DUPLICATE_FILTER:
                raise
            existing = self._find_set(run, clock, wanted)
            if existing is None:
                raise
            return existing, "adopted (a Meta set with this filter existed: 10803)"
        return str(answer.body.get("id")), "created"

    def _find_set(self, run: _Run, clock: Clock, wanted: dict[str, Any]) -> str | None:
        """The catalog's Meta product set whose filter is ``wanted`` (following Meta's paging)."""
        params: dict[str, Any] = {"fields": "id,name,filter", "limit": 100}
        for _ in range(1_000):
            answer = self._call(run, clock, "GET", f"{run.catalog.catalog_id}/product_sets", params=params)
            for found in answer.body.get("data") or []:
                try:
                    if isinstance(found, dict) and canonical_filter(found.get("filter")) == wanted:
                        return str(found["id"])
                except (ValueError, TypeError):
                    continue
            paging = answer.body.get("paging") if isinstance(answer.body.get("paging"), dict) else {}
            after = (paging.get("cursors") or {}).get("after") if isinstance(paging.get("cursors"), dict) else None
            if not paging.get("next") or not after:
                return None
            params["after"] = after
        return None

    # -- failures ------------------------------------------------------------------------------------------
    def _needs_person_message(self, run: _Run, exc: GraphError) -> str:
        return needs_person_message(exc, run.catalog)

    def _pause_for_person(self, run: _Run, message: str, detail: Any, now: int) -> None:
        self._needs_person(run.job, run.catalog, message, detail, now, run)

    def _retry_later(self, conn: Connection, run: _Run, at: int, detail: Any, throttled_until: int | None) -> None:
        if throttled_until is not None:
            until = max(throttled_until, run.catalog.throttled_until or 0)
            store.set_catalog(conn, run.catalog.id, throttled_until=until)
        jobs.leases.retry_later(conn, run.job["id"], self.worker_id, at, detail)
        store.set_catalog(conn, run.catalog.id, last_sync_error=detail)

    def _needs_person(self, job: dict[str, Any], catalog: StoredCatalog, message: str, detail: Any, now: int,
                      run: _Run | None = None) -> None:
        error = {**(detail or {}), "class": "needs_person", "message": message}
        with self.engine.begin() as conn:
            values = run.report.values() if run is not None else {}
            jobs.leases.finish(conn, job["id"], self.worker_id, now, "failed", error=error, **values)
            jobs.abandon_batches(conn, job["id"], now)
            store.set_catalog(conn, catalog.id, status="paused", paused_reason=message, last_sync_at=now,
                              last_job_id=job["id"], last_sync_result="failed", last_sync_error=error)
        log.warning("catalog %d paused: %s", catalog.id, message)
