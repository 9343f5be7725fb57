"""When to try again after a failed Conversions API request.

Exponential backoff with *full jitter* (delay drawn uniformly in ``[0, min(max, base * 2**(n-1))]``):
workers that failed together (Meta had a hiccup) spread their retries instead of returning in lockstep.

Rate limits are different: Meta counts calls per app / ad account, so hammering it from any worker
prolongs the throttle. A RATE_LIMITED answer therefore waits at least Meta's own estimate (usage header
``estimated_time_to_regain_access``, minutes) and at least ``retry_base_seconds``, and the whole
connection is throttled (``connections.throttled_until``) so no other worker sends for it meanwhile.

Nothing is retried past ``max_event_age_hours`` after the event was received: see :func:`plan_retry`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from metabridge.config import Settings
from metabridge.graph import ErrorClass, GraphError

__all__ = ["RetryPolicy", "RetryDecision", "usage_hint_seconds"]


def usage_hint_seconds(error: GraphError) -> float:
    """Meta's estimate of how long the throttle lasts (seconds; 0 when the answer carried none)."""
    usage = error.usage
    return usage.retry_after_seconds() if usage is not None else 0.0


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """The outcome for one event: retry at ``next_attempt_at`` (ms), or give up (``give_up``)."""

    give_up: bool
    next_attempt_at: int


class RetryPolicy:
    """Backoff policy built from :class:`Settings`; ``rng`` is injectable for deterministic tests."""

    def __init__(self, settings: Settings, rng: random.Random | None = None) -> None:
        self.base_s = max(0.0, float(settings.retry_base_seconds))
        self.max_s = max(self.base_s, float(settings.retry_max_seconds))
        self.max_age_ms = int(settings.max_event_age_hours) * 3_600_000
        self._rng = rng or random.Random()

    def cap_seconds(self, attempts: int) -> float:
        """Upper bound of the delay after the ``attempts``-th failed attempt (1 = first failure)."""
        exponent = min(max(attempts - 1, 0), 62)  # 2**62 is already far above any sane max
        return min(self.max_s, self.base_s * (2.0 ** exponent))

    def delay_seconds(self, attempts: int, error_class: ErrorClass, hint_s: float = 0.0) -> float:
        """Full-jitter backoff; for rate limits at least Meta's hint and at least the base delay."""
        delay = self._rng.uniform(0.0, self.cap_seconds(attempts))
        if error_class is ErrorClass.RATE_LIMITED:
            delay = max(delay, hint_s, self.base_s)
        return delay

    def deadline_ms(self, received_at: int) -> int:
        """When an undelivered event stops being retried."""
        return received_at + self.max_age_ms

    def plan(self, received_at: int, now_ms: int, delay_s: float) -> RetryDecision:
        """Retry after ``delay_s`` unless the event is past its age limit.

        A retry that would fall after the deadline is moved to the deadline: the event gets one last
        attempt instead of being given up early, and is given up on the failure after that.
        """
        deadline = self.deadline_ms(received_at)
        if now_ms >= deadline:
            return RetryDecision(give_up=True, next_attempt_at=now_ms)
        return RetryDecision(give_up=False, next_attempt_at=min(now_ms + int(delay_s * 1000), deadline))
