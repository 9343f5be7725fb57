"""Destination keys: which member fields a destination sends, as Meta's multi-key schema columns.

A destination chooses its medium with ``keys``: ``["email"]``, ``["phone"]`` (SMS contacts) or several keys
(``["email", "phone", "first_name", "last_name", "zip"]``). Each key fills one or more columns of Meta's
multi-key schema (audiences-and-catalog.md §2.2); the table below is the only place that says which.

Why always the multi-key form, even for one key: ``["EMAIL"]`` with ``[[hash]]`` rows is a documented
multi-key schema, so single-key and multi-key destinations share one row builder, one payload shape and one
normalizer (metabridge.identity). The single-key ``EMAIL_SHA256`` / ``PHONE_SHA256`` strings would be a
second code path with the same effect on Meta's side and nothing to gain.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from types import MappingProxyType
from typing import Mapping

__all__ = ["KEY_COLUMNS", "SCHEMA_ORDER", "columns_for", "normalize_keys", "KeysError"]

#: destination key (a member field) -> the schema columns it fills, in Meta's documented order.
KEY_COLUMNS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "external_id": ("EXTERN_ID",),
        "email": ("EMAIL",),
        "phone": ("PHONE",),
        "gender": ("GEN",),
        "birthdate": ("DOBY", "DOBM", "DOBD"),
        "last_name": ("LN",),
        "first_name": ("FN", "FI"),
        "city": ("CT",),
        "state": ("ST",),
        "zip": ("ZIP",),
        "madid": ("MADID",),
        "country": ("COUNTRY",),
    }
)

#: Column order of every schema metabridge sends (Meta's list order, §2.2): stable, so a destination's
#: schema never changes between batches or sessions.
SCHEMA_ORDER: tuple[str, ...] = (
    "EXTERN_ID", "EMAIL", "PHONE", "GEN", "DOBY", "DOBM", "DOBD", "LN", "FN", "FI", "CT", "ST", "ZIP",
    "MADID", "COUNTRY",
)


class KeysError(ValueError):
    """A destination's ``keys`` are not usable (unknown key, empty list)."""


def normalize_keys(keys: Iterable[str]) -> tuple[str, ...]:
    """Validated, de-duplicated keys in table order (so two spellings of one choice compare equal)."""
    given = [str(k).strip().lower() for k in keys]
    if not given:
        raise KeysError("at least one key is needed (email, phone, or several keys)")
    unknown = sorted({k for k in given if k not in KEY_COLUMNS})
    if unknown:
        raise KeysError(f"unknown key(s) {', '.join(unknown)}; known: {', '.join(KEY_COLUMNS)}")
    return tuple(k for k in KEY_COLUMNS if k in given)


def columns_for(keys: Sequence[str]) -> tuple[str, ...]:
    """The schema columns of a destination, in :data:`SCHEMA_ORDER`."""
    wanted = {column for key in normalize_keys(keys) for column in KEY_COLUMNS[key]}
    return tuple(c for c in SCHEMA_ORDER if c in wanted)
