"""What a sync must send: the source catalog against what Meta last confirmed. Pure.

Both sides are ``retailer_id -> fingerprint`` (:func:`metabridge.catalog.products.fingerprint` of the
item's ``data``): ``current`` from the source catalog, ``sent`` the fingerprint Meta last confirmed for
each item. An item is *created* when only the source has it, *updated* when the fingerprints differ,
*deleted* when only Meta has it; an unchanged item sends nothing.

An item is *unsettled* when an items_batch call carried it and Meta's outcome was never learnt (the batch was
abandoned): Meta may hold it as that call left it, whatever ``sent`` says. :func:`plan_changes` therefore
resends an unsettled item whose product exists even when its fingerprint equals the confirmed one, and
*retracts* (DELETE) an unsettled item whose product is gone, confirmed or not (an abandoned DELETE may
already have removed it).
:data:`CHANGE_RULES` says, per kind, which items_batch method carries the change, which job counter counts
it, and whether a per-item error meaning "no such item" still reaches the goal (a retraction: the item is
not in Meta either way).

:func:`plan_changes` walks two mappings (O(n) dict look-ups); the sync calls it per keyset page of the
products whose state differs (read from the database), so a sync of any size runs in bounded memory.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["CHANGE_RULES", "ChangeKind", "ChangeRule", "Changes", "plan_changes"]


class ChangeKind(enum.Enum):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"
    #: DELETE of an item Meta never confirmed holding but may hold (an abandoned batch carried it).
    RETRACTED = "retracted"


@dataclass(frozen=True, slots=True)
class ChangeRule:
    """How one kind of change is sent and counted."""

    method: Literal["UPDATE", "DELETE"]
    counter: Literal["created", "updated", "deleted"]
    #: A per-item error still counts as done: the request only had to make sure Meta lacks the item, and
    #: Meta's docs do not say what a DELETE of a missing retailer id answers (nothing, or an error).
    error_is_done: bool = False


#: Every create or change is an upsert (UPDATE with allow_upsert, :mod:`metabridge.catalog.batches`).
CHANGE_RULES: Mapping[ChangeKind, ChangeRule] = {
    ChangeKind.CREATED: ChangeRule("UPDATE", "created"),
    ChangeKind.UPDATED: ChangeRule("UPDATE", "updated"),
    ChangeKind.DELETED: ChangeRule("DELETE", "deleted"),
    ChangeKind.RETRACTED: ChangeRule("DELETE", "deleted", error_is_done=True),
}


@dataclass(frozen=True, slots=True)
class Changes:
    """Retailer ids to create, update, delete and retract, each sorted."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    retracted: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.created) + len(self.updated) + len(self.deleted) + len(self.retracted)

    def __bool__(self) -> bool:
        return self.total > 0


def plan_changes(
    current: Mapping[str, str], sent: Mapping[str, str], unsettled: Collection[str] = frozenset()
) -> Changes:
    """Created, updated, deleted and retracted retailer ids between ``current`` (source) and ``sent``
    (Meta), ``unsettled`` being the ids an abandoned batch carried since Meta last confirmed them."""
    created: list[str] = []
    updated: list[str] = []
    get_sent = sent.get
    for retailer_id, fingerprint in current.items():
        confirmed = get_sent(retailer_id)
        if confirmed is None:
            created.append(retailer_id)
        elif confirmed != fingerprint or retailer_id in unsettled:
            updated.append(retailer_id)
    deleted = [rid for rid in sent if rid not in current and rid not in unsettled]
    retracted = [rid for rid in unsettled if rid not in current]
    for ids in (created, updated, deleted, retracted):
        ids.sort()
    return Changes(created, updated, deleted, retracted)
