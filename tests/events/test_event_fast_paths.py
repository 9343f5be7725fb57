"""The pipeline's fast paths give exactly what the general path gives.

Three shortcuts exist for speed (see ``EventPipeline``): a *plain* event is read without the pydantic model
(:func:`read_plain_event`), a person's customer data is mapped and normalized in one pass
(``CustomerCache``), and repeated people come from a cache. Each is compared here with the general path on a
corpus of messy events: exact copies, and variants with whitespace, numbers, booleans, lists, nulls,
unknown keys, overrides and bad values in every field.
"""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from metabridge.events import ConnectionSettings, EventPipeline, parse_event
from metabridge.events.customer import CustomerCache, customer_from_user
from metabridge.events.model import IncomingEvent, read_plain_event

NOW_MS = 1_795_000_000_000
NOW_S = NOW_MS // 1000

BASE_EVENTS: list[dict[str, Any]] = [
    {
        "event": "purchase", "event_id": "ord-1", "timestamp": "2026-11-18T10:00:00Z",
        "url": "https://shop.example/thanks?fbclid=AbC", "action_source": "website",
        "user": {"email": " Ana@Example.com", "phone": "(650) 555-1212", "first_name": "Ana", "last_name": "Ruiz",
                 "city": "San Francisco", "state": "CA", "zip": "94103-1234", "country": "US", "gender": "F",
                 "birthdate": "1990-02-16", "external_id": "C-1", "ip": "203.0.113.9",
                 "user_agent": "Mozilla/5.0", "fbp": "fb.1.1596403881668.1116446470"},
        "properties": {"value": 25.5, "currency": "usd", "order_id": "1",
                       "items": [{"id": "sku-1", "quantity": 2, "price": 12.75}]},
    },
    {
        "event": "page_view", "event_id": "pv-1", "timestamp": NOW_S - 60, "url": "https://shop.example/",
        "user": {"ip": "2001:db8::1", "user_agent": "Mozilla/5.0", "fbp": "fb.1.1596403881668.99"},
    },
    {
        "event": "Product Viewed", "timestamp": "1794990000", "url": "https://shop.example/p/1",
        "user": {"email": "bo@example.co.uk", "phone": "07911 123456", "country": "United Kingdom",
                 "user_agent": "Mozilla/5.0", "postal_code": "SW1A 1AA"},
        "properties": {"product_id": "sku-9", "price": "19.90", "currency": "GBP", "name": "Scarf"},
    },
    {
        "event": "add_to_cart", "event_id": "c-1", "timestamp": "2026-11-18T11:00:00.123+01:00",
        "url": "https://shop.example/cart", "action_source": "website", "consent_categories": "1,4",
        "user": {"Email": "cy@example.fr", "phone": "06 12 34 56 78", "country": "FRA", "user_agent": "UA",
                 "birthday": "16/02/1990"},
        "properties": {"products": [{"sku": "a", "price": 3}, {"item_id": "b", "quantity": "2"}], "coupon": "X"},
    },
    {
        "event": "Lead", "event_id": "l-1", "timestamp": NOW_MS - 5000, "action_source": "email",
        "consent_categories": ["4"], "referrer_url": "https://ref.example",
        "user": {"em": "d" * 64, "external_id": "42"},
    },
]

