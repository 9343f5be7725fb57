"""What went wrong with one customer-data value, and the exception normalizers use to say so.

The rules (identity-rules.md "General") require that a value which is empty, or that normalization empties
or cannot read, is left out and "counted with its reason": a :class:`FieldIssue` is that reason. Issue
messages name the rule that failed and never echo contact information (emails, phones, names, dates), so
they can be logged; short non-identifying values such as a country or gender word are quoted to help fix
the source data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["FieldIssue", "IssueLevel", "UnusableValue"]

IssueLevel = Literal["dropped", "warning"]


@dataclass(frozen=True, slots=True)
class FieldIssue:
    """One problem with one input value.

    ``field`` is ``"user_data.<key>"`` for the Conversions API and the member field name (``"email"``) for
    audiences. ``level`` is ``"dropped"`` when the value was left out, ``"warning"`` when it was sent but may
    not match (e.g. a national phone number with no known country).
    """

    field: str
    message: str
    level: IssueLevel


class UnusableValue(ValueError):
    """Raised by a ``normalize_*`` function when a value cannot be read under its rule.

    The message names the rule (it becomes :attr:`FieldIssue.message`), so it must not contain the value
    itself when the value is contact information.
    """


def quote(value: str, limit: int = 40) -> str:
    """Quote a short, non-identifying value for an issue message, cut to ``limit`` characters."""
    if len(value) > limit:
        value = value[: limit - 1] + "…"
    return repr(value)
