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

A sync builds one row per member and compares it with the row Meta holds, so :class:`RowBuilder` does the
per-destination work (column positions, the schema without EXTERN_ID, their keys) once, and a row is built
with its fingerprint in one call, as a plain tuple of strings: CPython's garbage collector stops tracking
such tuples (not tuple subclasses such as named tuples), so the ~10,000 rows a batch holds do not set off
full collections, which cost a sync more than building its rows did.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from functools import lru_cache


__all__ = [
    "RowBuilder", "row_fingerprint", "schema_of", "STRONG_COLUMNS",
]

#: A row with one of these can be matched alone.
STRONG_COLUMNS = frozenset({"EMAIL", "PHONE", "EXTERN_ID", "MADID"})

NO_VALUE = "no value for this destination's keys ({keys})"
ONLY_BROAD = (
    "only broad keys ({present}) for this destination: needs an email, phone, external_id, madid, "
    "or a first and last name"
)


#: OpenSSL's SHA-256: for the ~200 bytes of a row it is about twice CPython's built-in one (which wins only on
#: the short values identity hashes), and uses the CPU's SHA instructions where there are some.
_sha256 = hashlib.sha256


def row_fingerprint(schema_key: str, cells: Sequence[str]) -> str:
    """SHA-256 of schema + cells (unit and record separators cannot occur in normalized values)."""
    return _sha256((schema_key + "\x1e" + "\x1f".join(cells)).encode("utf-8")).hexdigest()


@lru_cache(maxsize=256)
def schema_of(schema_key: str) -> tuple[str, ...]:
    """``"A,B,C"`` -> ``("A", "B", "C")``."""
    return tuple(schema_key.split(","))


class RowBuilder:
    """The rows of one destination: ``builder(values)`` -> ``(schema_key, cells, fingerprint)`` (the schema
    it is sent under, ``"A,B,C"``; its cells, same length and order; :func:`row_fingerprint` of both: two rows
    are the same for Meta iff their fingerprints are equal), or the reason the member is rejected (a ``str``).

    ``values`` are a member's normalized schema values (``MemberIdentity.values``, as stored); ``keys``
    (the destination's key names) only serve the rejection message.
    """

    __slots__ = ("columns", "keys", "_blanks", "_key", "_strong", "_extern", "_short_key", "_prefix", "_short_prefix")

    def __init__(self, columns: Sequence[str], keys: Sequence[str] = ()) -> None:
        self.columns = tuple(columns)
        self.keys = tuple(keys)
        self._blanks = ("",) * len(self.columns)
        self._key = ",".join(self.columns)
        self._strong = tuple(i for i, c in enumerate(self.columns) if c in STRONG_COLUMNS)
        self._extern = self.columns.index("EXTERN_ID") if "EXTERN_ID" in self.columns else -1
        self._short_key = ",".join(c for c in self.columns if c != "EXTERN_ID")
        self._prefix, self._short_prefix = self._key + "\x1e", self._short_key + "\x1e"  # see row_fingerprint

    def __call__(self, values: Mapping[str, str]) -> tuple[str, tuple[str, ...], str] | str:
        cells = list(map(values.get, self.columns, self._blanks))  # stored values are never None
        for i in self._strong:
            if cells[i]:
                break
        else:
            reason = self._weak_only(cells)
            if reason is not None:
                return reason
        extern = self._extern
        if extern >= 0 and not cells[extern]:
            del cells[extern]
            fingerprint = _sha256((self._short_prefix + "\x1f".join(cells)).encode()).hexdigest()
            return self._short_key, tuple(cells), fingerprint
        return self._key, tuple(cells), _sha256((self._prefix + "\x1f".join(cells)).encode()).hexdigest()

    def _weak_only(self, cells: list[str]) -> str | None:
        """No strong cell: the reason to reject, or None when a first + last name can match."""
        present = [c for c, cell in zip(self.columns, cells) if cell]
        if not present:
            return NO_VALUE.format(keys=", ".join(self.keys) or ", ".join(self.columns))
        if "LN" in present and ("FN" in present or "FI" in present):
            return None
        return ONLY_BROAD.format(present=", ".join(present))
