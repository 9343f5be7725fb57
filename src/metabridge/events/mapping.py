"""Incoming ``user`` / ``properties`` to Conversions API ``user_data`` (raw) and ``custom_data``.

Driven by the tables in :mod:`metabridge.events.fields`. Customer data leaves this module *raw*, keyed by
CAPI keys; :mod:`metabridge.identity` normalizes and hashes it. The property and item tables are resolved
once per set of incoming keys (a *plan*: which rules apply, from which of their sources), so mapping an
event only walks the rules it needs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from metabridge.events.errors import FieldError
from metabridge.events.fields import (
    CONSUMED_PROPERTIES,
    ITEM_FIELD_RULES,
    ITEM_LIST_KEYS,
    PROPERTY_RULES,
    SINGLE_PRODUCT_ID_KEYS,
    SINGLE_PRODUCT_KEYS,
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


def user_target(key: str) -> str | None:
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
            target = user_target(key)
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
    """The ``fbclid`` query parameter of a landing URL, exactly as written (it is case-sensitive).

    What ``parse_qs(urlsplit(url).query)["fbclid"][0]`` gives (the first non-empty value, decoded); None
    when there is none or the URL cannot be split. A plain URL (printable ASCII, no brackets, nothing
    percent- or plus-encoded in its query) is read directly: ``urlsplit`` and ``parse_qs`` would only cut
    it at the same ``#``, ``?``, ``&`` and ``=`` (tests compare both on random URLs).
    """
    if not url or "fbclid=" not in url:
        return None
    if url.isascii() and url.isprintable() and "[" not in url and "]" not in url:
        query = url.split("#", 1)[0].partition("?")[2]
        if "%" not in query and "+" not in query:
            for pair in query.split("&"):
                name, _, value = pair.partition("=")
                if value and name == "fbclid":
                    return value
            return None
    try:
        values = parse_qs(urlsplit(url).query, keep_blank_values=False).get("fbclid")
    except ValueError:  # an unreadable URL (e.g. a broken IPv6 host) has no usable fbclid
        return None
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


# The converters never see the values _apply_steps passes through unchanged (_UNCHANGED).
def _to_text(value: Any) -> Any:
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    return _NOT_TEXT


def _to_currency(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else _NOT_CURRENCY


def _to_number(value: Any) -> Any:
    number = finite_number(value)
    return _NOT_NUMBER if number is None else number


def _to_integer(value: Any) -> Any:
    number = finite_number(value)
    if number is None or number != int(number):
        return _NOT_WHOLE
    return int(number)


def _as_is(value: Any) -> Any:
    return value


_CONVERTERS: Mapping[Conversion, Callable[[Any], Any]] = {
    "raw": _as_is, "text": _to_text, "currency": _to_currency, "number": _to_number, "integer": _to_integer,
}

_INFINITIES = (float("inf"), float("-inf"))


def finite_number(value: Any) -> int | float | None:
    """A finite JSON number, or the numeric text CSV files and some docs (``"142.52"``) send."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value if value == value and value not in _INFINITIES else None
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        if number != number or number in _INFINITIES:
            return None
        return int(number) if number.is_integer() and "." not in value else number
    return None


#: One rule as applied to a mapping: (target key, the most preferred of the rule's sources the mapping has,
#: its other ones, converter, the type the converter returns unchanged, the type it returns unchanged when
#: finite). The two types let the usual values skip the converter call.
_Step = tuple[str, str, tuple[str, ...], Callable[[Any], Any], "type | None", "type | None"]

#: Per conversion: the type whose values it returns as they are, and the one it returns as is when finite.
_UNCHANGED: Mapping[Conversion, tuple[type | None, type | None]] = {
    "raw": (None, None), "text": (str, None), "currency": (None, None), "number": (int, float),
    "integer": (int, None),
}


def _steps(keys: tuple[Any, ...], rules: tuple[PropertyRule, ...]) -> tuple[_Step, ...]:
    """The rules that apply to a mapping with ``keys``, in rule order (so targets come out in rule order)."""
    present = set(keys)
    steps = []
    for rule in rules:
        sources = tuple(name for name in rule.sources if name in present)
        if sources:
            convert = rule.convert
            steps.append((rule.target, sources[0], sources[1:], _CONVERTERS[convert], *_UNCHANGED[convert]))
    return tuple(steps)


class PlanCache(dict):  # type: ignore[type-arg]
    """key tuple -> plan, built on first use (``cache[keys]``). Key sets come from callers, so the cache is
    bounded (emptied when full; real sources send a handful of shapes)."""

    __slots__ = ("build",)
    LIMIT = 4096

    def __init__(self, build: Callable[[tuple[Any, ...]], Any]) -> None:
        super().__init__()
        self.build = build

    def __missing__(self, keys: tuple[Any, ...]) -> Any:
        if len(self) >= self.LIMIT:
            self.clear()
        plan = self[keys] = self.build(keys)
        return plan


#: Item key tuple -> the item rules that apply to it.
_ITEM_STEPS = PlanCache(lambda keys: _steps(keys, ITEM_FIELD_RULES))


