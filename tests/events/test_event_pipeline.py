"""The pipeline: one incoming event to one Conversions API event, or a skip with its reason."""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import pytest

from metabridge.events import ConnectionSettings, EventPipeline

NOW_MS = 1_795_000_000_000  # 2026-11-18T...Z; every test passes "now" explicitly
NOW_S = NOW_MS // 1000
DAY = 86_400


def h(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def website_purchase(**changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event": "purchase",
        "event_id": "ord-1001",
        "timestamp": NOW_S - 3600,
        "url": "https://shop.example/checkout?fbclid=AbC",
        "consent_categories": ["1", "4"],
        "user": {
            "email": " John_Smith@Gmail.com ",
            "phone": "(650)555-1212",
            "country": "United States",
            "ip": "2001:db8::1",
            "user_agent": "Mozilla/5.0",
            "fbp": "fb.1.1596403881668.1116446470",
        },
        "properties": {
            "value": 101.5,
            "currency": "eur",
            "order_id": 1001,
            "items": [{"id": "sku-1", "quantity": 2, "price": 50.75}],
            "coupon": "WINTER",
        },
    }
    event.update(changes)
    return event


def run(raw: dict[str, Any], **settings: Any):
    return EventPipeline(ConnectionSettings(**settings)).process(raw, index=0, now_ms=NOW_MS)


def test_website_purchase_is_built_exactly() -> None:
    decision = run(website_purchase(), consent_category="4")
    assert decision.action == "send", decision.errors
    assert decision.server_event == {
        "event_name": "Purchase",
        "event_time": NOW_S - 3600,
        "event_id": "ord-1001",
        "action_source": "website",
        "event_source_url": "https://shop.example/checkout?fbclid=AbC",
        "user_data": {
            "em": h("john_smith@gmail.com"),
            "ph": h("16505551212"),
            "country": h("us"),
            "client_ip_address": "2001:db8::1",
            "client_user_agent": "Mozilla/5.0",
            "fbp": "fb.1.1596403881668.1116446470",
            "fbc": f"fb.1.{(NOW_S - 3600) * 1000}.AbC",
        },
        "custom_data": {
            "value": 101.5,
            "currency": "EUR",
            "order_id": "1001",
            "contents": [{"id": "sku-1", "quantity": 2, "item_price": 50.75}],
            "content_ids": ["sku-1"],
            "num_items": 2,
            "content_type": "product",
            "coupon": "WINTER",
        },
    }


@pytest.mark.parametrize(
    ("timestamp", "expected_s"),
    [
        ("2026-11-18T10:00:00Z", 1_794_996_000),
        ("2026-11-18T11:00:00+01:00", 1_794_996_000),
        ("2026-11-18T10:00:00", 1_794_996_000),  # naive ISO time is UTC
        (1_794_996_000, 1_794_996_000),  # Unix seconds
        (1_794_996_000_123, 1_794_996_000),  # Unix milliseconds
        ("1794996000", 1_794_996_000),  # numeric text, as CSV files carry it
        (1_794_996_000.9, 1_794_996_000),
    ],
)
def test_timestamp_forms(timestamp: Any, expected_s: int) -> None:
    decision = run(website_purchase(timestamp=timestamp))
    assert decision.server_event is not None, decision.errors
    assert decision.server_event["event_time"] == expected_s


def test_missing_timestamp_uses_receive_time() -> None:
    raw = website_purchase()
    del raw["timestamp"]
    pipeline = EventPipeline(ConnectionSettings())
    decision = pipeline.process(raw, index=0, now_ms=NOW_MS, received_ms=NOW_MS - 5000)
    assert decision.server_event["event_time"] == NOW_S - 5


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, "website"),  # has a url
        ({"url": None}, "system_generated"),
        ({"url": None, "action_source": "physical_store"}, "physical_store"),
        ({"action_source": "email", "integrations": {"facebook": {"action_source": "chat"}}}, "chat"),
    ],
)
def test_action_source_defaults(changes: dict[str, Any], expected: str) -> None:
    raw = website_purchase(**changes)
    decision = run(raw)
    assert decision.server_event is not None, decision.errors
    assert decision.server_event["action_source"] == expected


