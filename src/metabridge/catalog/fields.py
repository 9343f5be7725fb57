"""Meta's PRODUCT_ITEM fields for ``items_batch`` as data, and the shop terms that map to them. Pure.

:data:`PRODUCT_ITEM_FIELDS` is the rule table of audiences-and-catalog.md §6.2 (Meta's "Supported Fields"
of the items_batch reference): for each field of an item's ``data`` object, whether CREATE needs it, its
maximum length, its allowed values and the kind of value. :func:`value_problem` is the one function that
walks a row against a value *in Meta's wire format*; both :mod:`metabridge.catalog.products` (after it has
normalized a shop's product) and the sandbox's ``items_batch`` (on what it receives) call it, so the rules
live in exactly one place.

:data:`SHOP_FIELDS` maps the names shops use (issue 5) to Meta's names. Meta's own names are accepted as
they are. A field that is in neither table is sent as it is: Meta ignores it and answers the warning
"Unrecognised field" (§6.1; the first example of ``examples/catalog-doc-examples.json``), so metabridge
reports it as a warning, never as an error.

Decisions where the sources disagree (§7):

- ``image`` is marked required but ``image_link`` alone is accepted ("not required if image is provided";
  every peer sends ``image_link``): an item needs one of the two (:data:`IMAGE_FIELDS`).
- ``availability`` and ``condition`` take the values of the items_batch table (4 and 3), not the wider SDK
  enums (§7.22): Meta documents only those for items_batch.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from metabridge.events.rules import CURRENCY_CODES

__all__ = [
    "AVAILABILITY_VALUES",
    "CONDITION_VALUES",
    "CURRENCY_CODES",
    "IMAGE_FIELDS",
    "MAX_CUSTOM_NUMBER",
    "PRICE_FIELDS",
    "PRICE_RULE",
    "PRODUCT_ITEM_FIELDS",
    "REQUIRED_FIELDS",
    "SHOP_FIELDS",
    "URL_RULE",
    "FieldKind",
    "FieldRule",
    "parse_meta_price",
    "rule_text",
    "value_problem",
]


class FieldKind(enum.Enum):
    """The shape of a field's value in an items_batch ``data`` object."""

    TEXT = "text"
    """A string (length-limited when the row says so)."""
    ENUM = "enum"
    """One of the row's ``allowed`` values, exactly as Meta spells them."""
    PRICE = "price"
    """``"<amount> <ISO 4217 code>"`` with one space, e.g. ``"9.99 USD"``."""
    URL = "url"
    """An absolute ``http://`` or ``https://`` URL."""
    URL_LIST = "url_list"
    """An array of URLs (at most ``max_items``)."""
    TEXT_LIST = "text_list"
    """An array of strings (at most ``max_items``)."""
    IMAGES = "images"
    """An array (at most ``max_items``) of ``{"url": ..., "tag": [...]}`` objects."""
    COUNT = "count"
    """An integer between 0 and ``maximum`` (or unbounded)."""
    ANY = "any"
    """Any JSON value: Meta documents the field but metabridge checks nothing more than JSON."""


#: Kinds whose value is a JSON array.
_ARRAY_KINDS = frozenset({FieldKind.URL_LIST, FieldKind.TEXT_LIST, FieldKind.IMAGES})


@dataclass(frozen=True, slots=True)
class FieldRule:
    """One row of Meta's PRODUCT_ITEM field table."""

    name: str
    kind: FieldKind
    required: bool = False
    max_length: int | None = None
    allowed: tuple[str, ...] = ()
    max_items: int | None = None
    maximum: int | None = None
    array: bool = False
    """An :attr:`FieldKind.ANY` field whose value Meta documents as an array (§6.2: ``shipping`` "array of
    objects", ``video: []``): like the list kinds it is removed with ``[]``, not ``""``."""

    @property
    def is_array(self) -> bool:
        """Whether the value is a JSON array (what decides how a field Meta holds is removed)."""
        return self.array or self.kind in _ARRAY_KINDS


AVAILABILITY_VALUES: tuple[str, ...] = ("in stock", "out of stock", "available for order", "discontinued")
CONDITION_VALUES: tuple[str, ...] = ("new", "refurbished", "used")
#: ``custom_number_0..4`` range (§6.2).
MAX_CUSTOM_NUMBER = 4_294_967_295

_T, _E, _P, _U = FieldKind.TEXT, FieldKind.ENUM, FieldKind.PRICE, FieldKind.URL
_UL, _TL, _IM = FieldKind.URL_LIST, FieldKind.TEXT_LIST, FieldKind.IMAGES
_C, _A = FieldKind.COUNT, FieldKind.ANY

_ROWS: tuple[FieldRule, ...] = (
    # --- required on CREATE (§6.2) ----------------------------------------------------------------------
    FieldRule("id", _T, required=True, max_length=100),
    FieldRule("title", _T, required=True, max_length=100),
    FieldRule("description", _T, required=True, max_length=5000),
    FieldRule("availability", _E, required=True, allowed=AVAILABILITY_VALUES),
    FieldRule("condition", _E, required=True, allowed=CONDITION_VALUES),
    FieldRule("price", _P, required=True),
    FieldRule("link", _U, required=True),
    FieldRule("brand", _T, required=True),
    # one of image / image_link is required: IMAGE_FIELDS
    FieldRule("image", _IM, max_items=21),
    FieldRule("image_link", _U),
    # --- optional -----------------------------------------------------------------------------------------
    FieldRule("sale_price", _P),
    FieldRule("sale_price_effective_date", _T),
    FieldRule("additional_image_link", _UL, max_items=50),
    FieldRule("google_product_category", _T, max_length=250),
    FieldRule("fb_product_category", _T),
    FieldRule("item_group_id", _T),
    FieldRule("additional_variant_attribute", _T),
    *(FieldRule(f"custom_label_{n}", _T, max_length=100) for n in range(5)),
    *(FieldRule(f"custom_number_{n}", _C, maximum=MAX_CUSTOM_NUMBER) for n in range(5)),
    FieldRule("internal_label", _TL),
    FieldRule("quantity_to_sell_on_facebook", _C),
    FieldRule("inventory", _C),  # deprecated by Meta in favour of quantity_to_sell_on_facebook
    FieldRule("product_type", _T, max_length=750),
    FieldRule("mobile_link", _U),
    *(FieldRule(name, _T) for name in (
        "gtin", "mpn", "color", "size", "gender", "age_group", "material", "pattern",
        "rich_text_description", "shipping_weight", "expiration_date", "origin_country", "importer_name",
        "vendor_id",
    )),  # fmt: skip
    FieldRule("shipping", _A, array=True),
    FieldRule("video", _A, array=True),
    *(FieldRule(name, _A) for name in (
        "importer_address", "applink", "rating_count", "user_rating", "ordering_index", "disabled_capabilities",
    )),  # fmt: skip
)

