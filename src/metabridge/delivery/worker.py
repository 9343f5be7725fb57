"""The delivery loop: claim due batches from the outbox, send them to Meta, record every outcome.

One :class:`DeliveryWorker` per thread or process; any number of them may share one database (claims
are disjoint, see :mod:`metabridge.delivery.claims`). Per claimed batch:

1. events that became too old for Meta while waiting are marked ``invalid`` and never sent;
2. the rest is sent as one request built from the stored payload bytes;
3. the answer decides, through the Graph error table (:class:`ErrorClass`):

   - success: ``sent`` with Meta's ``fbtrace_id``;
   - TRANSIENT / UNKNOWN / transport failure: retried later with jittered exponential backoff;
   - RATE_LIMITED: retried later, and the whole connection throttled so no worker hammers Meta;
   - AUTH (and an INVALID about the request itself, such as a missing ``appsecret_proof``): the
     connection is paused with Meta's reason and the events released (still pending) until a person
     fixes it (``store.connections.update_connection`` resumes it);
   - INVALID: Meta rejects a whole request for one bad event, so the batch is bisected until every
     bad event is alone; only those are marked invalid (with Meta's error), all others are sent.

Nothing is retried forever (``max_event_age_hours``), every Graph request is written to
``delivery_requests``, and no request is started with less than twice the HTTP timeout of lease left,
so a lease cannot expire mid-request and let a second worker send the same events.
"""

from __future__ import annotations

import logging
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


from metabridge.credentials import SecretKeyError
from metabridge.delivery import claims
from metabridge.delivery.common import Clock, PollingWorker
from metabridge.delivery.claims import ClaimedEvent
from metabridge.delivery.payload import build_body, time_window_error
from metabridge.delivery.report import (
    REASON_MAX_AGE,
    REASON_MISSING_PAYLOAD,
    REASON_REJECTED,
    REASON_TOO_OLD,
    Tally,
    error_detail,
    internal_detail,
    pause_reason,
    rejects_whole_request,
)
from metabridge.delivery.retry import usage_hint_seconds
from metabridge.graph import ErrorClass, GraphError, GraphResponse
from metabridge.graph.wire import events_path
from metabridge.store.db import read_only
from metabridge.store.product_activity import record_counts, tally
from metabridge.store.connections import (
    StoredConnection,
    get_connection,
    pause_connection,
    throttle_connection,
)

__all__ = ["DeliveryWorker"]

log = logging.getLogger(__name__)

@dataclass(slots=True)
class _Batch:
    """A claimed batch in flight: the connection, its credentials and the lease the worker holds."""

    connection: StoredConnection
    access_token: str
    app_secret: str | None
    lease_until: int
    tally: Tally = field(default_factory=Tally)


