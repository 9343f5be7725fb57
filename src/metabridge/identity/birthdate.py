"""How a date of birth is normalized (CAPI ``db``, audience ``DOBY``/``DOBM``/``DOBD``).

Rule (identity-rules.md "db"; Meta D-CIP: ``YYYYMMDD``, year 1900..current): the output is ``YYYYMMDD``
(audiences split it into ``YYYY``, ``MM``, ``DD``). Read forms:

- ISO ``YYYY-MM-DD`` (also ``YYYY/MM/DD``, ``YYYY.MM.DD``; a trailing time such as ``T10:00:00Z`` is ignored),
- ``YYYYMMDD``,
- dotted day-first ``DD.MM.YYYY``,
- slashed ``A/B/YYYY`` (dashes read the same way): when one part is above 12 the order is clear,
  otherwise the connection's ``date_order`` decides (``mdy``, Meta's own example ``2/16/1997``, by default).

Only real calendar dates with a year from 1900 to the current year are kept (``1997-02-30`` is left out).
Two-digit years are not read: guessing the century would send a wrong hash.
"""

from __future__ import annotations

import time
from typing import Literal

from metabridge.identity.issues import UnusableValue

__all__ = ["DateOrder", "normalize_birthdate"]

DateOrder = Literal["mdy", "dmy"]

UNREADABLE = "not a readable date (YYYY-MM-DD, YYYYMMDD, DD.MM.YYYY or slashed with a 4-digit year)"
AMBIGUOUS_BOTH_OVER_12 = "not a readable date (neither of the first two parts can be a month)"
NOT_A_DATE = "not a real calendar date"
YEAR_OUT_OF_RANGE = "year outside 1900..current year"

_DAYS_IN_MONTH = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

# Look-up tables instead of int() and digit checks (this runs for every new birth date): every spelling of
# a month (1..12, 01..12), a day (1..31, 01..31) and a 4-digit year 1900..2199 maps to its number; the
# current-year bound is checked separately.
_MONTHS = {**{str(i): i for i in range(1, 13)}, **{f"{i:02d}": i for i in range(1, 13)}}
_DAYS = {**{str(i): i for i in range(1, 32)}, **{f"{i:02d}": i for i in range(1, 32)}}
_YEARS = {str(y): y for y in range(1900, 2200)}
_TWO_DIGITS = tuple(f"{i:02d}" for i in range(32))

# The current year is only looked up when a date's year is above the last one seen: years only grow, so
# the hot path needs no clock call.
_latest_year = [time.localtime().tm_year]


def _date(year: str, month: str, day: str) -> str:
    """``YYYYMMDD`` from the three parts as written, or raise :class:`UnusableValue`."""
    y = _YEARS.get(year)
    m = _MONTHS.get(month)
    d = _DAYS.get(day)
    if y is None or m is None or d is None:
        if year.isdecimal() and len(year) == 4 and m is not None and d is not None:
            raise UnusableValue(YEAR_OUT_OF_RANGE)
        if month.isdecimal() and day.isdecimal() and year.isdecimal():
            raise UnusableValue(NOT_A_DATE)
        raise UnusableValue(UNREADABLE)
    if y > _latest_year[0]:
        _latest_year[0] = time.localtime().tm_year
        if y > _latest_year[0]:
            raise UnusableValue(YEAR_OUT_OF_RANGE)
    if d > _DAYS_IN_MONTH[m] or (m == 2 and d == 29 and not (y % 4 == 0 and (y % 100 != 0 or y % 400 == 0))):
        raise UnusableValue(NOT_A_DATE)
    return year + _TWO_DIGITS[m] + _TWO_DIGITS[d]


def normalize_birthdate(value: str, date_order: DateOrder = "mdy") -> str:
    """Return the birth date as ``YYYYMMDD``, or raise :class:`UnusableValue`."""
    s = value.strip()
    n = len(s)
    if n > 10 and s[10] in "T " and s[4] == "-":
        s = s[:10]  # ISO date-time: the date part
        n = 10
    if n == 8 and s.isdecimal():
        return _date(s[:4], s[4:6], s[6:])
    if n == 10 and s[4] == s[7] and s[4] in "-/.":  # YYYY-MM-DD and its slashed/dotted spellings
        return _date(s[:4], s[5:7], s[8:])
    for sep in "/-.":
        if s.count(sep) == 2:
            a, b, c = s.split(sep)
            break
    else:
        raise UnusableValue(UNREADABLE)
    if len(a) == 4:  # year first, with 1-digit month or day
        return _date(a, b, c)
    if len(c) != 4 or len(a) > 2 or len(b) > 2:
        raise UnusableValue(UNREADABLE)
    if sep == ".":  # dotted dates are day-first
        return _date(c, b, a)
    first, second = _DAYS.get(a), _DAYS.get(b)
    if first is None or second is None:
        raise UnusableValue(UNREADABLE)
    if first > 12 and second > 12:
        raise UnusableValue(AMBIGUOUS_BOTH_OVER_12)
    if first > 12 or (second <= 12 and date_order == "dmy"):
        return _date(c, b, a)
    return _date(c, a, b)
