"""Pieces every worker loop shares (events delivery, audience sync, catalog sync)."""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import uuid
from typing import Any

from sqlalchemy import Connection, Engine

from metabridge.config import Settings
from metabridge.credentials import SecretBox
from metabridge.delivery.report import error_detail
from metabridge.delivery.retry import RetryPolicy, usage_hint_seconds
from metabridge.graph import ErrorClass, GraphClient, GraphError
from metabridge.timeutil import now_ms as wall_clock_ms

__all__ = ["Clock", "JobWorker", "PollingWorker", "default_worker_id", "send_margin_ms"]


def default_worker_id() -> str:
    """host-pid-random: unique across machines and restarts, readable in the lease columns."""
    host = socket.gethostname()[:32]
    return f"{host}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def send_margin_ms(graph: GraphClient) -> int:
    """Lease that must be left before a request starts: twice the client's HTTP timeout, so a lease can
    never expire while a request made under it is still running (and let a second worker send the same)."""
    return int(2 * graph.timeout * 1000)


class Clock:
    """Wall-clock milliseconds, shifted so that the first reading equals ``start_ms`` when given.

    ``run_once(now_ms=...)`` lets tests and tools act "later" (linger, backoff, throttle) while time
    still advances naturally during the pass, which the lease arithmetic relies on.
    """

    def __init__(self, start_ms: int | None) -> None:
        self._offset = 0 if start_ms is None else start_ms - wall_clock_ms()

    def __call__(self) -> int:
        return wall_clock_ms() + self._offset


class PollingWorker:
    """The loop every worker runs: a pass, then a short sleep when the pass found nothing to do.

    Subclasses implement :meth:`run_once` (one pass over due work, returning how much it handled). Errors
    in a pass (database down, a bug) are logged and the loop goes on after a pause: a worker thread that
    dies silently would leave work undone, and leases make a retried pass safe.

    Every worker holds the same things: the database, settings, the secret box (to read credentials), its
    Graph client, a worker id for the lease columns, the retry policy, and a lease long enough to outlive
    any request made under it (``send_margin_ms``: the lease that must be left to start a request).
    """

    #: what the worker does, for its log lines ("delivery", "audience", "catalog")
    kind = "worker"
    _stop: threading.Event | None = None

    def __init__(
        self, engine: Engine, settings: Settings, box: SecretBox, graph: GraphClient, worker_id: str | None = None,
        *, rng: random.Random | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.box = box
        self.graph = graph
        self.worker_id = (worker_id or default_worker_id())[:64]
        self.policy = RetryPolicy(settings, rng)
        self.lease_ms, self.send_margin_ms = self.check_lease(settings.lease_seconds, graph)

    def run_once(self, now_ms: int | None = None) -> int:
        raise NotImplementedError

    def run(self, stop: threading.Event, idle_sleep: float = 0.2) -> None:
        """Work until ``stop`` is set; returns after the work in flight is complete."""
        self._stop = stop
        try:
            while not stop.is_set():
                try:
                    handled = self.run_once()
                except Exception:  # noqa: BLE001 - keep working; leases make this safe
                    logging.getLogger(type(self).__module__).exception("%s worker %s: pass failed", self.kind, self.worker_id)
                    handled = 0
                if handled == 0:
                    stop.wait(idle_sleep)
        finally:
            self._stop = None

    def _stopping(self) -> bool:
        return self._stop is not None and self._stop.is_set()

    @staticmethod
    def check_lease(lease_seconds: float, graph: GraphClient) -> tuple[int, int]:
        """(lease, send margin) in ms; refuses a lease too short to outlive a request made under it."""
        lease_ms = int(lease_seconds * 1000)
        margin_ms = send_margin_ms(graph)
        if lease_ms <= margin_ms:
            raise ValueError(
                f"lease_seconds ({lease_seconds:g}) must be more than twice the Graph HTTP timeout "
                f"({margin_ms / 2000:g} s): a lease must outlive any request made under it"
            )
        return lease_ms, margin_ms


class JobWorker(PollingWorker):
    """A worker of leased jobs (audience uploads, catalog syncs): create the jobs whose time has come, then
    claim and run jobs one at a time until none is claimable.

    Subclasses implement :meth:`schedule`, :meth:`claim` (lease one job, in the caller's transaction) and
    :meth:`process` (run the claimed job to an outcome, renewing its lease as it goes).
    """

    def run_once(self, now_ms: int | None = None) -> int:
        """Schedule due work, then run claimable jobs until none is left; returns how many ran."""
        clock = Clock(now_ms)
        self.schedule(clock())
        handled = 0
        while not self._stopping():
            with self.engine.begin() as conn:
                job = self.claim(conn, clock())
            if job is None:
                break
            self.process(job, clock)
            handled += 1
        return handled

    def schedule(self, now: int) -> list[int]:
        """Create the jobs that are due at ``now``; returns their ids."""
        raise NotImplementedError

    def claim(self, conn: Connection, now: int) -> dict[str, Any] | None:
        """Lease the next claimable job to this worker, or None."""
        raise NotImplementedError

    def process(self, job: dict[str, Any], clock: Clock) -> None:
        raise NotImplementedError

    # -- failures: what a Graph error means is decided here for every kind of job; the subclass applies it
    def _on_graph_error(self, run: Any, exc: GraphError, now: int) -> None:
        """Meta refused the call: a person must act (credentials), the job tries again later (transient,
        throttled) or it has failed (anything else). ``run`` is the subclass's state of the running job."""
        detail = error_detail(exc, now)
        log = logging.getLogger(type(self).__module__)
        log.warning("%s job %d: Meta error %r", self.kind, run.job["id"], exc)
        error_class = exc.error_class
        if error_class is ErrorClass.AUTH:
            self._pause_for_person(run, self._needs_person_message(run, exc), detail, now)
        elif error_class.retryable:
            self._retry_or_fail(run, error_class, detail, usage_hint_seconds(exc), now)
        else:
            self._finish(run, now, "failed", error=detail)

    def _retry_or_fail(self, run: Any, error_class: ErrorClass, detail: Any, hint_s: float, now: int) -> None:
        """Schedule the job's next attempt by the retry policy, or fail it once the policy gives up."""
        job = run.job
        delay = self.policy.delay_seconds(job["attempts"], error_class, hint_s)
        decision = self.policy.plan(job["created_at"], now, delay)
        if decision.give_up:
            self._finish(run, now, "failed", error=detail)
            return
        throttled_until = decision.next_attempt_at if error_class is ErrorClass.RATE_LIMITED else None
        with self.engine.begin() as conn:
            self._retry_later(conn, run, decision.next_attempt_at, detail, throttled_until)

    def _needs_person_message(self, run: Any, exc: GraphError) -> str:
        """What a person must do about an authorization error (names the credentials at fault)."""
        raise NotImplementedError

    def _pause_for_person(self, run: Any, message: str, detail: Any, now: int) -> None:
        """Fail the job and pause what it syncs until a person fixes its credentials."""
        raise NotImplementedError

    def _retry_later(
        self, conn: Connection, run: Any, at: int, detail: Any, throttled_until: int | None
    ) -> None:
        """Release the job until ``at`` and record ``detail``; ``throttled_until``: Meta rate-limited the
        credentials, so nothing else may use them before then."""
        raise NotImplementedError

    def _finish(self, run: Any, now: int, status: str, *, error: Any = None) -> None:
        """End the job with ``status`` (and ``error``), recording its outcome."""
        raise NotImplementedError
