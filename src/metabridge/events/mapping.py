"""Incoming ``user`` / ``properties`` to Conversions API ``user_data`` (raw) and ``custom_data``.

Driven by the tables in :mod:`metabridge.events.fields`. Customer data leaves this module *raw*, keyed by
CAPI keys; :mod:`metabridge.identity` normalizes and hashes it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from metabridge.events.errors import FieldError
from metabridge.events.fields import (
    CONSUMED_PROPERTIES,
    ITEM_FIELD_RULES,
    ITEM_LIST_KEYS,
    PROPERTY_RULES,
    SINGLE_PRODUCT_ID_KEYS,
    USER_FIELD_MAP,
    Conversion,
    PropertyRule,
)


#: Incoming ``user`` key -> ``user_data`` key (None: unknown), as first resolved. Seeded with the table and
#: filled lazily with the other spellings seen (``Email``, ``EMAIL``), so each event costs one look-up per key
#: instead of two look-ups and a ``lower()``. Bounded: keys come from callers.
_USER_TARGETS: dict[str, str | None] = dict(USER_FIELD_MAP)
_USER_TARGETS_MAX = len(_USER_TARGETS) + 4096
_UNSEEN = object()


def _user_target(key: str) -> str | None:
    """The ``user_data`` key of an incoming ``user`` key: exact spelling first, then lowercased."""
    target = _USER_TARGETS.get(key, _UNSEEN)
    if target is _UNSEEN:
        target = USER_FIELD_MAP.get(key.lower())
        if len(_USER_TARGETS) < _USER_TARGETS_MAX:
            _USER_TARGETS[key] = target
    return target  # type: ignore[return-value]


def map_user(user: Mapping[str, Any], overrides: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str], list[FieldError]]:
    """Raw ``user_data`` by CAPI key, the incoming field each key came from, and unknown-key warnings.

    Two incoming keys for one CAPI key (``email`` and ``em``) are merged into a list; an
    ``integrations.facebook.user_data`` key replaces the mapped value outright.
    """
    raw: dict[str, Any] = {}
    origin: dict[str, str] = {}
    warnings: list[FieldError] = []
    targets = _USER_TARGETS
    for key, value in user.items():
        if value is None or value == "":
            continue
        target = targets.get(key, _UNSEEN)
        if target is _UNSEEN:
            target = _user_target(key)
        if target is None:
            warnings.append(FieldError(f"user.{key}", "is not a known customer field; ignored"))
            continue
        if target in raw:
            existing = raw[target]
            merged = existing if isinstance(existing, list) else [existing]
            raw[target] = merged + (value if isinstance(value, list) else [value])
        else:
            raw[target] = value
            origin[target] = f"user.{key}"
    for key, value in overrides.items():
        target = USER_FIELD_MAP.get(key, key)
        raw[target] = value
        origin[target] = f"integrations.facebook.user_data.{key}"
    return raw, origin, warnings


def fbclid_from_url(url: str | None) -> str | None:
    """The ``fbclid`` query parameter of a landing URL, exactly as written (it is case-sensitive)."""
    if not url or "fbclid=" not in url:
        return None
    values = parse_qs(urlsplit(url).query, keep_blank_values=False).get("fbclid")
    return values[0] if values else None


class _Invalid:
    """A value a conversion rejects, with the rule's message (one shared instance per message).

    Converters return it instead of appending a :class:`FieldError` so that the error's field path is only
    built for the rare bad value, not for every converted one.
    """

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


_NOT_TEXT = _Invalid("must be text")
_NOT_CURRENCY = _Invalid("must be a 3-letter ISO 4217 currency code")
_NOT_NUMBER = _Invalid("must be a number")
_NOT_WHOLE = _Invalid("must be a whole number")


def _to_text(value: Any) -> Any:
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    return _NOT_TEXT


def _to_currency(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else _NOT_CURRENCY


def _to_number(value: Any) -> Any:
    number = _number(value)
    return _NOT_NUMBER if number is None else number


def _to_integer(value: Any) -> Any:
    number = _number(value)
    if number is None or number != int(number):
        return _NOT_WHOLE
    return int(number)


def _as_is(value: Any) -> Any:
    return value


_CONVERTERS: Mapping[Conversion, Callable[[Any], Any]] = {
    "raw": _as_is, "text": _to_text, "currency": _to_currency, "number": _to_number, "integer": _to_integer,
}


def _number(value: Any) -> int | float | None:
    """A JSON number, or the numeric text CSV files and some docs (``"142.52"``) send."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value if value == value else None
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        if number != number or number in (float("inf"), float("-inf")):
            return None
        return int(number) if number.is_integer() and "." not in value else number
    return None


