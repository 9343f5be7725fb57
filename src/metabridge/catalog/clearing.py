"""Removing from Meta the fields a product lost since Meta confirmed it. Pure.

An items_batch UPDATE changes only the fields it carries (§6.1: "UPDATE can carry any subset"): a field
missing from ``data`` keeps the value Meta holds. A product whose sale ended (``sale_price`` gone), whose
custom label or extra images were removed, sent as its new ``data`` alone, would keep the old value in
Meta forever, and the Meta catalog would no longer equal the source catalog.

So metabridge remembers, for every item Meta confirmed, the names of the fields it holds that a later
version may lack (:func:`held_fields`: every field but the required ones, which validation guarantees in
every version), and an UPDATE carries each such field the new version dropped with an empty value
(:func:`clear_dropped`): ``[]`` for an array field (Meta: "sending an empty array (e.g. ``video: []``)
removes all entries of that field", §6.2) and ``""`` for any other, a field the table does not know
included (Meta may know fields metabridge's table lacks; an unknown one only draws the "Unrecognised
field" warning).

An UPDATE whose batch was abandoned (Meta's outcome never learnt) may have given Meta fields the confirmed
state does not list: they are kept apart as the item's *unsettled* fields until a later confirmation, and
an UPDATE clears whatever either list holds that the product lacks (:func:`merge_held`). Emptying a field
Meta does not hold is harmless: the empty value is what removing it would leave.

The fingerprint stays that of the product's own ``data``: the empty values are a property of the request,
not of the product, so a re-sync right after the confirmation finds nothing changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from metabridge.catalog.fields import PRODUCT_ITEM_FIELDS, REQUIRED_FIELDS

__all__ = ["cleared_value", "clear_dropped", "held_fields", "merge_held"]

_KEPT: frozenset[str] = frozenset(REQUIRED_FIELDS)


def held_fields(data: Mapping[str, Any]) -> list[str]:
    """The fields of an item's ``data`` a later version could drop (all but the required ones), sorted:
    what is remembered of an item once Meta confirmed it."""
    return sorted(name for name in data if name not in _KEPT)


def merge_held(*held: Iterable[str] | None) -> list[str] | None:
    """The fields any of ``held`` lists, sorted (each a :func:`held_fields` list, ``None`` for nothing known):
    what Meta may hold of an item after a confirmation and abandoned UPDATEs. ``None`` when all are."""
    known = [fields for fields in held if fields is not None]
    if not known:
        return None
    return sorted({name for fields in known for name in fields})


def cleared_value(name: str) -> str | list[Any]:
    """The value that removes field ``name`` from a Meta item: ``[]`` for an array field, else ``""``."""
    rule = PRODUCT_ITEM_FIELDS.get(name)
    return [] if rule is not None and rule.is_array else ""


def clear_dropped(data: Mapping[str, Any], held: Iterable[str] | None) -> dict[str, Any]:
    """The ``data`` of an UPDATE that turns an item Meta holds with fields ``held`` into ``data``: ``data``
    plus, for each field of ``held`` that ``data`` lacks, the empty value that removes it.

    ``held`` is ``None`` when Meta holds nothing confirmed of the item (nothing to remove). A required
    field in ``held`` is never cleared (Meta refuses to empty it; every valid version carries it).
    """
    result = dict(data)
    for name in held or ():
        if name not in result and name not in _KEPT:
            result[name] = cleared_value(name)
    return result