def test_event_id_is_generated_stably_when_absent() -> None:
    raw = website_purchase()
    del raw["event_id"]
    first = run(raw).event_id
    again = run(copy.deepcopy(raw)).event_id
    other = run(website_purchase(event_id=None, properties={"value": 2, "currency": "EUR"})).event_id
    assert first and first == again
    assert len(first) == 36 and first != other


def test_integrations_facebook_overrides_key_by_key() -> None:
    raw = website_purchase(
        integrations={
            "facebook": {
                "event_name": "OrderCreated",
                "event_id": "fb-override",
                "user_data": {"em": "Override@Example.com", "external_id": "ABC 123"},
                "custom_data": {"currency": "USD", "coupon": None, "margin": 3},
                "opt_out": True,
            }
        }
    )
    event = run(raw).server_event
    assert event["event_name"] == "OrderCreated"
    assert event["event_id"] == "fb-override"
    assert event["user_data"]["em"] == h("override@example.com")
    assert event["user_data"]["external_id"] == h("abc123")
    assert event["user_data"]["ph"] == h("16505551212")  # untouched keys stay
    assert event["custom_data"]["currency"] == "USD"
    assert event["custom_data"]["margin"] == 3
    assert "coupon" not in event["custom_data"]
    assert event["opt_out"] is True


def test_fbc_is_never_rebuilt_when_given_and_keeps_its_case() -> None:
    raw = website_purchase()
    raw["user"]["fbc"] = "fb.1.1554763741205.IwAR2F4-dbP0l7Mn1IawQQ"
    event = run(raw).server_event
    assert event["user_data"]["fbc"] == "fb.1.1554763741205.IwAR2F4-dbP0l7Mn1IawQQ"


def test_invalid_fbc_is_dropped_with_a_reason_naming_the_field() -> None:
    raw = website_purchase(url="https://shop.example/checkout")
    raw["user"]["fbc"] = "not-a-click-id"
    decision = run(raw)
    assert decision.action == "send"
    assert "fbc" not in decision.server_event["user_data"]
    assert [w.field for w in decision.warnings] == ["user.fbc"]


def test_segment_single_product_event() -> None:
    raw = {
        "event": "Product Viewed",
        "timestamp": NOW_S,
        "user": {"email": "a@example.com"},
        "properties": {"product_id": "sku-9", "price": "19.90", "currency": "EUR", "name": "Scarf"},
    }
    event = run(raw).server_event
    assert event["event_name"] == "ViewContent"
    assert event["custom_data"] == {
        "currency": "EUR",
        "content_name": "Scarf",
        "contents": [{"id": "sku-9", "quantity": 1, "item_price": 19.9}],
        "content_ids": ["sku-9"],
        "num_items": 1,
        "content_type": "product",
    }


def test_unknown_user_field_is_reported_not_sent() -> None:
    raw = website_purchase()
    raw["user"]["shoe_size"] = "42"
    decision = run(raw)
    assert decision.action == "send"
    assert "shoe_size" not in decision.server_event["user_data"]
    assert any(w.field == "user.shoe_size" for w in decision.warnings)


def test_no_consent_is_skipped_before_anything_else() -> None:
    decision = run(website_purchase(consent_categories=["1"]), consent_category="4")
    assert (decision.action, decision.reason, decision.server_event) == ("skip", "no_consent", None)
    decision = run(website_purchase(consent_categories=None), consent_category="4")
    assert decision.reason == "no_consent"


def test_insufficient_customer_data() -> None:
    raw = website_purchase(url="https://shop.example/checkout")  # no fbclid, so no fbc is built
    raw["user"] = {"city": "Paris", "country": "fr", "user_agent": "Mozilla/5.0"}
    decision = run(raw)
    assert (decision.action, decision.reason) == ("skip", "insufficient_customer_data")
    strict = run(website_purchase(), matching="strict")
    assert strict.action == "send"
    raw = website_purchase(url="https://shop.example/checkout")
    raw["user"] = {"fbp": "fb.1.1596403881668.1116446470", "user_agent": "Mozilla/5.0"}
    assert run(raw).action == "send"
    assert run(raw, matching="strict").reason == "insufficient_customer_data"


