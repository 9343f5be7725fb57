"""Computed product sets: which kinds exist, which are refused, and their members. Pure.

metabridge computes *non-personal* sets from the catalog and from the Purchase and ViewContent events it
delivered (issue 5) and keeps each as a Meta product set whose filter is ``retailer_id is_any [...]``.
A set is the same for every person who sees an ad, so a set built from *one* person's behaviour
(:data:`PERSONAL_KINDS`) is refused: it would publish that person's browsing into an ad shared with
everyone, and it could not be personal anyway. Meta's dynamic ads already retarget each viewer from
their own pixel and Conversions API events; that is the tool for "recently viewed by this visitor".

Membership is deterministic: ranks break ties by retailer id, and ``random`` ranks each product by a hash
of the set's seed and its id (rendezvous hashing), so a set keeps its members from one sync to the next
unless products come, go or change availability, and then only the affected places move.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from metabridge.catalog.products import ProductItem

__all__ = [
    "AVAILABLE",
    "DEFAULT_SET_SIZE",
    "MAX_SET_SIZE",
    "PERSONAL_KINDS",
    "SET_KINDS",
    "ProductInfo",
    "SetKind",
    "compute_members",
    "product_info",
    "refusal_reason",
]

DEFAULT_SET_SIZE = 50
#: [metabridge] Upper bound of a computed set (its filter stays far below the 500 KiB limit).
MAX_SET_SIZE = 1_000
#: Availability values an ad may promote (a set of sold-out products wastes the ad).
AVAILABLE: frozenset[str] = frozenset({"in stock", "available for order"})


class ProductInfo(NamedTuple):
    """What membership needs to know of a product."""

    availability: str | None
    quantity: int | None


def product_info(product: ProductInfo | ProductItem | Mapping[str, Any]) -> ProductInfo:
    """:class:`ProductInfo` of a ProductInfo, a :class:`ProductItem` or an items_batch ``data`` mapping."""
    if isinstance(product, ProductInfo):
        return product
    data = product.data if isinstance(product, ProductItem) else product
    quantity = data.get("quantity_to_sell_on_facebook")
    return ProductInfo(
        data.get("availability"),
        quantity if isinstance(quantity, int) and not isinstance(quantity, bool) else None,
    )


@dataclass(frozen=True, slots=True)
class SetKind:
    """A non-personal set kind: how it is computed and which products may be in it."""

    name: str
    description: str
    eligible: Callable[[ProductInfo, int, int], bool]  # (info, purchases, views) -> may it be a member
    score: Callable[[str, ProductInfo, int, int, str], Any]  # (id, info, purchases, views, seed); lower first
    default_size: int = DEFAULT_SET_SIZE


def _seeded(retailer_id: str, seed: str) -> str:
    return hashlib.sha256(f"{seed}\x1f{retailer_id}".encode()).hexdigest()


_SET_ROWS: tuple[SetKind, ...] = (
    SetKind(
        "most_sold",
        "the available products with the most units bought in delivered Purchase events",
        lambda info, bought, viewed: info.availability in AVAILABLE and bought > 0,
        lambda rid, info, bought, viewed, seed: -bought,
    ),
    SetKind(
        "most_viewed",
        "the available products with the most delivered ViewContent events",
        lambda info, bought, viewed: info.availability in AVAILABLE and viewed > 0,
        lambda rid, info, bought, viewed, seed: -viewed,
    ),
    SetKind(
        "most_in_stock",
        "the in-stock products with the largest quantity_to_sell_on_facebook (inventory)",
        lambda info, bought, viewed: info.availability == "in stock" and (info.quantity or 0) > 0,
        lambda rid, info, bought, viewed, seed: -(info.quantity or 0),
    ),
    SetKind(
        "random",
        "available products picked at random, stable between syncs (seeded by the set)",
        lambda info, bought, viewed: info.availability in AVAILABLE,
        lambda rid, info, bought, viewed, seed: _seeded(rid, seed),
    ),
)
#: Non-personal kinds metabridge computes and sends to Meta.
SET_KINDS: Mapping[str, SetKind] = {kind.name: kind for kind in _SET_ROWS}

_ONE_PERSON = "a Meta product set is shared by every ad and every viewer"
#: Personal kinds: each is built from one person's behaviour, so none may ever be sent to Meta.
PERSONAL_KINDS: Mapping[str, str] = {
    "recently_viewed": f"built from what one visitor viewed recently; {_ONE_PERSON}",
    "viewed_by_visitor": f"built from one visitor's product views; {_ONE_PERSON}",
    "recommended_for_you": f"recommendations for one person from their own behaviour; {_ONE_PERSON}",
    "similar_to_viewed": f"products similar to what one visitor viewed; {_ONE_PERSON}",
    "cart_abandoned": f"products one visitor left in their cart; {_ONE_PERSON}",
    "wishlist": f"one customer's wish list; {_ONE_PERSON}",
    "purchased_by_customer": f"what one customer bought; {_ONE_PERSON}",
}
_RETARGET = "Meta's dynamic ads already retarget each person from their own events"


def refusal_reason(kind: str) -> str | None:
    """Why ``kind`` may not be synced as a Meta product set; ``None`` for the kinds of :data:`SET_KINDS`."""
    if kind in SET_KINDS:
        return None
    allowed = ", ".join(SET_KINDS)
    reason = PERSONAL_KINDS.get(kind)
    if reason is not None:
        return (
            f"{kind} is a personal product set ({reason}), so metabridge never sends it to Meta; "
            f"{_RETARGET}. Allowed kinds: {allowed}"
        )
    return f"unknown product set kind {kind!r}: allowed kinds are {allowed}"


def compute_members(
    kind: str,
    size: int,
    products: Mapping[str, ProductInfo | ProductItem | Mapping[str, Any]],
    purchases: Mapping[str, int],
    views: Mapping[str, int],
    seed: str,
) -> list[str]:
    """The retailer ids of a ``kind`` set of at most ``size`` members, best first.

    ``products`` is the catalog (retailer id -> product); ``purchases`` and ``views`` count units bought
    and views per retailer id (ids not in the catalog are ignored); ``seed`` identifies the set (only
    ``random`` uses it). Ties are broken by retailer id, so the result depends only on the arguments.
    Raises ``ValueError`` for a refused kind or a size outside 1..:data:`MAX_SET_SIZE`.
    """
    reason = refusal_reason(kind)
    if reason is not None:
        raise ValueError(reason)
    if not 1 <= size <= MAX_SET_SIZE:
        raise ValueError(f"a product set's size must be between 1 and {MAX_SET_SIZE}, got {size}")
    spec = SET_KINDS[kind]
    ranked: list[tuple[Any, str]] = []
    for retailer_id, product in products.items():
        info = product_info(product)
        bought, viewed = purchases.get(retailer_id, 0), views.get(retailer_id, 0)
        if spec.eligible(info, bought, viewed):
            ranked.append((spec.score(retailer_id, info, bought, viewed, seed), retailer_id))
    return [retailer_id for _, retailer_id in heapq.nsmallest(size, ranked)]
