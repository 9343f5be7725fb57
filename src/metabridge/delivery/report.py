"""What the worker writes about outcomes: ``events.reason`` values, error details, the batch log line.

Kept apart from the loop so that the shapes other parts read (the API's event status, stats, support
tickets quoting an ``fbtrace_id``) are defined in one small place. Nothing here ever holds a token: the
Graph client scrubs tokens from every message before a :class:`GraphError` is built.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from metabridge.graph import ErrorClass, GraphError

__all__ = [
    "REASON_MAX_AGE",
    "REASON_MISSING_PAYLOAD",
    "REASON_REJECTED",
    "REASON_TOO_OLD",
    "Tally",
    "error_detail",
    "internal_detail",
    "pause_reason",
    "rejects_whole_request",
]

log = logging.getLogger("metabridge.delivery.worker")

#: ``events.reason`` values the worker writes.
REASON_REJECTED = "rejected_by_meta"  # invalid: Meta's error on the event alone (detail = Meta's error)
REASON_TOO_OLD = "event_time_too_old"  # invalid: outside Meta's time window at send time, never sent
REASON_MISSING_PAYLOAD = "missing_payload"  # invalid: nothing stored to send (should not happen)
REASON_MAX_AGE = "max_age_exceeded"  # failed: not delivered within max_event_age_hours (detail = last error)


def error_detail(exc: GraphError, now_ms: int) -> dict[str, Any]:
    """Meta's error as stored in ``events.detail`` / ``delivery_requests.error``. Never holds a token."""
    detail: dict[str, Any] = {
        "class": exc.error_class.value,
        "http_status": exc.http_status,
        "code": exc.code,
        "subcode": exc.subcode,
        "type": exc.type,
        "message": exc.message,
        "user_title": exc.user_title,
        "user_msg": exc.user_msg,
        "fbtrace_id": exc.fbtrace_id,
        "at": now_ms,
    }
    if exc.error_data is not None:
        detail["error_data"] = exc.error_data
    return {k: v for k, v in detail.items() if v is not None}


def internal_detail(exc: BaseException, now_ms: int) -> dict[str, Any]:
    """``detail`` for a failure that is not Meta's answer (database error, bug): retried like a transient."""
    return {"class": "internal", "message": f"{type(exc).__name__}: {exc}", "at": now_ms}


def pause_reason(exc: GraphError) -> str:
    """``connections.paused_reason``: Meta's code and message, enough for a person to act on."""
    code = "" if exc.code is None else f"#{exc.code}" + ("" if exc.subcode is None else f"/{exc.subcode}")
    text = exc.message + (f" - {exc.user_title}" if exc.user_title else "")
    what = "the request" if exc.error_class is ErrorClass.INVALID else "the credentials"
    return f"Meta rejected {what} ({code or f'HTTP {exc.http_status}'}): {text}"


def rejects_whole_request(exc: GraphError) -> bool:
    """An INVALID answer about the request itself, not about one of its events.

    Graph types such errors ``GraphMethodException`` (missing or wrong ``appsecret_proof``, unsupported
    call), while Conversions API event validation errors are ``OAuthException`` with a CAPI subcode.
    Bisecting cannot isolate a bad event there: every event would end up marked invalid for a
    connection setting. The worker pauses the connection instead, like an AUTH error.
    """
    return exc.error_class is ErrorClass.INVALID and exc.type == "GraphMethodException"


@dataclass(slots=True)
class Tally:
    """What happened to one claimed batch: for the log line and ``run_once``'s count."""

    sent: int = 0
    invalid: int = 0
    retried: int = 0
    failed: int = 0
    released: int = 0
    requests: int = 0
    fbtrace_ids: list[str] = field(default_factory=list)
    outcome: str = ""

    @property
    def handled(self) -> int:
        return self.sent + self.invalid + self.retried + self.failed

    def log(self, connection_id: int, count: int) -> None:
        """One line per batch; fbtrace ids let Meta support find the requests. Never any credential."""
        log.info(
            "delivery connection=%d events=%d outcome=%s sent=%d invalid=%d retry=%d failed=%d released=%d "
            "requests=%d fbtrace_id=%s",
            connection_id, count, self.outcome, self.sent, self.invalid, self.retried, self.failed,
            self.released, self.requests, ",".join(self.fbtrace_ids[-3:]) or "-",
        )