def _apply_steps(
    source: Mapping[str, Any], steps: tuple[_Step, ...], where: tuple[Any, ...], errors: list[FieldError]
) -> dict[str, Any]:
    """Each step's target from the most preferred of its sources that has a value, converted.

    ``where`` is the path of ``source`` (``("properties",)``, ``("properties", "items", 0)``), joined only
    when a value is rejected.
    """
    out: dict[str, Any] = {}
    for target, name, more, convert, unchanged, finite in steps:
        value = source[name]
        if value is None or value == "":
            for name in more:  # noqa: B020 - the source that gave the value names it in errors
                value = source[name]
                if value is not None and value != "":
                    break
            else:
                continue
        kind = value.__class__
        if kind is unchanged or (kind is finite and value - value == 0.0):  # inf - inf and NaN give NaN
            out[target] = value
            continue
        converted = convert(value)
        if converted.__class__ is _Invalid:
            errors.append(FieldError(".".join(map(str, (*where, name))), converted.message))
        elif converted is not None:
            out[target] = converted
    return out


@dataclass(frozen=True, slots=True)
class PropertiesPlan:
    """How ``properties`` with one key tuple are mapped, derived from the tables once per key tuple.

    ``clean``: every key is text without surrounding whitespace, i.e. as the event model leaves it (the
    model strips keys, so a pipeline that skips the model must not take other keys as they are).
    """

    clean: bool
    steps: tuple[_Step, ...]
    item_lists: tuple[str, ...]  # ITEM_LIST_KEYS present, in preference order
    single_ids: tuple[str, ...]  # SINGLE_PRODUCT_ID_KEYS present
    single_keys: tuple[str, ...]  # the inline product's keys present, in SINGLE_PRODUCT_KEYS order
    passthrough: tuple[str, ...]  # keys no rule reads, in event order


def _properties_plan(keys: tuple[Any, ...]) -> PropertiesPlan:
    present = set(keys)
    return PropertiesPlan(
        clean=all(type(key) is str and key.strip() == key for key in keys),
        steps=_steps(keys, PROPERTY_RULES),
        item_lists=tuple(key for key in ITEM_LIST_KEYS if key in present),
        single_ids=tuple(key for key in SINGLE_PRODUCT_ID_KEYS if key in present),
        single_keys=tuple(key for key in SINGLE_PRODUCT_KEYS if key in present),
        passthrough=tuple(key for key in keys if key not in CONSUMED_PROPERTIES),
    )


_PROPERTIES_PLANS = PlanCache(_properties_plan)


def properties_plan(properties: Mapping[str, Any]) -> PropertiesPlan:
    """The (cached) plan for mapping ``properties``."""
    return _PROPERTIES_PLANS[tuple(properties)]


ITEM_NEEDS_ID = "every item needs an id (contents[].id)"


def _item(item: Any, where: tuple[Any, ...], errors: list[FieldError]) -> dict[str, Any] | None:
    if item.__class__ is not dict and not isinstance(item, Mapping):
        errors.append(FieldError(".".join(map(str, where)), "must be an object with at least an id"))
        return None
    content = _apply_steps(item, _ITEM_STEPS[tuple(item)], where, errors)
    if "quantity" not in content:
        content["quantity"] = 1
    if "id" not in content:
        errors.append(FieldError(".".join(map(str, (*where, "id"))), ITEM_NEEDS_ID))
    return content


def map_properties(
    properties: Mapping[str, Any], overrides: Mapping[str, Any], plan: PropertiesPlan | None = None
) -> tuple[dict[str, Any], list[FieldError]]:
    """``custom_data`` from ``properties``; unmapped properties pass through as custom properties.

    ``plan``: :func:`properties_plan` of ``properties`` when the caller already has it.
    """
    errors: list[FieldError] = []
    if not properties and not overrides:
        return {}, errors  # most page views: nothing to map
    if plan is None:
        plan = properties_plan(properties)
    data = _apply_steps(properties, plan.steps, ("properties",), errors) if plan.steps else {}

    items_key = None
    for key in plan.item_lists:
        if properties[key] is not None:
            items_key = key
            break
    items: list[dict[str, Any]] = []
    if items_key is not None:
        listed = properties[items_key]
        if isinstance(listed, list):
            for index, item in enumerate(listed):
                content = _item(item, ("properties", items_key, index), errors)
                if content is not None:
                    items.append(content)
        else:
            errors.append(FieldError(f"properties.{items_key}", "must be a list of objects"))
    elif plan.single_ids and _has_single_product(properties, plan.single_ids):
        content = _item({key: properties[key] for key in plan.single_keys}, ("properties",), errors)
        if content is not None:
            items.append(content)
    if items and "contents" not in data:
        data["contents"] = items
        if "content_ids" not in data:
            ids = []
            for item in items:
                if "id" in item:
                    ids.append(item["id"])
            data["content_ids"] = ids
        if "num_items" not in data:
            count = 0
            for item in items:
                count += item["quantity"]
            data["num_items"] = count
        if "content_type" not in data:
            data["content_type"] = "product"

    for key in plan.passthrough:
        value = properties[key]
        if value is not None and key not in data:
            data[key] = value
    for key, value in overrides.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data, errors


def _has_single_product(properties: Mapping[str, Any], keys: tuple[str, ...]) -> bool:
    """True when the event carries one product inline (a non-empty product_id, sku or item_id)."""
    for key in keys:
        value = properties[key]
        if value is not None and value != "":
            return True
    return False
