"""Member identity -> one row of a destination's schema; grouping by schema; row fingerprints. Pure.

Meta's rules for multi-key rows (audiences-and-catalog.md §2.2):

- cells follow the schema order; an unknown cell is ``""`` (never sha256(""));
- a row whose EXTERN_ID cell is ``""`` in a schema holding EXTERN_ID is rejected by Meta as
  "empty external ID", so such a row is sent under the same schema *without* EXTERN_ID (rows are grouped
  by the schema they are sent with, and every request carries one schema).

metabridge rejects a member itself (with the reason, counted on the job) when the row would carry nothing
Meta can match on for this destination: no cell at all, or only broad keys (gender, birth date, city,
state, zip, country, first initial) without an email, phone, external id, mobile advertiser id, or a
first + last name.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["Row", "Rejection", "build_row", "STRONG_COLUMNS"]

#: A row with one of these can be matched alone.
STRONG_COLUMNS = frozenset({"EMAIL", "PHONE", "EXTERN_ID", "MADID"})

NO_VALUE = "no value for this destination's keys ({keys})"
ONLY_BROAD = (
    "only broad keys ({present}) for this destination: needs an email, phone, external_id, madid, "
    "or a first and last name"
)


@dataclass(frozen=True, slots=True)
class Row:
    """One row as sent: the schema it is sent under and its cells (same length, same order)."""

    schema: tuple[str, ...]
    cells: tuple[str, ...]
    #: computed once on first use (a sync compares, groups and stores each row: several reads per row).
    _fingerprint: str | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def schema_key(self) -> str:
        key = _SCHEMA_KEYS.get(self.schema)
        if key is None:
            key = _SCHEMA_KEYS[self.schema] = ",".join(self.schema)
        return key

    @property
    def fingerprint(self) -> str:
        """SHA-256 of schema + cells: two rows are the same for Meta iff their fingerprints are equal."""
        fingerprint = self._fingerprint
        if fingerprint is None:
            text = self.schema_key + "\x1e" + "\x1f".join(self.cells)
            fingerprint = hashlib.sha256(text.encode("utf-8")).hexdigest()
            object.__setattr__(self, "_fingerprint", fingerprint)
        return fingerprint


#: schema -> "A,B,C" (a destination has one or two schemas; a handful in a process).
_SCHEMA_KEYS: dict[tuple[str, ...], str] = {}


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a member cannot be sent to a destination (metabridge's own rejection, not Meta's)."""

    reason: str


def build_row(values: Mapping[str, str], columns: Sequence[str], keys: Sequence[str] = ()) -> Row | Rejection:
    """The row for a member's normalized ``values`` (MemberIdentity.values) under ``columns``.

    ``keys`` (the destination's key names) only serve the rejection message.
    """
    get = values.get
    cells = [get(c) or "" for c in columns]  # one pass over the columns: runs once per member and sync
    present = [c for c, cell in zip(columns, cells) if cell]
    if not present:
        return Rejection(NO_VALUE.format(keys=", ".join(keys) or ", ".join(columns)))
    if STRONG_COLUMNS.isdisjoint(present) and not ("LN" in present and ("FN" in present or "FI" in present)):
        return Rejection(ONLY_BROAD.format(present=", ".join(present)))
    schema = tuple(columns)
    if "EXTERN_ID" in schema and not get("EXTERN_ID"):
        schema = tuple(c for c in schema if c != "EXTERN_ID")
        cells = [cell for c, cell in zip(columns, cells) if c != "EXTERN_ID"]
    return Row(schema, tuple(cells))