#: Meta field name -> its rule (§6.2).
PRODUCT_ITEM_FIELDS: Mapping[str, FieldRule] = {rule.name: rule for rule in _ROWS}
#: Fields a CREATE (or an upserting UPDATE of a missing item) must carry, in table order.
REQUIRED_FIELDS: tuple[str, ...] = tuple(rule.name for rule in _ROWS if rule.required)
#: An item needs at least one of these (§6.2, §7.21).
IMAGE_FIELDS: tuple[str, ...] = ("image_link", "image")
PRICE_FIELDS: tuple[str, ...] = ("price", "sale_price")

#: The shop's terms (issue 5) -> Meta's items_batch names. Meta's own names need no row.
SHOP_FIELDS: Mapping[str, str] = {
    "retailer_id": "id",
    "additional_image_links": "additional_image_link",
    "inventory": "quantity_to_sell_on_facebook",
}

_PRICE_RE = re.compile(r"(\d+(?:\.\d+)?) ([A-Z]{3})")

PRICE_RULE = 'must be a number and an ISO 4217 currency such as "9.99 USD"'
URL_RULE = "must be an absolute http:// or https:// URL"


def rule_text(rule: FieldRule) -> str:
    """The rule of ``rule`` in words, as error messages state it."""
    kind = rule.kind
    if kind is FieldKind.ENUM:
        return "must be one of " + ", ".join(rule.allowed)
    if kind is FieldKind.PRICE:
        return PRICE_RULE
    if kind is FieldKind.URL:
        return URL_RULE
    if kind is FieldKind.URL_LIST:
        return f"must be a list of at most {rule.max_items} http(s) URLs"
    if kind is FieldKind.TEXT_LIST:
        return "must be a list of strings"
    if kind is FieldKind.IMAGES:
        return f'must be a list of at most {rule.max_items} {{"url": ..., "tag": [...]}} objects'
    if kind is FieldKind.COUNT:
        if rule.maximum is not None:
            return f"must be a whole number between 0 and {rule.maximum}"
        return "must be a whole number >= 0"
    if kind is FieldKind.TEXT and rule.max_length is not None:
        return f"must be text of at most {rule.max_length} characters"
    if kind is FieldKind.TEXT:
        return "must be text"
    return "must be a JSON value"


def parse_meta_price(value: Any) -> tuple[Decimal, str] | None:
    """``(amount, currency)`` of a price in Meta's format (``"9.99 USD"``), or ``None`` if it is not one."""
    if not isinstance(value, str):
        return None
    match = _PRICE_RE.fullmatch(value)
    if match is None or match.group(2) not in CURRENCY_CODES:
        return None
    try:
        return Decimal(match.group(1)), match.group(2)
    except InvalidOperation:  # pragma: no cover - the regex only lets decimals through
        return None


def _is_url(value: Any) -> bool:
    if not isinstance(value, str) or value != value.strip() or not value:
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _is_count(value: Any, maximum: int | None) -> bool:
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and value >= 0
        and (maximum is None or value <= maximum)
    )


def value_problem(rule: FieldRule, value: Any) -> str | None:
    """What is wrong with ``value`` (in Meta's wire format) under ``rule``; ``None`` when Meta takes it.

    Emptiness is not judged here (a required field's absence is the caller's check): an empty list is a
    valid value (Meta: "sending an empty array removes all entries of that field").
    """
    kind = rule.kind
    if kind is FieldKind.TEXT:
        if not isinstance(value, str):
            return rule_text(rule)
        if rule.max_length is not None and len(value) > rule.max_length:
            return f"must be at most {rule.max_length} characters (got {len(value)})"
        return None
    if kind is FieldKind.ENUM:
        return None if value in rule.allowed else rule_text(rule)
    if kind is FieldKind.PRICE:
        return None if parse_meta_price(value) is not None else rule_text(rule)
    if kind is FieldKind.URL:
        return None if _is_url(value) else rule_text(rule)
    if kind is FieldKind.COUNT:
        return None if _is_count(value, rule.maximum) else rule_text(rule)
    if kind is FieldKind.ANY:
        return None
    if not isinstance(value, list) or (rule.max_items is not None and len(value) > rule.max_items):
        return rule_text(rule)
    if kind is FieldKind.URL_LIST:
        return None if all(_is_url(v) for v in value) else rule_text(rule)
    if kind is FieldKind.TEXT_LIST:
        return None if all(isinstance(v, str) for v in value) else rule_text(rule)
    # IMAGES
    for image in value:
        if not isinstance(image, Mapping) or not _is_url(image.get("url")):
            return rule_text(rule)
        tags = image.get("tag", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            return rule_text(rule)
    return None
