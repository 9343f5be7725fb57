"""What a sync must send: the source catalog against what Meta last confirmed. Pure.

Both sides are ``retailer_id -> fingerprint`` (:func:`metabridge.catalog.products.fingerprint` of the
item's ``data``): ``current`` from the source catalog, ``sent`` the fingerprint Meta last confirmed for
each item. An item is *created* when only the source has it, *updated* when the fingerprints differ,
*deleted* when only Meta has it; an unchanged item sends nothing.

:func:`plan_changes` walks two mappings (O(n) dict look-ups); :func:`merge_changes` does the same over two
streams sorted by retailer id (keyset pages read from the database), holding one pair at a time, so a
sync of any size runs in constant memory. Streams must be in Python's string order (code points: on
PostgreSQL ``ORDER BY retailer_id COLLATE "C"``), which :func:`merge_changes` checks as it goes.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

__all__ = ["Change", "ChangeKind", "Changes", "merge_changes", "plan_changes"]


class ChangeKind(enum.Enum):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"


class Change(NamedTuple):
    kind: ChangeKind
    retailer_id: str


@dataclass(frozen=True, slots=True)
class Changes:
    """Retailer ids to create, update and delete, each sorted."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.created) + len(self.updated) + len(self.deleted)

    def __bool__(self) -> bool:
        return self.total > 0


def plan_changes(current: Mapping[str, str], sent: Mapping[str, str]) -> Changes:
    """Created, updated and deleted retailer ids between ``current`` (source) and ``sent`` (Meta)."""
    created: list[str] = []
    updated: list[str] = []
    get_sent = sent.get
    for retailer_id, fingerprint in current.items():
        confirmed = get_sent(retailer_id)
        if confirmed is None:
            created.append(retailer_id)
        elif confirmed != fingerprint:
            updated.append(retailer_id)
    deleted = [retailer_id for retailer_id in sent if retailer_id not in current]
    created.sort()
    updated.sort()
    deleted.sort()
    return Changes(created, updated, deleted)


def merge_changes(
    current: Iterable[tuple[str, str]], sent: Iterable[tuple[str, str]]
) -> Iterator[Change]:
    """The changes between two ``(retailer_id, fingerprint)`` streams, each sorted by retailer id with no
    duplicates, in retailer-id order. Raises ``ValueError`` when a stream is out of order."""
    left, right = iter(current), iter(sent)
    a = next(left, None)
    b = next(right, None)
    last_a: str | None = None
    last_b: str | None = None
    while a is not None or b is not None:
        if a is not None and last_a is not None and a[0] <= last_a:
            raise ValueError(f"current is not sorted by retailer id: {a[0]!r} after {last_a!r}")
        if b is not None and last_b is not None and b[0] <= last_b:
            raise ValueError(f"sent is not sorted by retailer id: {b[0]!r} after {last_b!r}")
        if b is None or (a is not None and a[0] < b[0]):
            assert a is not None
            yield Change(ChangeKind.CREATED, a[0])
            last_a, a = a[0], next(left, None)
        elif a is None or b[0] < a[0]:
            yield Change(ChangeKind.DELETED, b[0])
            last_b, b = b[0], next(right, None)
        else:
            if a[1] != b[1]:
                yield Change(ChangeKind.UPDATED, a[0])
            last_a, a = a[0], next(left, None)
            last_b, b = b[0], next(right, None)
