"""A shop's product -> the ``data`` object of an items_batch request, or the rules it breaks. Pure.

Shops send products in their own terms (issue 5): ``price`` as ``{"amount", "currency"}``, as a number
with a ``currency`` field or the catalog's currency, or in Meta's ``"9.99 USD"`` text; ``availability``
as ``in_stock``, ``InStock`` or schema.org's ``https://schema.org/InStock``; ``inventory`` for Meta's
``quantity_to_sell_on_facebook``; ``additional_image_links`` for ``additional_image_link``. Each value is
normalized to Meta's format and then checked with the one rule table, :mod:`metabridge.catalog.fields`,
so what :func:`validate_product` accepts is what Meta's items_batch accepts.

Every problem is reported (not only the first) as a :class:`~metabridge.events.errors.FieldError` naming
the *shop's* field and the rule. ``None`` and blank strings count as absent. Fields Meta does not know are
sent as they are and reported as warnings on the :class:`ProductItem` (Meta answers "Unrecognised field"
and ignores them, §6.1).

Prices are written like Meta's WooCommerce plugin writes them (§6.4): the shortest exact decimal, a
space, the ISO 4217 code (``12.50`` -> ``"12.5 USD"``, ``14`` -> ``"14 GBP"``), so the same price always
gives the same text and the same fingerprint.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from metabridge.catalog.fields import (
    AVAILABILITY_VALUES,
    CONDITION_VALUES,
    CURRENCY_CODES,
    IMAGE_FIELDS,
    PRICE_RULE,
    PRODUCT_ITEM_FIELDS,
    REQUIRED_FIELDS,
    SHOP_FIELDS,
    FieldKind,
    FieldRule,
    rule_text,
    value_problem,
)
from metabridge.events.errors import FieldError

__all__ = [
    "AVAILABILITY_ALIASES",
    "CONDITION_ALIASES",
    "UNKNOWN_FIELD",
    "ProductItem",
    "fingerprint",
    "format_price",
    "validate_product",
]

UNKNOWN_FIELD = (
    "is not a Meta product field: it is sent as is and Meta ignores it (warning \"Unrecognised field\")"
)
REQUIRED = "is required"
NO_CURRENCY = (
    PRICE_RULE + ': the amount has no currency (give {"amount", "currency"}, a "currency" field, '
    "or set the catalog's currency)"
)


def _squash(text: str) -> str:
    """``"In_Stock"``, ``"in stock"``, ``"InStock"``, ``"https://schema.org/InStock"`` -> ``"instock"``."""
    text = text.strip().rsplit("/", 1)[-1]
    return re.sub(r"[^a-z]", "", text.lower())


#: Spellings shops use -> Meta's availability value. Keys are squashed (:func:`_squash`); Meta's own
#: values, their snake/camel/schema.org forms, and schema.org's BackOrder and SoldOut.
AVAILABILITY_ALIASES: Mapping[str, str] = {
    **{_squash(v): v for v in AVAILABILITY_VALUES},
    "backorder": "available for order",
    "onbackorder": "available for order",
    "soldout": "out of stock",
}
#: Spellings shops use -> Meta's condition value (schema.org's ``NewCondition`` … included).
CONDITION_ALIASES: Mapping[str, str] = {
    **{_squash(v): v for v in CONDITION_VALUES},
    **{_squash(v) + "condition": v for v in CONDITION_VALUES},
}
_ENUM_ALIASES: Mapping[str, Mapping[str, str]] = {
    "availability": AVAILABILITY_ALIASES,
    "condition": CONDITION_ALIASES,
}

_AMOUNT_FIRST = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]{3})")
_CODE_FIRST = re.compile(r"([A-Za-z]{3})\s*([0-9]+(?:\.[0-9]+)?)")
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")


@dataclass(frozen=True, slots=True)
class ProductItem:
    """A valid product as Meta's items_batch takes it.

    ``data`` is exactly the ``data`` object of an items_batch request (Meta's names, ``id`` included);
    ``fingerprint`` the SHA-256 of its canonical JSON (:func:`fingerprint`), which a re-sync compares with
    the fingerprint Meta last confirmed; ``warnings`` the fields Meta will ignore.
    """

    retailer_id: str
    data: dict[str, Any]
    fingerprint: str
    warnings: tuple[FieldError, ...] = ()


def fingerprint(data: Mapping[str, Any]) -> str:
    """SHA-256 hex of ``data`` as canonical JSON (keys sorted at every level): equal iff same content."""
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()


def format_price(amount: Decimal, currency: str) -> str:
    """Meta's price text: shortest exact decimal, one space, the code (``Decimal("12.50")`` -> ``12.5``)."""
    text = format(amount.normalize(), "f") if amount else "0"
    return f"{text} {currency}"


def _currency(value: Any) -> str | None:
    if isinstance(value, str) and value.strip().upper() in CURRENCY_CODES:
        return value.strip().upper()
    return None


def _amount(value: Any) -> Decimal | None:
    """A non-negative finite amount from a number or a decimal string; ``None`` otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, Decimal)):
        amount = Decimal(value)
    elif isinstance(value, float):
        amount = Decimal(repr(value))
    elif isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        amount = Decimal(value.strip())
    else:
        return None
    try:
        if not amount.is_finite() or amount < 0:
            return None
    except InvalidOperation:  # pragma: no cover - signalling NaN
        return None
    return amount


def _price(value: Any, default_currency: str | None) -> str | FieldError | None:
    """Meta's price text for a shop's price, or the message (a FieldError without field) of the rule."""
    amount: Decimal | None
    code: Any
    if isinstance(value, Mapping):
        amount, code = _amount(value.get("amount")), value.get("currency")
        if amount is None:
            return None
        if code is None or code == "":
            code = default_currency
    elif isinstance(value, str) and (match := _AMOUNT_FIRST.fullmatch(value.strip())):
        amount, code = _amount(match.group(1)), match.group(2)
    elif isinstance(value, str) and (match := _CODE_FIRST.fullmatch(value.strip())):
        amount, code = _amount(match.group(2)), match.group(1)
    else:
        amount, code = _amount(value), default_currency
        if amount is None:
            return None
    if amount is None:
        return None
    if code is None:
        return FieldError("", NO_CURRENCY)
    currency = _currency(code)
    if currency is None:
        return FieldError("", f"'{code}' is not an ISO 4217 currency code")
    return format_price(amount, currency)


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdecimal():
        return int(value.strip())
    return None


def _list(value: Any) -> Any:
    """A list stays a list (strings stripped); one string is a one-element list."""
    if isinstance(value, str):
        return [value.strip()]
    if isinstance(value, list):
        return [v.strip() if isinstance(v, str) else v for v in value]
    return value


def _normalize(rule: FieldRule, value: Any, currency: str | None) -> tuple[Any, str | None]:
    """``(Meta value, problem)`` for one shop value under ``rule``."""
    kind = rule.kind
    if kind is FieldKind.ENUM:
        if isinstance(value, str):
            value = _ENUM_ALIASES.get(rule.name, {}).get(_squash(value), value)
    elif kind is FieldKind.PRICE:
        price = _price(value, currency)
        if price is None:
            return value, PRICE_RULE
        if isinstance(price, FieldError):
            return value, price.message
        value = price
    elif kind is FieldKind.TEXT:
        text = _text(value)
        if text is None:
            return value, rule_text(rule)
        value = text
    elif kind is FieldKind.URL:
        value = value.strip() if isinstance(value, str) else value
    elif kind in (FieldKind.URL_LIST, FieldKind.TEXT_LIST):
        value = _list(value)
    elif kind is FieldKind.COUNT:
        count = _count(value)
        value = value if count is None else count
    elif kind is FieldKind.ANY or kind is FieldKind.IMAGES:
        try:
            orjson.dumps(value)
        except TypeError:
            return value, "must be a JSON value"
    return value, value_problem(rule, value)


def _absent(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def validate_product(
    raw: Mapping[str, Any], *, currency: str | None = None
) -> ProductItem | list[FieldError]:
    """Validate one product in the shop's terms; its items_batch item, or every rule it breaks.

    ``currency`` is the catalog's currency, used for prices given as a bare number when the product has
    no ``currency`` field of its own. It must be an ISO 4217 code (a ValueError otherwise: it is the
    catalog's configuration, checked when the catalog is saved).
    """
    default_currency = _currency(currency) if currency is not None else None
    if currency is not None and default_currency is None:
        raise ValueError(f"catalog currency {currency!r} is not an ISO 4217 currency code")
    if not isinstance(raw, Mapping):
        return [FieldError("product", "must be a JSON object")]

    errors: list[FieldError] = []
    warnings: list[FieldError] = []
    own_currency = raw.get("currency")
    if not _absent(own_currency):
        default_currency = _currency(own_currency)
        if default_currency is None:
            errors.append(FieldError("currency", f"'{own_currency}' is not an ISO 4217 currency code"))

    data: dict[str, Any] = {}
    given_as: dict[str, str] = {}  # Meta name -> the shop's name it came from
    for key, value in raw.items():
        if not isinstance(key, str):
            errors.append(FieldError(str(key), "field names must be strings"))
            continue
        if key == "currency" or _absent(value):
            continue
        name = SHOP_FIELDS.get(key, key)
        if name in given_as:
            errors.append(FieldError(key, f"give either {given_as[name]} or {key}, not both (Meta's {name})"))
            continue
        given_as[name] = key
        rule = PRODUCT_ITEM_FIELDS.get(name)
        if rule is None:
            try:
                orjson.dumps(value)
            except TypeError:
                errors.append(FieldError(key, "must be a JSON value"))
                continue
            warnings.append(FieldError(key, UNKNOWN_FIELD))
            data[key] = value
            continue
        value, problem = _normalize(rule, value, default_currency)
        if problem is not None:
            errors.append(FieldError(key, problem))
        else:
            data[name] = value

    for name in REQUIRED_FIELDS:
        if name not in given_as:
            errors.append(FieldError(name, REQUIRED))
    if not any(name in given_as for name in IMAGE_FIELDS):
        errors.append(FieldError(IMAGE_FIELDS[0], f"{REQUIRED} (or {IMAGE_FIELDS[1]})"))
    if errors:
        return errors
    retailer_id: str = data["id"]
    return ProductItem(retailer_id, data, fingerprint(data), tuple(warnings))
