"""When a catalog syncs on its own: ``"hourly"`` (the default), a cron expression, or ``"off"``. Pure.

- ``hourly``: one hour after the previous scheduled sync was taken (not aligned on the clock hour, so many
  catalogs created at different times do not all call Meta at minute 0);
- a five-field cron expression (``minute hour day-of-month month day-of-week``, evaluated in UTC), or one
  of the usual shorthands (``@hourly``, ``@daily``, ...); parsed by ``cronsim``, which has no dependencies;
- ``off``: never on its own; ``POST /v1/catalogs/{id}/sync`` still syncs on demand.
"""

from __future__ import annotations

from datetime import datetime, timezone

from cronsim import CronSim, CronSimError

__all__ = ["HOURLY", "OFF", "ScheduleError", "next_run", "parse_schedule"]

HOURLY = "hourly"
OFF = "off"
HOUR_MS = 3_600_000

#: Cron shorthands -> the five fields they stand for.
SHORTHANDS: dict[str, str] = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
}
RULE = '"hourly", "off", or a cron expression of five fields (minute hour day month weekday, UTC)'


class ScheduleError(ValueError):
    """The schedule is none of the accepted forms; the message names the rule."""


def _cron(expression: str) -> str:
    return SHORTHANDS.get(expression, expression)


def parse_schedule(text: str) -> str:
    """The schedule as stored (lowercase keyword or the cron expression with single spaces)."""
    if not isinstance(text, str) or not text.strip():
        raise ScheduleError(f"must be {RULE}")
    cleaned = " ".join(text.split())
    if cleaned.lower() in (HOURLY, OFF) or cleaned.lower() in SHORTHANDS:
        return cleaned.lower()
    try:
        CronSim(cleaned, datetime(2000, 1, 1, tzinfo=timezone.utc))
    except CronSimError as exc:
        raise ScheduleError(f"'{cleaned}' is not a valid cron expression ({exc}); must be {RULE}") from None
    return cleaned


def next_run(schedule: str, after_ms: int) -> int | None:
    """The first scheduled sync strictly after ``after_ms`` (ms since the epoch); ``None`` for ``off``."""
    if schedule == OFF:
        return None
    if schedule == HOURLY:
        return after_ms + HOUR_MS
    start = datetime.fromtimestamp(after_ms / 1000, tz=timezone.utc)
    try:
        when = next(CronSim(_cron(schedule), start))
    except (CronSimError, StopIteration):  # stored schedules were validated; an impossible date never fires
        return None
    return int(when.timestamp() * 1000)