class DeliveryWorker(PollingWorker):
    """Delivers pending events of every connection. Not shared between threads: one per thread."""

    kind = "delivery"

    # -- loop ------------------------------------------------------------------------------------------
    # run(stop) comes from PollingWorker: a batch claimed but not sent yet when ``stop`` is set is released
    # (pending, attempt not counted).
    def run_once(self, now_ms: int | None = None) -> int:
        """Process every due connection once (one batch each); returns how many events were handled.

        ``now_ms`` shifts the worker's clock for this pass (tests, replays); ``None`` is the wall clock.
        """
        clock = Clock(now_ms)
        with read_only(self.engine) as conn:  # a snapshot: the claim re-checks each row under the write lock
            due = claims.due_connections(conn, clock(), self.settings.batch_linger_ms)
        handled = 0
        for connection_id in due:
            if self._stopping():
                break
            handled += self._process_connection(connection_id, clock)
        return handled

    # -- one batch -------------------------------------------------------------------------------------
    def _process_connection(self, connection_id: int, clock: Clock) -> int:
        now = clock()
        with self.engine.begin() as conn:
            connection = get_connection(conn, connection_id)
            if connection is None or connection.status != "ok" or (connection.throttled_until or 0) > now:
                return 0
            claimed = claims.claim_batch(conn, connection_id, self.worker_id, now, self.lease_ms)
        if not claimed:
            return 0
        ids = [e.id for e in claimed]
        try:
            events_path(connection.pixel_id)
            token, secret = connection.access_token(self.box), connection.app_secret(self.box)
            batch = _Batch(connection, token, secret, now + self.lease_ms)
        except (ValueError, SecretKeyError) as exc:  # a person must fix the connection
            self._pause(connection_id, ids, f"cannot send for this connection: {exc}")
            Tally(released=len(claimed), outcome="paused").log(connection_id, len(claimed))
            return 0
        if self._stopping():
            self._release(ids)
            Tally(released=len(claimed), outcome="released").log(connection_id, len(claimed))
            return 0
        try:
            sendable = self._drop_unsendable(claimed, batch, clock)
            self._deliver(batch, sendable, clock)
        except Exception as exc:  # noqa: BLE001 - e.g. a database error mid-batch
            log.exception("delivery connection=%d: batch failed", connection_id)
            self._retry_after_internal_error(ids, claimed, exc, clock)
            batch.tally.outcome = "error"
        batch.tally.log(connection_id, len(claimed))
        return batch.tally.handled

    def _drop_unsendable(
        self, claimed: Sequence[ClaimedEvent], batch: _Batch, clock: Clock
    ) -> list[ClaimedEvent]:
        """Mark invalid the events Meta would reject for their age (or that have no payload)."""
        now = clock()
        sendable: list[ClaimedEvent] = []
        too_old: dict[str, list[int]] = defaultdict(list)
        missing: list[int] = []
        for event in claimed:
            if not event.payload:
                missing.append(event.id)
                continue
            problem = time_window_error(event.event_time, event.payload, now // 1000)
            if problem is None:
                sendable.append(event)
            else:
                too_old[problem.message].append(event.id)
        if too_old or missing:
            with self.engine.begin() as conn:
                for message, ids in too_old.items():
                    batch.tally.invalid += claims.mark_invalid(
                        conn, self.worker_id, ids, reason=REASON_TOO_OLD,
                        error=[{"field": "timestamp", "message": message}],
                    )
                if missing:
                    batch.tally.invalid += claims.mark_invalid(
                        conn, self.worker_id, missing, reason=REASON_MISSING_PAYLOAD,
                        error=[{"field": "payload", "message": "no stored payload to send"}],
                    )
        return sendable

    def _deliver(self, batch: _Batch, events: list[ClaimedEvent], clock: Clock) -> None:
        """Send ``events``; on INVALID bisect until each bad event is alone. Other errors end the batch."""
        queue: deque[list[ClaimedEvent]] = deque([events] if events else [])
        while queue:
            chunk = queue.popleft()
            chunk = self._ensure_lease(batch, chunk, queue, clock)
            if not chunk:
                continue
            started = clock()
            try:
                response = self.graph.post_events(
                    batch.connection.pixel_id, batch.access_token,
                    build_body([e.payload for e in chunk], batch.connection.settings.test_event_code),
                    app_secret=batch.app_secret,
                )
            except GraphError as exc:
                batch.tally.requests += 1
                if exc.fbtrace_id:
                    batch.tally.fbtrace_ids.append(exc.fbtrace_id)
                if exc.error_class is ErrorClass.INVALID and not rejects_whole_request(exc):
                    self._on_invalid(batch, chunk, queue, exc, started, clock())
                    continue
                rest = [chunk, *queue]
                queue.clear()
                self._on_failure(batch, rest, exc, started, clock())
                return
            batch.tally.requests += 1
            self._on_success(batch, chunk, response, started, clock())
        tally = batch.tally
        if not tally.outcome:
            mixed = "sent_with_invalid" if tally.sent else "invalid"
            tally.outcome = mixed if tally.invalid else "sent"

    def _ensure_lease(
        self, batch: _Batch, chunk: list[ClaimedEvent], queue: deque[list[ClaimedEvent]], clock: Clock
    ) -> list[ClaimedEvent]:
        """Renew the lease (for this chunk and the queued ones) when too little is left to send safely.

        Events whose lease was lost (another worker took them after it expired) are dropped from this
        worker's work: the other worker now owns their delivery.
        """
        now = clock()
        if batch.lease_until - now >= self.send_margin_ms:
            return chunk
        everything = chunk + [e for part in queue for e in part]
        with self.engine.begin() as conn:
            ids = [e.id for e in everything]
            held = set(claims.renew_lease(conn, self.worker_id, ids, now, self.lease_ms))
        batch.lease_until = now + self.lease_ms
        lost = len(everything) - len(held)
        if lost:
            log.warning(
                "delivery connection=%d: lease lost on %d events (taken over)", batch.connection.id, lost
            )
            for index, part in enumerate(queue):
                queue[index] = [e for e in part if e.id in held]
        return [e for e in chunk if e.id in held]

    # -- outcomes --------------------------------------------------------------------------------------
    def _on_success(
        self, batch: _Batch, chunk: list[ClaimedEvent], response: GraphResponse, started: int, finished: int
    ) -> None:
        received = response.body.get("events_received")
        received = received if isinstance(received, int) and not isinstance(received, bool) else None
        if received is not None and received != len(chunk):
            log.warning(
                "delivery connection=%d: sent %d events, Meta reports %d received (fbtrace_id=%s)",
                batch.connection.id, len(chunk), received, response.fbtrace_id,
            )
        # Product counts are read from the payloads before the write transaction: it holds the writer lock.
        counts = tally(chunk)
        with self.engine.begin() as conn:
            request_id = claims.record_request(
                conn, connection_id=batch.connection.id, worker_id=self.worker_id, started_at=started,
                finished_at=finished, event_count=len(chunk), ok=True, http_status=response.status_code,
                events_received=received, fbtrace_id=response.fbtrace_id,
            )
            marked = claims.mark_sent(
                conn, self.worker_id, [e.id for e in chunk], request_id=request_id,
                fbtrace_id=response.fbtrace_id, now_ms=finished,
            )
            if marked == len(chunk):  # product set counts, before the payloads are gone (store.product_activity)
                record_counts(conn, batch.connection.id, counts)
        if marked != len(chunk):
            log.warning(
                "delivery connection=%d: %d of %d sent events were no longer leased by this worker",
                batch.connection.id, len(chunk) - marked, len(chunk),
            )
        batch.tally.sent += len(chunk)
        if response.fbtrace_id:
            batch.tally.fbtrace_ids.append(response.fbtrace_id)

    def _record_failure(
        self, conn: Any, batch: _Batch, count: int, exc: GraphError, started: int, finished: int
    ) -> None:
        claims.record_request(
            conn, connection_id=batch.connection.id, worker_id=self.worker_id, started_at=started,
            finished_at=finished, event_count=count, ok=False, http_status=exc.http_status,
            fbtrace_id=exc.fbtrace_id, error=error_detail(exc, finished),
        )

    def _on_invalid(
        self, batch: _Batch, chunk: list[ClaimedEvent], queue: deque[list[ClaimedEvent]],
        exc: GraphError, started: int, finished: int,
    ) -> None:
        """Bisect: the halves go first in the queue, so the batch is finished depth-first in order."""
        with self.engine.begin() as conn:
            self._record_failure(conn, batch, len(chunk), exc, started, finished)
            if len(chunk) == 1:
                batch.tally.invalid += claims.mark_invalid(
                    conn, self.worker_id, [chunk[0].id], reason=REASON_REJECTED,
                    error=error_detail(exc, finished),
                )
                log.info(
                    "delivery connection=%d: event %s rejected by Meta (#%s/%s, fbtrace_id=%s)",
                    batch.connection.id, chunk[0].event_id, exc.code, exc.subcode, exc.fbtrace_id,
                )
                return
        middle = len(chunk) // 2
        queue.appendleft(chunk[middle:])
        queue.appendleft(chunk[:middle])

    def _on_failure(
        self, batch: _Batch, rest: list[list[ClaimedEvent]], exc: GraphError, started: int, finished: int
    ) -> None:
        """A request-level failure: it applies to the failed chunk and to everything not sent yet."""
        events = [e for part in rest for e in part]
        ids = [e.id for e in events]
        error_class = exc.error_class
        detail = error_detail(exc, finished)
        with self.engine.begin() as conn:
            self._record_failure(conn, batch, len(rest[0]), exc, started, finished)
            if error_class is ErrorClass.AUTH or rejects_whole_request(exc):
                pause_connection(conn, batch.connection.id, pause_reason(exc))
                batch.tally.released += claims.release(conn, self.worker_id, ids)
                batch.tally.outcome = "paused"
                return
            hint = usage_hint_seconds(exc)
            delay = self.policy.delay_seconds(max(e.attempts for e in events), error_class, hint)
            if error_class is ErrorClass.RATE_LIMITED:
                until = max(finished + int(delay * 1000), batch.connection.throttled_until or 0)
                throttle_connection(conn, batch.connection.id, until)
                batch.tally.outcome = "rate_limited"
            else:
                batch.tally.outcome = "retry"
            self._retry_or_fail(conn, events, finished, delay, detail, batch.tally)

    def _retry_or_fail(
        self, conn: Any, events: Sequence[ClaimedEvent], now: int, delay_s: float, detail: Any, tally: Tally
    ) -> None:
        by_time: dict[int, list[int]] = defaultdict(list)
        give_up: list[int] = []
        for event in events:
            decision = self.policy.plan(event.received_at, now, delay_s)
            (give_up if decision.give_up else by_time[decision.next_attempt_at]).append(event.id)
        for next_attempt_at, ids in by_time.items():
            tally.retried += claims.retry_later(
                conn, self.worker_id, ids, next_attempt_at=next_attempt_at, last_error=detail
            )
        if give_up:
            tally.failed += claims.mark_failed(
                conn, self.worker_id, give_up, reason=REASON_MAX_AGE, error=detail
            )

    def _retry_after_internal_error(
        self, ids: list[int], claimed: Sequence[ClaimedEvent], exc: BaseException, clock: Clock
    ) -> None:
        """Back off on an unexpected error instead of releasing: releasing would spin on a persistent bug."""
        now = clock()
        try:
            with self.engine.begin() as conn:
                delay = self.policy.delay_seconds(max(e.attempts for e in claimed), ErrorClass.TRANSIENT)
                detail = internal_detail(exc, now)
                self._retry_or_fail(conn, claimed, now, max(delay, self.policy.base_s), detail, Tally())
        except Exception:  # noqa: BLE001 - the leases expire and another pass retries them
            log.exception("delivery: could not reschedule %d events after an error", len(ids))

    # -- helpers ---------------------------------------------------------------------------------------
    def _pause(self, connection_id: int, ids: list[int], reason: str) -> None:
        with self.engine.begin() as conn:
            pause_connection(conn, connection_id, reason)
            claims.release(conn, self.worker_id, ids)

    def _release(self, ids: list[int]) -> None:
        with self.engine.begin() as conn:
            claims.release(conn, self.worker_id, ids)
