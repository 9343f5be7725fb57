"""In-memory state of one sandbox: what it received, its request log, faults and revoked tokens.

Custom Audiences live in :attr:`SandboxState.audiences` (an
:class:`~metabridge.sandbox.audience_state.AudienceStore`, replaced by :meth:`SandboxState.reset`), product
catalogs in :attr:`SandboxState.catalogs` (a :class:`~metabridge.sandbox.catalog_state.CatalogStore`, idem). The
sandbox clock (:meth:`SandboxState.now`) is wall time plus an offset that ``/_sandbox/clock/advance``
moves forward, so tests can let a 90-minute upload session expire; it drives the audience store.

One lock guards everything: the app runs handlers on the server's event loop while tests (and the
service mounting the sandbox in-process) read and change the state from other threads. Critical
sections are short (append, pop, copy), so one lock does not limit throughput.

Stored events are capped per (pixel, live/test) bucket so that a long benchmark cannot eat the
machine's memory; counters keep the true totals.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from itertools import islice
from typing import Any

from metabridge.sandbox.audience_state import AudienceStore
from metabridge.sandbox.catalog_state import CatalogStore

__all__ = [
    "DEFAULT_MAX_EVENTS_PER_BUCKET",
    "DEFAULT_MAX_REQUESTS",
    "Fault",
    "FaultError",
    "ReceivedEvent",
    "RequestRecord",
    "SandboxState",
]

DEFAULT_MAX_EVENTS_PER_BUCKET = 100_000
DEFAULT_MAX_REQUESTS = 10_000


@dataclass(frozen=True, slots=True)
class FaultError:
    """The Graph error an injected fault answers with (fields of Meta's envelope)."""

    code: int
    subcode: int | None = None
    http_status: int | None = None
    message: str | None = None
    is_transient: bool | None = None
    type: str | None = None
    user_title: str | None = None
    user_msg: str | None = None


@dataclass(slots=True)
class Fault:
    """Make the next ``remaining`` matching Graph requests fail with ``error`` and/or wait ``delay_ms``."""

    remaining: int
    error: FaultError | None = None
    delay_ms: int = 0
    path_contains: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def matches(self, path: str) -> bool:
        return self.remaining > 0 and (self.path_contains is None or self.path_contains in path)


@dataclass(frozen=True, slots=True)
class ReceivedEvent:
    """One accepted event as the sandbox parsed it, with the request it came in."""

    pixel_id: str
    event: dict[str, Any]
    fbtrace_id: str
    received_at: float
    test_event_code: str | None
    partner_agent: str | None
    index_in_request: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One Graph request as seen by the sandbox. Deliberately holds no token or proof."""

    time: float
    method: str
    path: str
    status: int
    fbtrace_id: str
    pixel_id: str | None = None
    events_count: int = 0
    test: bool = False
    error_code: int | None = None
    error_subcode: int | None = None
    fault: bool = False
    audience_id: str | None = None
    rows_count: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class SandboxState:
    """Everything one sandbox app remembers. Thread-safe; create one per app (or share to inspect it)."""

    def __init__(
        self,
        *,
        app_secret: str | None = None,
        max_events_per_bucket: int = DEFAULT_MAX_EVENTS_PER_BUCKET,
        max_requests: int = DEFAULT_MAX_REQUESTS,
    ) -> None:
        self._lock = threading.Lock()
        self._generation = 0
        self._initial_app_secret = app_secret
        self.max_events_per_bucket = max_events_per_bucket
        self.max_requests = max_requests
        self._init_locked()

    def _init_locked(self) -> None:
        self.app_secret: str | None = self._initial_app_secret
        self._events: dict[tuple[str, bool], deque[ReceivedEvent]] = {}
        self._event_totals: Counter[tuple[str, bool]] = Counter()
        self._requests: deque[RequestRecord] = deque(maxlen=self.max_requests)
        self._faults: list[Fault] = []
        self._revoked: set[str] = set()
        self._status_counts: Counter[int] = Counter()
        self._error_counts: Counter[str] = Counter()
        self._request_total = 0
        self._started_at = time.time()
        self._clock_offset = 0.0
        self.audiences = AudienceStore(clock=self.now)
        self.catalogs = CatalogStore()

    # -- lifecycle -------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget everything: events, request log, faults, revoked tokens, counters, app secret changes,
        audiences (with their members, sessions and TOS flags) and the clock offset.

        Requests still in flight (e.g. delayed by a fault) when the reset happens are not recorded.
        """
        with self._lock:
            self._generation += 1
            self._init_locked()

    def now(self) -> float:
        """The sandbox clock: wall time plus what :meth:`advance_clock` added since the last reset."""
        return time.time() + self._clock_offset

    def advance_clock(self, seconds: float) -> float:
        """Move the sandbox clock forward (never back); returns the total offset in seconds."""
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        with self._lock:
            self._clock_offset += seconds
            return self._clock_offset

    @property
    def clock_offset(self) -> float:
        return self._clock_offset

    @property
    def generation(self) -> int:
        """Bumped by every :meth:`reset`; handlers pass the value they started with to writers."""
        return self._generation

    # -- events ----------------------------------------------------------------------------------------
    def add_events(
        self,
        pixel_id: str,
        events: Iterable[dict[str, Any]],
        *,
        fbtrace_id: str,
        test_event_code: str | None,
        partner_agent: str | None,
        received_at: float | None = None,
        generation: int | None = None,
    ) -> int:
        """Store a request's accepted events; test events go to their own bucket. Returns how many.

        With ``generation`` (from :attr:`generation` when the request started), nothing is stored if
        the state was reset since.
        """
        now = time.time() if received_at is None else received_at
        key = (pixel_id, test_event_code is not None)
        records = [
            ReceivedEvent(pixel_id, event, fbtrace_id, now, test_event_code, partner_agent, i)
            for i, event in enumerate(events)
        ]
        with self._lock:
            if generation is not None and generation != self._generation:
                return 0
            bucket = self._events.get(key)
            if bucket is None:
                bucket = self._events[key] = deque(maxlen=self.max_events_per_bucket)
            bucket.extend(records)
            self._event_totals[key] += len(records)
        return len(records)

    def events(
        self, pixel_id: str, *, test: bool = False, limit: int = 100, offset: int = 0
    ) -> list[ReceivedEvent]:
        """Stored events of a pixel, oldest first, live or test."""
        with self._lock:
            bucket = self._events.get((pixel_id, test))
            if not bucket:
                return []
            return list(islice(bucket, offset, offset + limit))

    def event_count(self, pixel_id: str, *, test: bool = False) -> int:
        """How many events this pixel received (live or test), including any no longer stored."""
        with self._lock:
            return self._event_totals[(pixel_id, test)]

    def stored_event_count(self, pixel_id: str, *, test: bool = False) -> int:
        """How many events are still stored for paging."""
        with self._lock:
            bucket = self._events.get((pixel_id, test))
            return len(bucket) if bucket else 0

    # -- request log -----------------------------------------------------------------------------------
    def log_request(self, record: RequestRecord, *, generation: int | None = None) -> None:
        """Append to the request log and the counters (skipped if reset since ``generation``)."""
        with self._lock:
            if generation is not None and generation != self._generation:
                return
            self._requests.append(record)
            self._request_total += 1
            self._status_counts[record.status] += 1
            if record.error_code is not None:
                key = str(record.error_code)
                if record.error_subcode is not None:
                    key += f"/{record.error_subcode}"
                self._error_counts[key] += 1

    def requests(self, *, limit: int = 100, offset: int = 0) -> list[RequestRecord]:
        """Logged requests, oldest first."""
        with self._lock:
            return list(islice(self._requests, offset, offset + limit))

    # -- faults ----------------------------------------------------------------------------------------
    def add_fault(self, fault: Fault) -> None:
        """Queue a fault; faults are consumed in the order they were added."""
        if fault.remaining < 1:
            raise ValueError("a fault needs count >= 1")
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def faults(self) -> list[Fault]:
        with self._lock:
            return [
                Fault(f.remaining, f.error, f.delay_ms, f.path_contains, dict(f.headers))
                for f in self._faults
            ]

    def take_fault(self, path: str) -> Fault | None:
        """Consume one use of the first fault matching ``path``; returns it (a snapshot) or ``None``."""
        with self._lock:
            if not self._faults:
                return None
            for fault in self._faults:
                if fault.matches(path):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return Fault(1, fault.error, fault.delay_ms, fault.path_contains, dict(fault.headers))
            return None

    # -- tokens ----------------------------------------------------------------------------------------
    def revoke_token(self, token: str) -> None:
        with self._lock:
            self._revoked.add(token)

    def restore_token(self, token: str) -> None:
        with self._lock:
            self._revoked.discard(token)

    def is_revoked(self, token: str) -> bool:
        with self._lock:
            return token in self._revoked

    def set_app_secret(self, app_secret: str | None) -> None:
        """Require (or, with ``None``, stop requiring) a valid ``appsecret_proof`` on Graph calls."""
        with self._lock:
            self.app_secret = app_secret

    # -- stats -----------------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Totals for dashboards and benchmarks. Holds no token."""
        with self._lock:
            per_pixel: dict[str, dict[str, int]] = {}
            for (pixel_id, test), total in self._event_totals.items():
                entry = per_pixel.setdefault(pixel_id, {"live": 0, "test": 0})
                entry["test" if test else "live"] += total
            return {
                "started_at": self._started_at,
                "requests_total": self._request_total,
                "requests_by_status": {str(k): v for k, v in sorted(self._status_counts.items())},
                "errors_by_code": dict(sorted(self._error_counts.items())),
                "events_received": sum(v for (_, test), v in self._event_totals.items() if not test),
                "test_events_received": sum(v for (_, test), v in self._event_totals.items() if test),
                "pixels": per_pixel,
                "faults_pending": sum(f.remaining for f in self._faults),
                "revoked_tokens": len(self._revoked),
                "app_secret_required": self.app_secret is not None,
                "custom_audiences": self.audiences.stats(),
                "catalogs": self.catalogs.stats(),
            }
