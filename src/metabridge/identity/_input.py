"""Reading raw input values (private): numbers and dates to text, and the record's own country."""

from __future__ import annotations

import datetime as _dt
import math
import numbers
from typing import Any

from metabridge.identity.location import country_code

UNREADABLE_TYPE = "unreadable value (text, number or date expected)"
EMPTY = "empty value"


def to_text(value: Any) -> str | None:
    """Return the text form of a scalar input value, or ``None`` when it has no sensible one.

    Integral numbers (a phone or ZIP stored as a number, a float like ``94035.0``) become their digits;
    dates become ISO text. Booleans, NaN and containers are unreadable.
    """
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        f = float(value)
        if not math.isfinite(f):
            return None
        return str(int(f)) if f.is_integer() else repr(f)
    if isinstance(value, numbers.Number):
        return str(value)
    if isinstance(value, (_dt.date, _dt.datetime)):
        return value.isoformat()
    return None


def record_country(value: Any) -> str | None:
    """Return the alpha-2 code of a record's ``country`` value (first readable item of a list), else None.

    A hashed country cannot be read, so such a record has no known country for the phone/state/zip rules.
    """
    if value is None:
        return None
    if type(value) is str:
        return country_code(value.strip())
    if isinstance(value, (list, tuple)):
        for item in value:
            code = record_country(item)
            if code is not None:
                return code
        return None
    text = to_text(value)
    return country_code(text.strip()) if text is not None else None
