"""The sandbox's Conversions API endpoint over real HTTP: validation, encodings, limits, storage."""

from __future__ import annotations

import copy
import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from metabridge.sandbox.control import SandboxControl


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


PIXEL = "1234567890"
TOKEN = "EAAB-sandbox-test-token"
DAY = 86_400
EMPTY_SHA256 = sha256_hex("")

Mutation = Callable[[dict[str, Any]], None]


def _drop(path: str) -> Mutation:
    def mutate(event: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = event
        for part in parents:
            target = target[part]
        del target[last]

    return mutate


def _set(path: str, value: Any) -> Mutation:
    def mutate(event: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = event
        for part in parents:
            target = target[part]
        target[last] = value() if callable(value) else value

    return mutate


def _user_data(value: dict[str, Any]) -> Mutation:
    return _set("user_data", value)


def _ago(seconds: int) -> Callable[[], int]:
    return lambda: int(time.time()) - seconds


def _chain(*mutations: Mutation) -> Mutation:
    def mutate(event: dict[str, Any]) -> None:
        for m in mutations:
            m(event)

    return mutate


UA = "Mozilla/5.0 (X11; Linux x86_64)"

# (id, mutation of the valid baseline event, expected subcode, expected field)
INVALID_CASES: list[tuple[str, Mutation, int | None, str]] = [
    ("missing event_name", _drop("event_name"), None, "event_name"),
    ("missing event_time", _drop("event_time"), None, "event_time"),
    ("missing action_source", _drop("action_source"), None, "action_source"),
    ("missing user_data", _drop("user_data"), None, "user_data"),
    ("event_time as float", _set("event_time", lambda: time.time() - 60), None, "event_time"),
    ("event_time as string", _set("event_time", lambda: str(int(time.time()))), None, "event_time"),
    ("event_time 8 days old", _set("event_time", _ago(8 * DAY)), 2804003, "event_time"),
    (
        "physical_store 63 days old",
        _chain(_set("action_source", "physical_store"), _set("event_time", _ago(63 * DAY))),
        2804003,
        "event_time",
    ),
    ("event_time in milliseconds", _set("event_time", lambda: int(time.time() * 1000)), None, "event_time"),
    ("unknown action_source", _set("action_source", "web"), None, "action_source"),
    ("action_source not a string", _set("action_source", ["website"]), None, "action_source"),
    ("event_name not a string", _set("event_name", ["Purchase"]), None, "event_name"),
    ("user_data not an object", _set("user_data", ["em"]), None, "user_data"),
    ("custom_data not an object", _set("custom_data", [1]), None, "custom_data"),
    ("hash with trailing newline", _set("user_data.em", [sha256_hex("a@b.co") + "\n"]), None, "user_data.em"),
    ("hashed key not a string", _set("user_data.em", [123]), None, "user_data.em"),
    (
        "ip with trailing newline",
        _set("user_data.client_ip_address", "1.2.3.4\n"),
        None,
        "user_data.client_ip_address",
    ),
    (
        "messaging_channel not a string",
        _chain(_set("action_source", "business_messaging"), _set("messaging_channel", {"x": 1})),
        None,
        "messaging_channel",
    ),
    (
        "LDU country as string",
        _chain(_set("data_processing_options", ["LDU"]), _set("data_processing_options_country", "1")),
        None,
        "data_processing_options_country",
    ),
    ("website without event_source_url", _drop("event_source_url"), None, "event_source_url"),
    (
        "website without client_user_agent",
        _drop("user_data.client_user_agent"),
        None,
        "user_data.client_user_agent",
    ),
    ("event_source_url not http", _set("event_source_url", "shop.example.com"), None, "event_source_url"),
    ("plaintext email", _set("user_data.em", ["john_smith@gmail.com"]), None, "user_data.em"),
    ("plaintext phone scalar", _set("user_data.ph", "16505551212"), None, "user_data.ph"),
    ("uppercase hex hash", _set("user_data.fn", sha256_hex("mary").upper()), None, "user_data.fn"),
    ("md5 hash", _set("user_data.ln", "5f4dcc3b5aa765d61d8327deb882cf99"), None, "user_data.ln"),
    ("hash of empty string", _set("user_data.ct", [EMPTY_SHA256]), None, "user_data.ct"),
    ("plaintext country", _set("user_data.country", "us"), None, "user_data.country"),
    ("empty hashed list", _set("user_data.zp", []), None, "user_data.zp"),
    (
        "external_id uppercase hash",
        _set("user_data.external_id", [sha256_hex("x").upper()]),
        None,
        "user_data.external_id",
    ),
    ("unknown user_data key", _set("user_data.email", sha256_hex("a@b.co")), None, "user_data.email"),
    (
        "invalid client_ip_address",
        _set("user_data.client_ip_address", "999.1.1.1"),
        None,
        "user_data.client_ip_address",
    ),
    ("Purchase without value", _drop("custom_data.value"), 2804009, "custom_data.value"),
    ("Purchase without custom_data", _drop("custom_data"), 2804009, "custom_data.value"),
    ("Purchase without currency", _drop("custom_data.currency"), None, "custom_data.currency"),
    ("value not a number", _set("custom_data.value", "lots"), None, "custom_data.value"),
    ("fbc without fbclid", _set("user_data.fbc", "fb.1.1554763741205"), 2804001, "user_data.fbc"),
    (
        "fbc lowercased prefix wrong",
        _set("user_data.fbc", "FB.1.1554763741205.abc"),
        2804001,
        "user_data.fbc",
    ),
    (
        "baseline: only location + user agent",
        _user_data(
            {
                "ct": sha256_hex("paris"),
                "country": sha256_hex("fr"),
                "zp": sha256_hex("75018"),
                "client_user_agent": UA,
            }
        ),
        2804050,
        "user_data",
    ),
    (
        "baseline: db + user agent",
        _user_data({"db": sha256_hex("19970216"), "client_user_agent": UA}),
        2804050,
        "user_data",
    ),
    (
        "baseline: fn + ge",
        _chain(_set("action_source", "email"), _user_data({"fn": sha256_hex("mary"), "ge": sha256_hex("f")})),
        2804050,
        "user_data",
    ),
    (
        "baseline: empty user_data",
        _chain(_set("action_source", "other"), _user_data({})),
        2804050,
        "user_data",
    ),
    (
        "whatsapp without business ids",
        _chain(
            _set("action_source", "business_messaging"),
            _set("messaging_channel", "whatsapp"),
            _user_data({"ph": [sha256_hex("16505551212")]}),
        ),
        2804116,
        "user_data.whatsapp_business_account_id",
    ),
    (
        "messenger without page_scoped_user_id",
        _chain(
            _set("action_source", "business_messaging"),
            _set("messaging_channel", "messenger"),
            _user_data({"page_id": "1122334455"}),
        ),
        None,
        "user_data.page_scoped_user_id",
    ),
    (
        "business_messaging without channel",
        _chain(
            _set("action_source", "business_messaging"),
            _user_data({"page_id": "1", "page_scoped_user_id": "2"}),
        ),
        None,
        "messaging_channel",
    ),
    ("lead_id too short", _set("user_data.lead_id", 12345), 2804036, "user_data.lead_id"),
    (
        "LDU without country",
        _set("data_processing_options", ["LDU"]),
        None,
        "data_processing_options_country",
    ),
    (
        "LDU unknown state",
        _chain(
            _set("data_processing_options", ["LDU"]),
            _set("data_processing_options_country", 1),
            _set("data_processing_options_state", 1099),
        ),
        None,
        "data_processing_options_state",
    ),
    ("app event without app_data", _set("action_source", "app"), None, "app_data"),
    ("opt_out not boolean", _set("opt_out", "yes"), None, "opt_out"),
    ("contents without id", _set("custom_data.contents", [{"quantity": 1}]), None, "custom_data.contents"),
]

VALID_CASES: list[tuple[str, Mutation]] = [
    ("baseline", lambda e: None),
    (
        "scalar hashed values",
        _chain(_set("user_data.em", sha256_hex("a@b.co")), _set("user_data.ph", sha256_hex("1"))),
    ),
    ("parameter-builder appendix on hash", _set("user_data.em", [sha256_hex("a@b.co") + ".ABcDEFGh"])),
    ("fbc with appendix", _set("user_data.fbc", "fb.1.1554763741205.AbCdEfGh1234567890.ABcDEFGh")),
    ("plain external_id", _set("user_data.external_id", ["CRM-0042"])),
    ("value as numeric string", _set("custom_data.value", "142.52")),
    ("uppercase currency", _set("custom_data.currency", "USD")),
    (
        "physical_store 30 days old",
        _chain(_set("action_source", "physical_store"), _set("event_time", _ago(30 * DAY))),
    ),
    ("event 6 days old", _set("event_time", _ago(6 * DAY))),
    ("custom event without value", _chain(_set("event_name", "NewsletterSignup"), _drop("custom_data"))),
    ("explicit no LDU", _set("data_processing_options", [])),
    (
        "LDU with country and state",
        _chain(
            _set("data_processing_options", ["LDU"]),
            _set("data_processing_options_country", 1),
            _set("data_processing_options_state", 1000),
        ),
    ),
    (
        "whatsapp with ids",
        _chain(
            _set("action_source", "business_messaging"),
            _set("messaging_channel", "whatsapp"),
            _user_data(
                {
                    "whatsapp_business_account_id": "102290129340398",
                    "ctwa_clid": "ARAkLkA8rmlFeiCktEJQ-QTwRiyYHAFDLMNDBH0CD3qpjd0HR4irJ6LEkR7JwFF4XvnO2E4Nx0-eM-GABDLOPaOdRMv-_zfUQ2a",
                }
            ),
        ),
    ),
    (
        "instagram with ids",
        _chain(
            _set("action_source", "business_messaging"),
            _set("messaging_channel", "instagram"),
            _user_data({"instagram_business_account_id": "17841400000000000", "ig_sid": "1234567890123456"}),
        ),
    ),
    (
        "email event with fn+ln (not broad)",
        _chain(
            _set("action_source", "email"), _user_data({"fn": sha256_hex("mary"), "ln": sha256_hex("smith")})
        ),
    ),
    ("lead id of 15 digits", _set("user_data.lead_id", 123456789012345)),
    ("IPv6 address", _set("user_data.client_ip_address", "2001:0db8:85a3:0000:0000:8a2e:0370:7334")),
]


def post(
    sandbox: SandboxControl, body: dict[str, Any], *, pixel: str = PIXEL, token: str | None = TOKEN
) -> Any:
    params = {"access_token": token} if token else None
    return sandbox.http.post(f"/v26.0/{pixel}/events", params=params, json=body)


@pytest.mark.parametrize(
    ("case_id", "mutation", "subcode", "field"), INVALID_CASES, ids=[c[0] for c in INVALID_CASES]
)
def test_invalid_event_rejects_whole_request(
    sandbox: SandboxControl,
    make_event: Callable[..., dict[str, Any]],
    case_id: str,
    mutation: Mutation,
    subcode: int | None,
    field: str,
) -> None:
    good = make_event()
    bad = copy.deepcopy(make_event(event_id="order-1002"))
    mutation(bad)
    answer = post(sandbox, {"data": [good, bad]})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == 100
    assert error.get("error_subcode") == subcode
    assert error["type"] == "OAuthException"
    assert error["is_transient"] is False
    assert error["error_data"] == {"event_index": 1, "field": field}
    assert "data[1]" in error["error_user_msg"]
    assert error["error_user_title"]
    assert error["fbtrace_id"] == answer.headers["x-fb-trace-id"]
    assert sandbox.events(PIXEL) == []  # the valid first event is not kept either


@pytest.mark.parametrize(("case_id", "mutation"), VALID_CASES, ids=[c[0] for c in VALID_CASES])
def test_valid_event_variants_are_accepted(
    sandbox: SandboxControl, make_event: Callable[..., dict[str, Any]], case_id: str, mutation: Mutation
) -> None:
    event = make_event()
    mutation(event)
    answer = post(sandbox, {"data": [event]})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["events_received"] == 1
    assert body["messages"] == []
    assert len(body["fbtrace_id"]) >= 10
    stored = sandbox.events(PIXEL)
    assert [s["event"] for s in stored] == [event]
    assert stored[0]["fbtrace_id"] == body["fbtrace_id"]
    assert stored[0]["received_at"] == pytest.approx(time.time(), abs=60)


# --- encodings ------------------------------------------------------------------------------------------


def test_json_body_token_in_query(sandbox: SandboxControl, make_event: Callable[..., dict[str, Any]]) -> None:
    answer = post(sandbox, {"data": [make_event()], "partner_agent": "metabridge"})
    assert answer.status_code == 200
    assert sandbox.events(PIXEL)[0]["partner_agent"] == "metabridge"


def test_json_body_token_in_body(sandbox: SandboxControl, make_event: Callable[..., dict[str, Any]]) -> None:
    answer = post(sandbox, {"data": [make_event()], "access_token": TOKEN}, token=None)
    assert answer.status_code == 200, answer.text


def test_bearer_token(sandbox: SandboxControl, make_event: Callable[..., dict[str, Any]]) -> None:
    answer = sandbox.http.post(
        f"/v26.0/{PIXEL}/events", json={"data": [make_event()]}, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert answer.status_code == 200, answer.text


def test_json_body_with_data_as_json_string(
    sandbox: SandboxControl, make_event: Callable[..., dict[str, Any]]
) -> None:
    answer = post(sandbox, {"data": orjson.dumps([make_event()]).decode()})
    assert answer.status_code == 200, answer.text


def test_form_with_data_as_json_string(
    sandbox: SandboxControl, make_event: Callable[..., dict[str, Any]]
) -> None:
    event = make_event()
    answer = sandbox.http.post(
        f"/v26.0/{PIXEL}/events",
        data={"data": orjson.dumps([event]).decode(), "access_token": TOKEN, "test_event_code": "TEST123"},
    )
    assert answer.status_code == 200, answer.text
    assert sandbox.events(PIXEL, test=True)[0]["event"] == event


def test_form_sdk_style_list_of_json_strings(
    sandbox: SandboxControl, make_event: Callable[..., dict[str, Any]]
) -> None:
    """The official SDK JSON-encodes each event, then the list again (spec §1.1)."""
    events = [make_event(event_id="a"), make_event(event_id="b")]
    data = orjson.dumps([orjson.dumps(e, option=orjson.OPT_SORT_KEYS).decode() for e in events]).decode()
    answer = sandbox.http.post(f"/v26.0/{PIXEL}/events", data={"data": data, "access_token": TOKEN})
    assert answer.status_code == 200, answer.text
    assert answer.json()["events_received"] == 2
    assert [s["event"]["event_id"] for s in sandbox.events(PIXEL)] == ["a", "b"]


def test_multipart_form_like_docs_curl(
    sandbox: SandboxControl, make_event: Callable[..., dict[str, Any]]
) -> None:
    """Meta's curl example sends -F fields: multipart/form-data."""
    fields = {"data": (None, orjson.dumps([make_event()]).decode()), "access_token": (None, TOKEN)}
    answer = sandbox.http.post(f"/v26.0/{PIXEL}/events", files=fields)
    assert answer.status_code == 200, answer.text
    assert answer.json()["events_received"] == 1


@pytest.mark.parametrize(
    "item", [1, None, "null", [1], True], ids=["int", "null", "json null", "list", "bool"]
)
def test_event_that_is_not_an_object_is_rejected(sandbox: SandboxControl, item: Any) -> None:
    answer = post(sandbox, {"data": [item]})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["error_data"]["event_index"] == 0


def test_sdk_item_that_is_not_json_is_rejected(sandbox: SandboxControl) -> None:
    answer = post(sandbox, {"data": ["{not json"]})
    assert answer.status_code == 400
    assert answer.json()["error"]["error_data"]["event_index"] == 0


@pytest.mark.parametrize(
    "body",
    [{}, {"data": None}, {"data": ""}, {"data": "not json"}, {"data": {"event_name": "x"}}, {"data": []}],
    ids=["no data", "null", "empty string", "bad json", "object", "empty list"],
)
def test_bad_data_parameter(sandbox: SandboxControl, body: dict[str, Any]) -> None:
    answer = post(sandbox, body)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == 100


def test_invalid_json_body(sandbox: SandboxControl) -> None:
    answer = sandbox.http.post(
        f"/v26.0/{PIXEL}/events",
        params={"access_token": TOKEN},
        content=b"{",
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == 100


# --- limits, ids, versions ------------------------------------------------------------------------------


def test_1000_events_accepted_1001_rejected(
    sandbox: SandboxControl, make_event: Callable[..., dict[str, Any]]
) -> None:
    events = [make_event(event_id=f"e{i}") for i in range(1001)]
    too_many = post(sandbox, {"data": events})
    assert too_many.status_code == 400
    error = too_many.json()["error"]
    assert error["code"] == 100
    assert error["error_data"]["field"] == "data"
    assert sandbox.events(PIXEL) == []
    ok = post(sandbox, {"data": events[:1000]})
    assert ok.status_code == 200
    assert ok.json()["events_received"] == 1000
    assert sandbox.event_total(PIXEL) == 1000


def test_non_numeric_pixel_is_unknown_object(
    sandbox: SandboxControl, make_event: Callable[..., dict[str, Any]]
) -> None:
    answer = post(sandbox, {"data": [make_event()]}, pixel="my-pixel")
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert (error["code"], error["error_subcode"], error["type"]) == (100, 33, "GraphMethodException")


@pytest.mark.parametrize("version", ["v26.0", "v25.0", "v19.0"])
def test_any_graph_version_is_served(
    sandbox: SandboxControl, make_event: Callable[..., dict[str, Any]], version: str
) -> None:
    answer = sandbox.http.post(
        f"/{version}/{PIXEL}/events", params={"access_token": TOKEN}, json={"data": [make_event()]}
    )
    assert answer.status_code == 200


def test_malformed_version_is_rejected(
    sandbox: SandboxControl, make_event: Callable[..., dict[str, Any]]
) -> None:
    answer = sandbox.http.post(
        f"/26.0/{PIXEL}/events", params={"access_token": TOKEN}, json={"data": [make_event()]}
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == 100


def test_unknown_graph_path_answers_like_graph(sandbox: SandboxControl) -> None:
    answer = sandbox.http.get(f"/v26.0/{PIXEL}/nothing_here", params={"access_token": TOKEN})
    assert answer.status_code == 400
    assert answer.json()["error"]["error_subcode"] == 33


# --- warnings -----------------------------------------------------------------------------------------


def test_future_time_bad_fbp_and_fbc_seconds_are_warnings(
    sandbox: SandboxControl, make_event: Callable[..., dict[str, Any]]
) -> None:
    event = make_event(event_time=int(time.time()) + 600)
    event["user_data"]["fbp"] = "not-an-fbp"
    event["user_data"]["fbc"] = "fb.1.1554763741.IwAR2F4-dbP0l7Mn1Iaw"  # seconds, not milliseconds
    answer = post(sandbox, {"data": [event]})
    assert answer.status_code == 200
    messages = answer.json()["messages"]
    assert len(messages) == 3
    assert any("event_time" in m for m in messages)
    assert any("fbp" in m for m in messages)
    assert any("fbc" in m and "milliseconds" in m for m in messages)


# --- test events ----------------------------------------------------------------------------------------


def test_test_events_are_kept_apart(
    sandbox: SandboxControl, make_event: Callable[..., dict[str, Any]]
) -> None:
    assert post(sandbox, {"data": [make_event(event_id="live")]}).status_code == 200
    assert (
        post(sandbox, {"data": [make_event(event_id="test")], "test_event_code": "TEST4242"}).status_code
        == 200
    )
    live = sandbox.events(PIXEL)
    test = sandbox.events(PIXEL, test=True)
    assert [e["event"]["event_id"] for e in live] == ["live"]
    assert [e["event"]["event_id"] for e in test] == ["test"]
    assert test[0]["test_event_code"] == "TEST4242"
    assert live[0]["test_event_code"] is None
    stats = sandbox.http.get("/_sandbox/stats").json()
    assert stats["events_received"] == 1
    assert stats["test_events_received"] == 1
    assert [r["test"] for r in sandbox.requests()] == [False, True]


def test_event_listing_pages(sandbox: SandboxControl, make_event: Callable[..., dict[str, Any]]) -> None:
    post(sandbox, {"data": [make_event(event_id=f"e{i}") for i in range(5)]})
    page = sandbox.http.get(f"/_sandbox/pixels/{PIXEL}/events", params={"limit": 2, "offset": 2}).json()
    assert page["total"] == 5
    assert [e["event"]["event_id"] for e in page["data"]] == ["e2", "e3"]
    assert [e["index_in_request"] for e in page["data"]] == [2, 3]


# --- tokens -------------------------------------------------------------------------------------------


def test_missing_token(sandbox: SandboxControl, make_event: Callable[..., dict[str, Any]]) -> None:
    answer = post(sandbox, {"data": [make_event()]}, token=None)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["type"] == "OAuthException"
    assert error["code"] == 104


def test_revoke_and_restore_token(sandbox: SandboxControl, make_event: Callable[..., dict[str, Any]]) -> None:
    sandbox.http.post("/_sandbox/tokens/revoke", json={"token": TOKEN}).raise_for_status()
    revoked = post(sandbox, {"data": [make_event()]})
    assert revoked.status_code == 400
    error = revoked.json()["error"]
    assert (error["code"], error["error_subcode"], error["type"]) == (190, 467, "OAuthException")
    assert "invalid_token" in revoked.headers["www-authenticate"]
    other = post(sandbox, {"data": [make_event()]}, token="another-token")
    assert other.status_code == 200
    sandbox.http.post("/_sandbox/tokens/restore", json={"token": TOKEN}).raise_for_status()
    assert post(sandbox, {"data": [make_event()]}).status_code == 200


def test_request_log_never_holds_the_token(
    sandbox: SandboxControl, make_event: Callable[..., dict[str, Any]]
) -> None:
    post(sandbox, {"data": [make_event()]})
    post(sandbox, {"data": [make_event()], "access_token": TOKEN}, token=None)
    sandbox.http.post(
        f"/v26.0/{PIXEL}/events", data={"data": orjson.dumps([make_event()]).decode(), "access_token": TOKEN}
    )
    sandbox.http.post("/_sandbox/tokens/revoke", json={"token": TOKEN})
    post(sandbox, {"data": [make_event()]})
    log = sandbox.requests()
    assert [r["status"] for r in log] == [200, 200, 200, 400]
    assert [r["error_code"] for r in log] == [None, None, None, 190]
    assert all(r["path"] == f"/v26.0/{PIXEL}/events" for r in log)
    for endpoint in (
        "/_sandbox/requests",
        "/_sandbox/stats",
        f"/_sandbox/pixels/{PIXEL}/events",
        "/_sandbox/faults",
    ):
        assert TOKEN not in sandbox.http.get(endpoint).text, endpoint


# --- faults -------------------------------------------------------------------------------------------


def test_fault_fails_next_n_requests(
    sandbox: SandboxControl, make_event: Callable[..., dict[str, Any]]
) -> None:
    sandbox.add_fault(
        count=2, error={"code": 2, "http_status": 503, "message": "Service down", "is_transient": True}
    )
    for _ in range(2):
        answer = post(sandbox, {"data": [make_event()]})
        assert answer.status_code == 503
        error = answer.json()["error"]
        assert (error["code"], error["message"], error["is_transient"]) == (2, "Service down", True)
    assert post(sandbox, {"data": [make_event()]}).status_code == 200
    assert [r["fault"] for r in sandbox.requests()] == [True, True, False]
    assert sandbox.event_total(PIXEL) == 1


def test_fault_defaults_follow_meta(
    sandbox: SandboxControl, make_event: Callable[..., dict[str, Any]]
) -> None:
    sandbox.add_fault(error={"code": 4})
    answer = post(sandbox, {"data": [make_event()]})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == 4
    assert error["is_transient"] is True
    assert "request limit" in error["message"]


def test_fault_path_filter_and_clear(
    sandbox: SandboxControl, make_event: Callable[..., dict[str, Any]]
) -> None:
    sandbox.add_fault(count=5, error={"code": 1}, path_contains="/999/")
    assert post(sandbox, {"data": [make_event()]}).status_code == 200
    assert post(sandbox, {"data": [make_event()]}, pixel="999").status_code == 500
    assert sandbox.http.get("/_sandbox/faults").json()["data"][0]["remaining"] == 4
    sandbox.http.delete("/_sandbox/faults").raise_for_status()
    assert post(sandbox, {"data": [make_event()]}, pixel="999").status_code == 200


def test_faults_do_not_touch_control_endpoints(sandbox: SandboxControl) -> None:
    sandbox.add_fault(count=1, error={"code": 2})
    assert sandbox.http.get("/_sandbox/stats").status_code == 200
    assert sandbox.http.get("/_sandbox/faults").json()["data"][0]["remaining"] == 1


def test_delay_fault(sandbox: SandboxControl, make_event: Callable[..., dict[str, Any]]) -> None:
    sandbox.add_fault(count=1, delay_ms=300)
    started = time.monotonic()
    answer = post(sandbox, {"data": [make_event()]})
    assert answer.status_code == 200
    assert time.monotonic() - started >= 0.29


def test_fault_with_usage_headers(sandbox: SandboxControl, make_event: Callable[..., dict[str, Any]]) -> None:
    usage = '{"1": [{"type": "ads_management", "call_count": 100, "estimated_time_to_regain_access": 5}]}'
    sandbox.add_fault(error={"code": 80004}, headers={"X-Business-Use-Case-Usage": usage})
    answer = post(sandbox, {"data": [make_event()]})
    assert answer.status_code == 400
    assert answer.headers["x-business-use-case-usage"] == usage


def test_bad_fault_spec_is_refused(sandbox: SandboxControl) -> None:
    assert sandbox.http.post("/_sandbox/faults", json={"count": 0, "error": {"code": 2}}).status_code == 422


# --- app secret, reset, stats -------------------------------------------------------------------------


def test_app_secret_requires_valid_proof(
    sandbox: SandboxControl, make_event: Callable[..., dict[str, Any]]
) -> None:
    sandbox.http.put("/_sandbox/app-secret", json={"app_secret": "s3cret"}).raise_for_status()
    body = {"data": [make_event()]}
    missing = post(sandbox, body)
    assert missing.status_code == 400 and missing.json()["error"]["code"] == 100
    wrong = sandbox.http.post(
        f"/v26.0/{PIXEL}/events", params={"access_token": TOKEN, "appsecret_proof": "00" * 32}, json=body
    )
    assert wrong.status_code == 400 and "appsecret_proof" in wrong.json()["error"]["message"]
    proof = hmac.new(b"s3cret", TOKEN.encode(), hashlib.sha256).hexdigest()
    right = sandbox.http.post(
        f"/v26.0/{PIXEL}/events", params={"access_token": TOKEN, "appsecret_proof": proof}, json=body
    )
    assert right.status_code == 200, right.text


def test_reset_clears_everything(sandbox: SandboxControl, make_event: Callable[..., dict[str, Any]]) -> None:
    post(sandbox, {"data": [make_event()]})
    sandbox.add_fault(count=3, error={"code": 2})
    sandbox.http.post("/_sandbox/tokens/revoke", json={"token": "x"})
    sandbox.http.post("/_sandbox/reset").raise_for_status()
    stats = sandbox.http.get("/_sandbox/stats").json()
    assert stats["requests_total"] == 0
    assert stats["events_received"] == 0
    assert stats["faults_pending"] == 0
    assert stats["revoked_tokens"] == 0
    assert sandbox.events(PIXEL) == []


def test_stats_count_errors_by_code(
    sandbox: SandboxControl, make_event: Callable[..., dict[str, Any]]
) -> None:
    post(sandbox, {"data": [make_event()]})
    post(sandbox, {"data": [make_event(event_time=int(time.time()) - 30 * DAY)]})
    stats = sandbox.http.get("/_sandbox/stats").json()
    assert stats["requests_by_status"] == {"200": 1, "400": 1}
    assert stats["errors_by_code"] == {"100/2804003": 1}
    assert stats["pixels"] == {PIXEL: {"live": 1, "test": 0}}