#: Values tried in every field: what CDPs and CSV files really send, and what they should not.
ODD_VALUES: list[Any] = [
    None, "", " ", " padded ", 0, 1, 1.0, True, False, 1e400, float("nan"), [], ["a@example.com", " b@example.com"],
    {"k": 1}, "N/A", "US", "fb.1.123.abc", "2026-11-18T09:00:00Z", "+33 6 12 34 56 78", "12345",
]
TOP_LEVEL: dict[str, list[Any]] = {
    "event": ["purchase", " purchase", "", "x" * 201, 5, "Order Completed", "Custom Thing"],
    "event_id": [None, "", " id ", 42, True, "x" * 501],
    "timestamp": [None, "", "2026-11-18T10:00:00z", "yesterday", 1794990000123, -1, 1e400, True,
                  NOW_S - 9 * 86400, NOW_S + 600, [1]],
    "url": [None, "", " https://a.example/ ", "ftp://x", 3, "https://a.example/?fbclid=Q&fbclid=R"],
    "referrer_url": [None, " https://r.example ", 1],
    "action_source": [None, "website", " website", "physical_store", "app", "web", 1],
    "messaging_channel": [None, "whatsapp", " whatsapp", "sms"],
    "consent_categories": [None, "1; 4", [1, 4], [" 4 "], [], [True], 7, ["4", None]],
    "integrations": [None, {}, {"facebook": None}, {"facebook": {"event_name": "Lead", "opt_out": True, "x": 1}},
                     {"facebook": {"user_data": {"em": "o@example.com", "ph": None}, "custom_data": {"c": None}}}],
    "user": [None, {}, "text", {" email ": "e@example.com", "ip": "1.2.3.4"}, {1: "x"}],
    "properties": [None, {}, {" value ": 3}, {"value": 1e400, "currency": ["EUR"]}, {"contents": 5},
                   {"quantity": 1e400, "product_id": "p"}],
}
USER_KEYS = ["email", "EMAIL", "em", "phone", "first_name", "gender", "zip", "country", "country_code", "fbc",
             "shoe_size", "ip", "emails"]
PROPERTY_KEYS = ["value", "revenue", "currency", "order_id", "items", "product_id", "price", "quantity",
                 "content_type", "contents", "coupon"]


def corpus(n: int = 1500, seed: int = 5) -> list[Any]:
    rng = random.Random(seed)
    events: list[Any] = [copy.deepcopy(e) for e in BASE_EVENTS]
    for _ in range(n):
        event = copy.deepcopy(rng.choice(BASE_EVENTS))
        for _ in range(rng.randint(1, 3)):
            where = rng.random()
            if where < 0.4:
                key = rng.choice(list(TOP_LEVEL))
                event[key] = copy.deepcopy(rng.choice(TOP_LEVEL[key]))
            elif where < 0.75 and isinstance(event.get("user"), dict):
                event["user"][rng.choice(USER_KEYS)] = copy.deepcopy(rng.choice(ODD_VALUES))
            elif isinstance(event.get("properties", {}), dict):
                event.setdefault("properties", {})[rng.choice(PROPERTY_KEYS)] = copy.deepcopy(rng.choice(ODD_VALUES))
        events.append(event)
        if rng.random() < 0.3:
            events.append(copy.deepcopy(event))  # the same person again: served by the cache
    return events + ["not an object", None, [1]]


SETTINGS = [
    ConnectionSettings(pixel_id="1", default_country="us"),
    ConnectionSettings(pixel_id="1", default_country="fr", date_order="dmy", matching="strict", consent_category="4"),
    ConnectionSettings(pixel_id="1", external_id_hashing=False, event_names={"purchase": "Lead"}),
]


def _as_dict(decision: Any) -> dict[str, Any]:
    out = decision.summary()
    out.update(errors=decision.errors, warnings=decision.warnings, server_event=decision.server_event)
    return out


@pytest.mark.parametrize("settings", SETTINGS, ids=["us", "fr-strict-consent", "no-hashing"])
def test_process_equals_model_then_transform(settings: ConnectionSettings) -> None:
    """``process`` (plain path where it applies) decides exactly like parsing with the model first."""
    fast = EventPipeline(settings)
    reference = EventPipeline(settings, customer_cache_size=0)
    plain_seen = 0
    for index, raw in enumerate(corpus()):
        got = fast.process(raw, index=index, now_ms=NOW_MS, received_ms=NOW_MS - 1000)
        event = reference.parse(raw)
        if isinstance(event, list):
            assert (got.action, got.reason, got.errors) == ("skip", "invalid", event), raw
            continue
        expected = reference.transform(event, index=index, now_ms=NOW_MS, received_ms=NOW_MS - 1000)
        assert _as_dict(got) == _as_dict(expected), raw
        plain_seen += isinstance(raw, dict) and read_plain_event(raw) is not None
    assert plain_seen > 300  # the corpus exercises the plain path, not only the model


