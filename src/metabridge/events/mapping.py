"""Incoming ``user`` / ``properties`` to Conversions API ``user_data`` (raw) and ``custom_data``.

Driven by the tables in :mod:`metabridge.events.fields`. Customer data leaves this module *raw*, keyed by
CAPI keys; :mod:`metabridge.identity` normalizes and hashes it.
"""

from __future__ import annotations

from collections.abc import Mapping
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


def map_user(user: Mapping[str, Any], overrides: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str], list[FieldError]]:
    """Raw ``user_data`` by CAPI key, the incoming field each key came from, and unknown-key warnings.

    Two incoming keys for one CAPI key (``email`` and ``em``) are merged into a list; an
    ``integrations.facebook.user_data`` key replaces the mapped value outright.
    """
    raw: dict[str, Any] = {}
    origin: dict[str, str] = {}
    warnings: list[FieldError] = []
    for key, value in user.items():
        if value is None or value == "":
            continue
        target = USER_FIELD_MAP.get(key) or USER_FIELD_MAP.get(key.lower())
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


def _convert(value: Any, conversion: Conversion, field: str, errors: list[FieldError]) -> Any:
    if conversion == "raw":
        return value
    if conversion == "text":
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        errors.append(FieldError(field, "must be text"))
        return None
    if conversion == "currency":
        if isinstance(value, str):
            return value.strip().upper()
        errors.append(FieldError(field, "must be a 3-letter ISO 4217 currency code"))
        return None
    number = _number(value)
    if number is None:
        errors.append(FieldError(field, "must be a number" if conversion == "number" else "must be a whole number"))
        return None
    if conversion == "integer":
        if number != int(number):
            errors.append(FieldError(field, "must be a whole number"))
            return None
        return int(number)
    return number


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


def _source_index(rules: tuple[PropertyRule, ...]) -> dict[str, tuple[int, int]]:
    """Incoming key -> (rule index, preference): lets mapping walk the few keys an event has."""
    return {name: (i, rank) for i, rule in enumerate(rules) for rank, name in enumerate(rule.sources)}


_PROPERTY_INDEX = _source_index(PROPERTY_RULES)
_ITEM_INDEX = _source_index(ITEM_FIELD_RULES)


def _apply_rules(
    source: Mapping[str, Any],
    rules: tuple[PropertyRule, ...],
    index: dict[str, tuple[int, int]],
    prefix: str,
    errors: list[FieldError],
) -> dict[str, Any]:
    """Each rule's target from the most preferred of its sources that is present, converted."""
    chosen: dict[int, tuple[int, str, Any]] = {}
    for name, value in source.items():
        hit = index.get(name)
        if hit is None or value is None or value == "":
            continue
        rule_index, rank = hit
        best = chosen.get(rule_index)
        if best is None or rank < best[0]:
            chosen[rule_index] = (rank, name, value)
    out: dict[str, Any] = {}
    for rule_index in sorted(chosen):
        rule = rules[rule_index]
        _, name, value = chosen[rule_index]
        converted = _convert(value, rule.convert, f"{prefix}.{name}", errors)
        if converted is not None:
            out[rule.target] = converted
    return out


def _item(item: Any, field: str, errors: list[FieldError]) -> dict[str, Any] | None:
    if not isinstance(item, Mapping):
        errors.append(FieldError(field, "must be an object with at least an id"))
        return None
    content = _apply_rules(item, ITEM_FIELD_RULES, _ITEM_INDEX, field, errors)
    content.setdefault("quantity", 1)
    if "id" not in content:
        errors.append(FieldError(f"{field}.id", "every item needs an id (contents[].id)"))
    return content


def map_properties(
    properties: Mapping[str, Any], overrides: Mapping[str, Any]
) -> tuple[dict[str, Any], list[FieldError]]:
    """``custom_data`` from ``properties``; unmapped properties pass through as custom properties."""
    errors: list[FieldError] = []
    data = _apply_rules(properties, PROPERTY_RULES, _PROPERTY_INDEX, "properties", errors)

    items_key = next((key for key in ITEM_LIST_KEYS if properties.get(key) is not None), None)
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
    elif any(properties.get(key) not in (None, "") for key in SINGLE_PRODUCT_ID_KEYS):
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
