"""The Conversions API's per-event rules, as tables, and the one function that applies them.

Meta rejects a *whole request* when one event in it breaks a rule (D-USE), so every rule Meta documents is
checked here before an event is batched. Each rule reports the incoming field the caller can fix and
names Meta's field in its message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pycountry

from metabridge.events.errors import FieldError
from metabridge.events.mapping import ITEM_NEEDS_ID, finite_number

DAY_SECONDS = 86_400

#: How old ``event_time`` may be, by action source (D-SE: 7 days; D-USE: 62 for physical_store).
MAX_AGE_DAYS: Mapping[str, int] = {"physical_store": 62}
DEFAULT_MAX_AGE_DAYS = 7

#: Meta flags future times; RudderStack rejects more than a minute ahead (spec §2).
MAX_FUTURE_SECONDS = 60

#: (Meta field, incoming field) pairs each action source requires (D-SE, D-BP).
REQUIRED_BY_ACTION_SOURCE: Mapping[str, tuple[tuple[str, str], ...]] = {
    "website": (
        ("event_source_url", "url"),
        ("user_data.client_user_agent", "user.user_agent"),
    ),
    "app": (("app_data", "integrations.facebook.app_data"),),
    "business_messaging": (("messaging_channel", "messaging_channel"),),
}

#: user_data ids each business-messaging channel requires (D-BM; 100/2804116 for WhatsApp).
REQUIRED_BY_MESSAGING_CHANNEL: Mapping[str, tuple[str, ...]] = {
    "messenger": ("page_id", "page_scoped_user_id"),
    "whatsapp": ("whatsapp_business_account_id", "ctwa_clid"),
    "instagram": ("instagram_business_account_id", "ig_sid"),
}

#: (custom_data key, incoming field) pairs each event requires (D-STD; 100/2804009).
REQUIRED_CUSTOM_DATA: Mapping[str, tuple[tuple[str, str], ...]] = {
    "Purchase": (("value", "properties.value"), ("currency", "properties.currency")),
}

CONTENT_TYPES: frozenset[str] = frozenset({"product", "product_group"})
DELIVERY_CATEGORIES: frozenset[str] = frozenset({"in_store", "curbside", "home_delivery"})
CURRENCY_CODES: frozenset[str] = frozenset(currency.alpha_3 for currency in pycountry.currencies)

_URL_SCHEMES = ("http://", "https://")


#: action source -> (max age in seconds, max age in days, required ``(field, incoming field, user_data key or
#: None)``), resolved once per action source so that the per-event check is a single look-up.
_SOURCE_RULES: dict[str, tuple[int, int, tuple[tuple[str, str, str | None], ...]]] = {}


def _user_data_key(meta_field: str) -> str | None:
    """``user_data.client_user_agent`` -> ``client_user_agent``; None for a field of the event itself."""
    prefix = "user_data."
    return meta_field[len(prefix):] if meta_field.startswith(prefix) else None


def _source_rules(action_source: str) -> tuple[int, int, tuple[tuple[str, str, str | None], ...]]:
    rules = _SOURCE_RULES.get(action_source)
    if rules is None:
        max_days = MAX_AGE_DAYS.get(action_source, DEFAULT_MAX_AGE_DAYS)
        required = tuple(
            (meta_field, incoming, _user_data_key(meta_field))
            for meta_field, incoming in REQUIRED_BY_ACTION_SOURCE.get(action_source, ())
        )
        rules = _SOURCE_RULES[action_source] = (max_days * DAY_SECONDS, max_days, required)
    return rules


def check_event(event: Mapping[str, Any], now_s: int) -> list[FieldError]:
    """Every rule ``event`` (a built Conversions API server event) breaks; empty when Meta would take it."""
    errors: list[FieldError] = []
    action_source = event["action_source"]
    user_data: Mapping[str, Any] = event["user_data"]
    max_age, max_days, required = _SOURCE_RULES.get(action_source) or _source_rules(action_source)

    age = now_s - event["event_time"]
    if age > max_age:
        errors.append(FieldError(
            "timestamp", f"event_time is more than {max_days} days old; Meta rejects it for {action_source}"
        ))
    elif age < -MAX_FUTURE_SECONDS:
        errors.append(FieldError("timestamp", "event_time is more than a minute in the future"))

    for meta_field, incoming, user_key in required:
        if not (event.get(meta_field) if user_key is None else user_data.get(user_key)):
            errors.append(FieldError(incoming, f"is required for {action_source} events ({meta_field})"))

    url = event.get("event_source_url")
    if url and not url.startswith(_URL_SCHEMES):
        errors.append(FieldError("url", "must start with http:// or https:// (event_source_url)"))

    if action_source == "business_messaging":
        channel = event.get("messaging_channel")
        if channel:
            for key in REQUIRED_BY_MESSAGING_CHANNEL[channel]:
                if not user_data.get(key):
                    errors.append(FieldError(f"user.{key}", f"is required for {channel} business messaging events"))

    custom_data: Mapping[str, Any] | None = event.get("custom_data")
    required_data = REQUIRED_CUSTOM_DATA.get(event["event_name"])
    if required_data:
        for key, incoming in required_data:
            if custom_data is None or custom_data.get(key) is None:
                errors.append(FieldError(
                    incoming, f"is required for {event['event_name']} (custom_data.{key})"
                ))
    if custom_data:
        _check_custom_data(custom_data, errors)
    return errors


def _is_whole(value: Any) -> bool:
    number = finite_number(value)
    return number is not None and number == int(number)


def _check_custom_data(custom_data: Mapping[str, Any], errors: list[FieldError]) -> None:
    """The value rules of ``custom_data`` (only called when the event has one).

    Mapped properties were converted already; ``integrations.facebook.custom_data`` overrides were not, so
    numbers are checked here too: a non-finite float would reach Meta as ``null``.
    """
    value = custom_data.get("value")
    if value is not None and finite_number(value) is None:
        errors.append(FieldError("properties.value", "must be a number"))
    num_items = custom_data.get("num_items")
    if num_items is not None and not _is_whole(num_items):
        errors.append(FieldError("properties.num_items", "must be a whole number"))
    currency = custom_data.get("currency")
    if currency is not None and (not isinstance(currency, str) or currency not in CURRENCY_CODES):
        errors.append(FieldError("properties.currency", f"'{currency}' is not an ISO 4217 currency code"))
    content_type = custom_data.get("content_type")
    if content_type is not None and (not isinstance(content_type, str) or content_type not in CONTENT_TYPES):
        errors.append(FieldError("properties.content_type", "must be product or product_group"))
    delivery = custom_data.get("delivery_category")
    if delivery is not None and (not isinstance(delivery, str) or delivery not in DELIVERY_CATEGORIES):
        errors.append(FieldError(
            "properties.delivery_category", "must be one of in_store, curbside, home_delivery"
        ))
    contents = custom_data.get("contents")
    if contents:
        if not isinstance(contents, (list, tuple)):
            errors.append(FieldError("properties.contents", "must be a list of objects with an id"))
            return
        for index, content in enumerate(contents):
            if (content.__class__ is not dict and not isinstance(content, Mapping)) or not content.get("id"):
                errors.append(FieldError(f"properties.items.{index}.id", ITEM_NEEDS_ID))
            elif content.get("quantity") is not None and not _is_whole(content["quantity"]):
                errors.append(FieldError(f"properties.items.{index}.quantity", "must be a whole number"))