def test_read_plain_event_gives_the_models_fields_or_steps_aside() -> None:
    fields = ("event", "event_id", "timestamp_ms", "url", "referrer_url", "action_source", "messaging_channel",
              "consent_categories", "user", "properties")
    plain = stepped_aside = 0
    for raw in corpus():
        if not isinstance(raw, dict):
            continue
        read = read_plain_event(raw)
        model = parse_event(raw)
        if read is None:
            stepped_aside += 1
            continue
        plain += 1
        got = dict(zip(fields, read))
        if not all(_clean_keys(got[name]) for name in ("user", "properties")):
            continue  # keys are the caller's to check (the pipeline does; see the test above)
        assert isinstance(model, IncomingEvent), (raw, model)
        assert model.integrations is None
        assert got == {name: getattr(model, name) for name in fields}, raw
    assert plain > 300 and stepped_aside > 300


def _clean_keys(mapping: dict[Any, Any]) -> bool:
    return all(isinstance(key, str) and key.strip() == key for key in mapping)


def _users() -> list[dict[str, Any]]:
    return [e["user"] for e in corpus() if isinstance(e, dict) and isinstance(e.get("user"), dict)]


@pytest.mark.parametrize("settings", SETTINGS, ids=["us", "fr-strict-consent", "no-hashing"])
def test_customer_cache_equals_the_general_path(settings: ConnectionSettings) -> None:
    identity = settings.identity_context()
    cache = CustomerCache(identity)
    for user in _users() * 2:  # the second round is served from the cache
        clean = _clean_keys(user)
        got = cache.get(copy.deepcopy(user))
        if not clean:
            assert got is None  # the keys need the model (which strips them) first
            continue
        expected = customer_from_user(user, {}, identity)
        assert got is not None
        assert (got.user_data, got.warnings, got.fbc_given) == (
            expected.user_data, expected.warnings, expected.fbc_given
        ), user


def test_same_person_with_one_field_changed_is_another_customer() -> None:
    cache = CustomerCache(ConnectionSettings(default_country="us").identity_context())
    ana = {"email": "ana@example.com", "phone": "6505551212", "country": "US"}
    first = cache.get(dict(ana))
    assert cache.get(dict(ana)) is first  # a hit: the very same entry
    moved = cache.get({**ana, "country": "FR"})  # the phone is read for another region: not a French number
    assert "ph" in first.user_data and "ph" not in moved.user_data
    assert moved.user_data["country"] != first.user_data["country"]
    assert [w.field for w in moved.warnings] == ["user.phone"]
    renamed = cache.get({"em": "ana@example.com", "phone": "6505551212", "country": "US"})
    assert renamed is not first and renamed.user_data == first.user_data  # same values under other keys
    assert cache.get({**ana, "email": "bo@example.com"}).user_data["em"] != first.user_data["em"]


@pytest.mark.parametrize("value", [1, 1.0, True, ["ana@example.com"]])
def test_values_equal_under_python_but_read_differently_are_never_mixed_up(value: Any) -> None:
    """1 == 1.0 == True in Python; a cache keyed on them could hand one's result to another. Only records
    with text values are cached."""
    identity = ConnectionSettings(default_country="us").identity_context()
    cache = CustomerCache(identity)
    cache.get({"external_id": "1", "zip": "1"})
    got = cache.get({"external_id": value, "zip": value})
    assert got is not None
    expected = customer_from_user({"external_id": value, "zip": value}, {}, identity)
    assert (got.user_data, got.warnings) == (expected.user_data, expected.warnings)
    assert len(cache) == 1


def test_cache_is_bounded_and_keeps_recent_people() -> None:
    cache = CustomerCache(ConnectionSettings().identity_context(), size=100)
    regular = {"email": "regular@example.com"}
    first = cache.get(dict(regular))
    for i in range(1_000):
        cache.get({"email": f"p{i}@example.com"})
        if i % 40 == 0:
            assert cache.get(dict(regular)) is first  # seen within the last 50 people: still cached
        assert len(cache) <= 100
    for i in range(200):
        cache.get({"email": f"q{i}@example.com"})
    assert cache.get(dict(regular)) is not first  # not seen for 200 people: computed again
    assert cache.get(dict(regular)).user_data == first.user_data


