"""Pure request building, URL redaction and usage-header parsing (shared by sync and future async clients)."""

from __future__ import annotations

import hashlib
import hmac
import logging

import httpx
import orjson
import pytest

from metabridge.graph import GraphUsage, parse_usage_headers, prepare_request, redact_url
from metabridge.graph.redact import RedactingFilter, redact_text, scrub
from metabridge.graph.wire import build_url, encode_form, events_path

TOKEN = "EAABwireTOKEN42"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            f"https://graph.facebook.com/v26.0/1/events?access_token={TOKEN}",
            "https://graph.facebook.com/v26.0/1/events?access_token=***",
        ),
        (
            f"https://graph.facebook.com/v26.0/1/events?fields=id&access_token={TOKEN}&appsecret_proof=abc",
            "https://graph.facebook.com/v26.0/1/events?fields=id&access_token=***&appsecret_proof=***",
        ),
        ("https://graph.facebook.com/v26.0/me", "https://graph.facebook.com/v26.0/me"),
        (f"https://user:{TOKEN}@example.com/x?a=1", "https://example.com/x?a=1"),
        (f"http://x/oauth?client_secret={TOKEN}&code=abc", "http://x/oauth?client_secret=***&code=***"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected
    assert redact_url(httpx.URL(url)) == expected


def test_redact_text_and_scrub() -> None:
    assert redact_text(f"GET /me?access_token={TOKEN} failed, error code=190") == (
        "GET /me?access_token=*** failed, error code=190"
    )
    body = {"error": {"message": f"bad token {TOKEN}", "list": [TOKEN, 1]}}
    assert scrub(body, [TOKEN, None]) == {"error": {"message": "bad token ***", "list": ["***", 1]}}
    assert scrub(body, [None]) is body


def test_redacting_filter_rewrites_url_arguments() -> None:
    record = logging.LogRecord(
        "httpx",
        logging.INFO,
        __file__,
        1,
        "HTTP Request: %s %s",
        ("POST", httpx.URL(f"http://x/?access_token={TOKEN}")),
        None,
    )
    assert RedactingFilter().filter(record)
    assert TOKEN not in record.getMessage()


def test_prepare_request_keeps_token_out_of_the_url() -> None:
    prepared = prepare_request(
        "post",
        "https://graph.facebook.com/",
        "v26.0",
        "/123/events",
        access_token=TOKEN,
        app_secret="secret",
        params={"fields": ["id", "name"], "limit": 5, "debug": True},
        json={"data": []},
        user_agent="ua/1",
    )
    assert prepared.method == "POST"
    assert prepared.url == "https://graph.facebook.com/v26.0/123/events"
    params = dict(prepared.params)
    assert params["access_token"] == TOKEN
    assert params["appsecret_proof"] == hmac.new(b"secret", TOKEN.encode(), hashlib.sha256).hexdigest()
    assert params["fields"] == '["id","name"]'
    assert params["limit"] == "5"
    assert params["debug"] == "true"
    assert prepared.headers == {
        "User-Agent": "ua/1",
        "Accept": "application/json",
        "Content-Type": "application/json",
    }
    assert prepared.content == b'{"data":[]}'
    assert TOKEN not in prepared.redacted_url
    assert "access_token=***" in prepared.redacted_url
    assert TOKEN not in repr(prepared.redacted_url)


def test_prepare_request_refuses_json_and_data() -> None:
    with pytest.raises(ValueError):
        prepare_request(
            "POST", "http://x", "v26.0", "1", access_token=TOKEN, json={}, data={}, user_agent="u"
        )


def test_encode_form_json_encodes_structures() -> None:
    encoded = encode_form({"payload": {"schema": ["EMAIL"]}, "name": "a b", "skip": None, "flag": False})
    assert encoded == b"payload=%7B%22schema%22%3A%5B%22EMAIL%22%5D%7D&name=a+b&flag=false"


@pytest.mark.parametrize("bad", ["", " ", "1/2", "1?x", "../x"])
def test_events_path_rejects_bad_ids(bad: str) -> None:
    with pytest.raises(ValueError):
        events_path(bad)


def test_build_url() -> None:
    assert build_url("http://127.0.0.1:8000/graph/", "v26.0", "act_1/customaudiences") == (
        "http://127.0.0.1:8000/graph/v26.0/act_1/customaudiences"
    )


def test_usage_headers() -> None:
    buc = {
        "111": [
            {"type": "ads_management", "call_count": 95, "estimated_time_to_regain_access": 3},
            {"type": "custom_audience", "call_count": 10, "estimated_time_to_regain_access": 0},
        ],
        "222": [{"type": "ads_insights", "estimated_time_to_regain_access": 7.5}],
    }
    headers = httpx.Headers(
        {
            "X-Business-Use-Case-Usage": orjson.dumps(buc).decode(),
            "x-app-usage": '{"call_count": 28, "total_time": 25, "total_cputime": 25}',
            "X-Ad-Account-Usage": "not json",
        }
    )
    usage = parse_usage_headers(headers)
    assert usage.present
    assert usage.business_use_case == buc
    assert usage.app == {"call_count": 28, "total_time": 25, "total_cputime": 25}
    assert usage.ad_account is None
    assert usage.max_time_to_regain_access_seconds() == 450.0
    assert usage.retry_after_seconds() == 450.0


def test_usage_absent_or_odd() -> None:
    assert parse_usage_headers({}) == GraphUsage()
    assert not GraphUsage().present
    odd = GraphUsage(business_use_case={"1": "x", "2": [1, {"estimated_time_to_regain_access": True}]})
    assert odd.retry_after_seconds() == 0.0