def _without(path: str):
    def change(event: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = event
        for part in parents:
            target = target[part]
        del target[last]

    return change


def _setting(path: str, value: Any):
    def change(event: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = event
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = value

    return change


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        (_setting("timestamp", NOW_S - 8 * DAY), "timestamp", "more than 7 days old"),
        (_setting("timestamp", NOW_S + 120), "timestamp", "in the future"),
        (_without("properties.value"), "properties.value", "required for Purchase"),
        (_without("properties.currency"), "properties.currency", "required for Purchase"),
        (_setting("properties.currency", "EURO"), "properties.currency", "ISO 4217"),
        (_setting("properties.currency", "XYZ"), "properties.currency", "ISO 4217"),
        (_setting("properties.value", "lots"), "properties.value", "must be a number"),
        (_without("user.user_agent"), "user.user_agent", "required for website events"),
        (_setting("action_source", "website") , None, None),
        (_setting("url", "ftp://shop.example/x"), "url", "http:// or https://"),
        (_setting("properties.items", [{"quantity": 1}]), "properties.items.0.id", "needs an id"),
        (_setting("properties.items", "sku-1"), "properties.items", "list of objects"),
        (_setting("timestamp", "yesterday"), "timestamp", "ISO 8601"),
        (_setting("action_source", "web"), "action_source", "must be one of"),
        (_setting("event", ""), "event", "at least 1 character"),
        (_setting("user", "john@example.com"), "user", "valid dictionary"),
    ],
)
def test_invalid_events_name_the_field_and_rule(change, field, rule) -> None:
    raw = website_purchase()
    change(raw)
    decision = run(raw)
    if field is None:  # control row: the change keeps the event valid
        assert decision.action == "send", decision.errors
        return
    assert (decision.action, decision.reason) == ("skip", "invalid")
    assert any(e.field == field and rule in e.message for e in decision.errors), decision.errors


def test_website_event_without_url_is_invalid() -> None:
    decision = run(website_purchase(url=None, action_source="website"))
    assert decision.reason == "invalid"
    assert [e.field for e in decision.errors] == ["url"]


@pytest.mark.parametrize(
    ("action_source", "age_days", "valid"),
    [("physical_store", 30, True), ("physical_store", 63, False), ("email", 6, True), ("email", 8, False)],
)
def test_time_window_by_action_source(action_source: str, age_days: int, valid: bool) -> None:
    raw = website_purchase(url=None, action_source=action_source, timestamp=NOW_S - age_days * DAY)
    assert (run(raw).action == "send") is valid


@pytest.mark.parametrize(
    ("channel", "ids"),
    [
        ("whatsapp", {"whatsapp_business_account_id": "1045", "ctwa_clid": "ARAkLk"}),
        ("messenger", {"page_id": "1234", "page_scoped_user_id": "5678"}),
        ("instagram", {"instagram_business_account_id": "1789", "ig_sid": "8899"}),
    ],
)
def test_business_messaging_needs_its_channel_ids(channel: str, ids: dict[str, str]) -> None:
    base = website_purchase(url=None, action_source="business_messaging", messaging_channel=channel)
    base["user"] = {"phone": "+44 20 7946 0958", **ids}
    ok = run(base)
    assert ok.action == "send", ok.errors
    assert ok.server_event["messaging_channel"] == channel
    for key, value in ids.items():
        assert ok.server_event["user_data"][key] == value  # never hashed
    for missing in ids:
        raw = copy.deepcopy(base)
        del raw["user"][missing]
        decision = run(raw)
        assert decision.reason == "invalid"
        assert [e.field for e in decision.errors] == [f"user.{missing}"]
    no_channel = copy.deepcopy(base)
    del no_channel["messaging_channel"]
    assert [e.field for e in run(no_channel).errors] == ["messaging_channel"]