def test_fbc_from_the_url_is_per_event_and_never_cached() -> None:
    pipeline = EventPipeline(ConnectionSettings())
    user = {"email": "ana@example.com", "user_agent": "UA"}
    one = pipeline.process({"event": "Lead", "event_id": "1", "timestamp": NOW_S - 10,
                            "url": "https://a.example/?fbclid=One", "user": dict(user)}, index=0, now_ms=NOW_MS)
    two = pipeline.process({"event": "Lead", "event_id": "2", "timestamp": NOW_S - 20,
                            "url": "https://a.example/?fbclid=Two", "user": dict(user)}, index=1, now_ms=NOW_MS)
    none = pipeline.process({"event": "Lead", "event_id": "3", "timestamp": NOW_S - 30,
                             "url": "https://a.example/", "user": dict(user)}, index=2, now_ms=NOW_MS)
    assert one.server_event["user_data"]["fbc"] == f"fb.1.{(NOW_S - 10) * 1000}.One"
    assert two.server_event["user_data"]["fbc"] == f"fb.1.{(NOW_S - 20) * 1000}.Two"
    assert "fbc" not in none.server_event["user_data"]
    one.server_event["user_data"]["em"] = "changed by a caller"
    again = pipeline.process({"event": "Lead", "event_id": "4", "timestamp": NOW_S, "url": "https://a.example/",
                              "user": dict(user)}, index=3, now_ms=NOW_MS)
    assert again.server_event["user_data"]["em"] == none.server_event["user_data"]["em"] != "changed by a caller"


def test_values_holding_the_key_separator_are_not_cached_but_still_right() -> None:
    identity = ConnectionSettings().identity_context()
    cache = CustomerCache(identity)
    tricky = {"external_id": "a\x1fb", "zip": "c"}
    other = {"external_id": "a", "zip": "b\x1fc"}  # joins to the same text: must not share an entry
    for user in (tricky, other, tricky):
        got = cache.get(dict(user))
        expected = customer_from_user(user, {}, identity)
        assert got is not None and got.user_data == expected.user_data
    assert len(cache) == 0


def test_null_and_empty_values_are_both_not_given() -> None:
    identity = ConnectionSettings().identity_context()
    cache = CustomerCache(identity)
    with_null = cache.get({"email": "ana@example.com", "phone": None, "fbc": None})
    with_empty = cache.get({"email": "ana@example.com", "phone": "", "fbc": ""})
    assert with_null is with_empty  # one entry: both mean "not given", as in the general path
    expected = customer_from_user({"email": "ana@example.com", "phone": None, "fbc": ""}, {}, identity)
    assert (with_null.user_data, with_null.warnings, with_null.fbc_given) == (
        expected.user_data, expected.warnings, expected.fbc_given
    )


def _fbclid_reference(url: str) -> str | None:
    from urllib.parse import parse_qs, urlsplit

    if "fbclid=" not in url:
        return None
    try:
        values = parse_qs(urlsplit(url).query, keep_blank_values=False).get("fbclid")
    except ValueError:
        return None
    return values[0] if values else None


def test_fbclid_reading_equals_urlsplit_and_parse_qs() -> None:
    from metabridge.events.mapping import fbclid_from_url

    pieces = ["https://", "http://", "", "shop.example", "/p", "?", "#", "&", "=", "fbclid=", "fbclid", "AbC",
              "x=1", "%41", "+", ";", "[", "]", "::1", " ", "\t", "é", "?fbclid=Z", "&fbclid=", "fbclid=Q#", "@"]
    rng = random.Random(11)
    checked = 0
    for _ in range(40_000):
        url = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 10)))
        if "fbclid=" in url:
            assert fbclid_from_url(url) == _fbclid_reference(url), url
            checked += 1
    assert checked > 10_000
    assert fbclid_from_url("https://a.example/?utm=x&fbclid=IwAR-x_1&b=2") == "IwAR-x_1"
    assert fbclid_from_url("http://[::1/?fbclid=x") is None  # urlsplit refuses the host: no fbclid, no crash