#: Per incoming key: (rule index, preference, custom_data key, converter).
_Source = tuple[int, int, str, Callable[[Any], Any]]


def _source_index(rules: tuple[PropertyRule, ...]) -> dict[str, _Source]:
    """Incoming key -> its rule, resolved once: lets mapping walk the few keys an event has."""
    return {
        name: (i, rank, rule.target, _CONVERTERS[rule.convert])
        for i, rule in enumerate(rules)
        for rank, name in enumerate(rule.sources)
    }


_PROPERTY_INDEX = _source_index(PROPERTY_RULES)
_ITEM_INDEX = _source_index(ITEM_FIELD_RULES)


def _apply_rules(
    source: Mapping[str, Any], index: dict[str, _Source], prefix: str, errors: list[FieldError]
) -> dict[str, Any]:
    """Each rule's target from the most preferred of its sources that is present, converted.

    Targets come out in rule order whatever the order of ``source``.
    """
    chosen: dict[int, tuple[int, str, Any, _Source]] = {}
    for name, value in source.items():
        hit = index.get(name)
        if hit is None or value is None or value == "":
            continue
        rule_index = hit[0]
        best = chosen.get(rule_index)
        if best is None or hit[1] < best[0]:
            chosen[rule_index] = (hit[1], name, value, hit)
    out: dict[str, Any] = {}
    for rule_index in sorted(chosen) if len(chosen) > 1 else chosen:
        _, name, value, (_, _, target, convert) = chosen[rule_index]
        converted = convert(value)
        if type(converted) is _Invalid:
            errors.append(FieldError(f"{prefix}.{name}", converted.message))
        elif converted is not None:
            out[target] = converted
    return out


def _item(item: Any, field: str, errors: list[FieldError]) -> dict[str, Any] | None:
    if not isinstance(item, Mapping):
        errors.append(FieldError(field, "must be an object with at least an id"))
        return None
    content = _apply_rules(item, _ITEM_INDEX, field, errors)
    content.setdefault("quantity", 1)
    if "id" not in content:
        errors.append(FieldError(f"{field}.id", "every item needs an id (contents[].id)"))
    return content


def _has_single_product(properties: Mapping[str, Any]) -> bool:
    """True when the event carries one product inline (a non-empty product_id, sku or item_id)."""
    for key in SINGLE_PRODUCT_ID_KEYS:
        value = properties.get(key)
        if value is not None and value != "":
            return True
    return False


def map_properties(
    properties: Mapping[str, Any], overrides: Mapping[str, Any]
) -> tuple[dict[str, Any], list[FieldError]]:
    """``custom_data`` from ``properties``; unmapped properties pass through as custom properties."""
    errors: list[FieldError] = []
    if not properties and not overrides:
        return {}, errors  # most page views: nothing to map
    data = _apply_rules(properties, _PROPERTY_INDEX, "properties", errors)

    items_key = None
    for key in ITEM_LIST_KEYS:
        if properties.get(key) is not None:
            items_key = key
            break
    items: list[dict[str, Any]] = []
    if items_key is not None:
        listed = properties[items_key]
        if isinstance(listed, list):
            for index, item in enumerate(listed):
                content = _item(item, f"properties.{items_key}.{index}", errors)
                if content is not None:
                    items.append(content)
        else:
            errors.append(FieldError(f"properties.{items_key}", "must be a list of objects"))
    elif _has_single_product(properties):
        content = _item(
            {k: properties[k] for k in ("product_id", "sku", "item_id", "price", "quantity") if k in properties},
            "properties",
            errors,
        )
        if content is not None:
            items.append(content)
    if items and "contents" not in data:
        data["contents"] = items
        data.setdefault("content_ids", [item["id"] for item in items if "id" in item])
        data.setdefault("num_items", sum(item["quantity"] for item in items))
        data.setdefault("content_type", "product")

    for key, value in properties.items():
        if key not in CONSUMED_PROPERTIES and key not in data and value is not None:
            data[key] = value
    for key, value in overrides.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data, errors
