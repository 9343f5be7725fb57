"""Values that used to escape as exceptions or reach Meta as nulls: each is now a clear error naming the field."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from metabridge.events import ConnectionSettings, EventPipeline, parse_event
from metabridge.events.model import parse_timestamp_ms

NOW_MS = 1_795_000_000_000
NOW_S = NOW_MS // 1000


def purchase(**changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event": "purchase", "event_id": "o-1", "timestamp": NOW_S - 60, "url": "https://shop.example/thanks",
        "user": {"email": "ana@example.com", "user_agent": "Mozilla/5.0"},
        "properties": {"value": 10, "currency": "EUR", "items": [{"id": "a", "quantity": 1, "price": 10}]},
    }
    event.update(changes)
    return event


def decide(raw: dict[str, Any]) -> Any:
    return EventPipeline(ConnectionSettings()).process(raw, index=0, now_ms=NOW_MS)


@pytest.mark.parametrize(
    ("changes", "field", "rule"),
    [
        ({"timestamp": 1e400}, "timestamp", "finite"),  # JSON 1e400 reads as infinity
        ({"properties": {"value": 1e400, "currency": "EUR"}}, "properties.value", "must be a number"),
        ({"properties": {"value": float("nan"), "currency": "EUR"}}, "properties.value", "must be a number"),
        ({"properties": {"value": 1, "currency": "EUR", "items": [{"id": "a", "quantity": 1e400}]}},
         "properties.items.0.quantity", "whole number"),
        ({"properties": {"value": 1, "currency": "EUR", "product_id": "p", "quantity": float("-inf")}},
         "properties.quantity", "whole number"),
        ({"integrations": {"facebook": {"custom_data": {"currency": ["EUR"]}}}}, "properties.currency", "ISO 4217"),
        # overrides skip the property converters: the final check still refuses what would reach Meta as null
        ({"integrations": {"facebook": {"custom_data": {"value": float("inf")}}}}, "properties.value", "number"),
        ({"integrations": {"facebook": {"custom_data": {"value": "abc"}}}}, "properties.value", "number"),
        ({"integrations": {"facebook": {"custom_data": {"num_items": float("nan")}}}}, "properties.num_items",
         "whole number"),
        ({"integrations": {"facebook": {"custom_data": {"contents": [{"id": "a", "quantity": 1e400}]}}}},
         "properties.items.0.quantity", "whole number"),
        ({"integrations": {"facebook": {"custom_data": {"contents": 5}}}}, "properties.contents", "list"),
        ({"integrations": {"facebook": {"custom_data": {"content_type": {"x": 1}}}}}, "properties.content_type",
         "product"),
    ],
)
def test_bad_values_are_errors_naming_the_field(changes: dict[str, Any], field: str, rule: str) -> None:
    decision = decide(purchase(**changes))
    assert (decision.action, decision.reason) == ("skip", "invalid")
    assert any(e.field == field and rule in e.message for e in decision.errors), decision.errors


def test_parse_event_never_raises_on_an_infinite_timestamp() -> None:
    errors = parse_event({"event": "x", "timestamp": float("inf")})
    assert isinstance(errors, list) and errors[0].field == "timestamp"


@pytest.mark.parametrize(
    ("value", "expected_ms"),
    [
        ("2026-11-19T16:48:13.908Z", 1_795_106_893_908),  # exact milliseconds (no float rounding)
        ("2026-11-19T17:48:13.908+01:00", 1_795_106_893_908),
        ("2026-11-19T16:48:13.908", 1_795_106_893_908),  # naive: UTC
        ("2026-11-19T16:48:13.908z", 1_795_106_893_908),
        (" 2026-11-19T16:48:13Z ", 1_795_106_893_000),
        (datetime(2026, 11, 19, 16, 48, 13, 908_000, tzinfo=timezone.utc), 1_795_106_893_908),
        (datetime(2026, 11, 19, 17, 48, 13, 908_000, tzinfo=timezone(timedelta(hours=1))), 1_795_106_893_908),
        (1_795_106_893, 1_795_106_893_000),
        (1_795_106_893_908, 1_795_106_893_908),
    ],
)
def test_timestamps_to_exact_milliseconds(value: Any, expected_ms: int) -> None:
    assert parse_timestamp_ms(value) == expected_ms
