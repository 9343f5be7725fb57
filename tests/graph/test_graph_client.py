"""GraphClient against the real sandbox over HTTP; MockTransport only for what the sandbox cannot produce."""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest

from metabridge import __version__
from metabridge.graph import (
    ErrorClass,
    GraphAuthError,
    GraphClient,
    GraphError,
    GraphInvalidRequestError,
    GraphRateLimitError,
    GraphTimeoutError,
    GraphTransientError,
    GraphTransportError,
    GraphUnknownError,
    appsecret_proof,
)
from metabridge.sandbox.control import SandboxControl

PIXEL = "1234567890"
TOKEN = "EAABsecretTOKENvalue1234567890"
APP_SECRET = "app-secret-0123456789"


class RecordingTransport(httpx.BaseTransport):
    """Real HTTP, but remembers each request so tests can look at what went on the wire."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def recorder() -> RecordingTransport:
    return RecordingTransport()


@pytest.fixture
def graph(sandbox: SandboxControl, recorder: RecordingTransport) -> Iterator[GraphClient]:
    with GraphClient(sandbox.base_url, transport=recorder, timeout=5) as client:
        yield client


def assert_no_token(exc: BaseException) -> None:
    assert TOKEN not in str(exc)
    assert TOKEN not in repr(exc)
    if isinstance(exc, GraphError):
        assert TOKEN not in str(exc.body)
        assert exc.url is None or TOKEN not in exc.url


# --- success ------------------------------------------------------------------------------------------


def test_post_events_dict_body(
    graph: GraphClient,
    sandbox: SandboxControl,
    recorder: RecordingTransport,
    make_event: Callable[..., dict[str, Any]],
) -> None:
    answer = graph.post_events(PIXEL, TOKEN, {"data": [make_event()], "partner_agent": "metabridge"})
    assert answer.status_code == 200
    assert answer.body["events_received"] == 1
    assert answer.body["messages"] == []
    assert answer.fbtrace_id == answer.body["fbtrace_id"]
    assert not answer.usage.present
    stored = sandbox.events(PIXEL)
    assert stored[0]["fbtrace_id"] == answer.fbtrace_id
    sent = recorder.requests[0]
    assert sent.method == "POST"
    assert sent.url.path == f"/v26.0/{PIXEL}/events"
    assert sent.url.params["access_token"] == TOKEN
    assert "appsecret_proof" not in sent.url.params
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["user-agent"] == f"metabridge/{__version__}"


def test_post_events_pre_encoded_bytes_are_sent_unchanged(
    graph: GraphClient, recorder: RecordingTransport, make_event: Callable[..., dict[str, Any]]
) -> None:
    body = orjson.dumps({"data": [make_event(), make_event(event_id="2")], "test_event_code": "TEST1"})
    answer = graph.post_events(PIXEL, TOKEN, body)
    assert answer.body["events_received"] == 2
    assert recorder.requests[0].content == body


def test_custom_version_and_user_agent(
    sandbox: SandboxControl, recorder: RecordingTransport, make_event: Callable[..., dict[str, Any]]
) -> None:
    with GraphClient(sandbox.base_url, "v25.0", transport=recorder, user_agent="probe/1") as client:
        client.post_events(PIXEL, TOKEN, {"data": [make_event()]})
    assert recorder.requests[0].url.path == f"/v25.0/{PIXEL}/events"
    assert recorder.requests[0].headers["user-agent"] == "probe/1"


def test_generic_request_form_data(
    graph: GraphClient,
    sandbox: SandboxControl,
    recorder: RecordingTransport,
    make_event: Callable[..., dict[str, Any]],
) -> None:
    """``request(data=...)`` JSON-encodes non-string form values, as Graph expects."""
    answer = graph.request("POST", f"/{PIXEL}/events", access_token=TOKEN, data={"data": [make_event()]})
    assert answer.body["events_received"] == 1
    assert recorder.requests[0].headers["content-type"] == "application/x-www-form-urlencoded"


# --- appsecret_proof -----------------------------------------------------------------------------------


def test_appsecret_proof_matches_independent_hmac(
    graph: GraphClient,
    sandbox: SandboxControl,
    recorder: RecordingTransport,
    make_event: Callable[..., dict[str, Any]],
) -> None:
    expected = hmac.new(APP_SECRET.encode(), TOKEN.encode(), hashlib.sha256).hexdigest()
    assert appsecret_proof(TOKEN, APP_SECRET) == expected
    sandbox.set_app_secret(APP_SECRET)
    answer = graph.post_events(PIXEL, TOKEN, {"data": [make_event()]}, app_secret=APP_SECRET)
    assert answer.status_code == 200
    assert recorder.requests[0].url.params["appsecret_proof"] == expected


def test_wrong_app_secret_is_rejected(
    graph: GraphClient, sandbox: SandboxControl, make_event: Callable[..., dict[str, Any]]
) -> None:
    sandbox.set_app_secret(APP_SECRET)
    with pytest.raises(GraphInvalidRequestError) as caught:
        graph.post_events(PIXEL, TOKEN, {"data": [make_event()]}, app_secret="not-the-secret")
    assert caught.value.code == 100
    assert "appsecret_proof=***" in str(caught.value)
    assert_no_token(caught.value)


# --- each error class from the real sandbox ------------------------------------------------------------


def test_invalid_event_raises_invalid(graph: GraphClient, make_event: Callable[..., dict[str, Any]]) -> None:
    old = make_event(event_time=int(time.time()) - 8 * 86_400)
    with pytest.raises(GraphInvalidRequestError) as caught:
        graph.post_events(PIXEL, TOKEN, {"data": [make_event(), old]})
    exc = caught.value
    assert exc.error_class is ErrorClass.INVALID
    assert not exc.retryable
    assert (exc.http_status, exc.code, exc.subcode) == (400, 100, 2804003)
    assert exc.user_title == "Event Timestamp Too Old"
    assert exc.error_data == {"event_index": 1, "field": "event_time"}
    assert exc.fbtrace_id and exc.fbtrace_id in str(exc)
    assert exc.type == "OAuthException"
    assert_no_token(exc)


def test_revoked_token_raises_auth_without_leaking_it(
    graph: GraphClient, sandbox: SandboxControl, make_event: Callable[..., dict[str, Any]]
) -> None:
    sandbox.revoke_token(TOKEN)
    with pytest.raises(GraphAuthError) as caught:
        graph.post_events(PIXEL, TOKEN, {"data": [make_event()]}, app_secret=APP_SECRET)
    exc = caught.value
    assert exc.error_class is ErrorClass.AUTH
    assert (exc.code, exc.subcode) == (190, 467)
    assert "access_token=***" in str(exc)
    assert "access_token=***" in repr(exc)
    assert_no_token(exc)


def test_unknown_pixel_is_auth(graph: GraphClient, make_event: Callable[..., dict[str, Any]]) -> None:
    with pytest.raises(GraphAuthError) as caught:
        graph.request("GET", "/v26-missing/thing", access_token=TOKEN)
    assert (caught.value.code, caught.value.subcode) == (100, 33)


def test_service_fault_raises_transient(
    graph: GraphClient, sandbox: SandboxControl, make_event: Callable[..., dict[str, Any]]
) -> None:
    sandbox.add_fault(error={"code": 2, "http_status": 503, "is_transient": True})
    with pytest.raises(GraphTransientError) as caught:
        graph.post_events(PIXEL, TOKEN, {"data": [make_event()]})
    assert caught.value.error_class is ErrorClass.TRANSIENT
    assert caught.value.http_status == 503
    assert caught.value.is_transient is True
    assert caught.value.retryable
    assert_no_token(caught.value)


def test_throttle_fault_raises_rate_limited_with_usage(
    graph: GraphClient, sandbox: SandboxControl, make_event: Callable[..., dict[str, Any]]
) -> None:
    usage = {"987": [{"type": "ads_management", "call_count": 100, "estimated_time_to_regain_access": 5}]}
    sandbox.add_fault(
        error={"code": 80004}, headers={"X-Business-Use-Case-Usage": orjson.dumps(usage).decode()}
    )
    with pytest.raises(GraphRateLimitError) as caught:
        graph.post_events(PIXEL, TOKEN, {"data": [make_event()]})
    exc = caught.value
    assert exc.error_class is ErrorClass.RATE_LIMITED
    assert exc.http_status == 400
    assert exc.usage is not None
    assert exc.usage.retry_after_seconds() == 300.0


def test_unknown_code_raises_unknown(
    graph: GraphClient, sandbox: SandboxControl, make_event: Callable[..., dict[str, Any]]
) -> None:
    sandbox.add_fault(error={"code": 4242, "http_status": 400, "is_transient": False})
    with pytest.raises(GraphUnknownError) as caught:
        graph.post_events(PIXEL, TOKEN, {"data": [make_event()]})
    assert caught.value.error_class is ErrorClass.UNKNOWN
    assert caught.value.retryable


def test_unknown_code_with_5xx_is_transient(
    graph: GraphClient, sandbox: SandboxControl, make_event: Callable[..., dict[str, Any]]
) -> None:
    sandbox.add_fault(error={"code": 4242, "http_status": 502})
    with pytest.raises(GraphTransientError):
        graph.post_events(PIXEL, TOKEN, {"data": [make_event()]})


def test_timeout_raises_transport_error(
    sandbox: SandboxControl, make_event: Callable[..., dict[str, Any]]
) -> None:
    sandbox.add_fault(delay_ms=1500)
    with GraphClient(sandbox.base_url, timeout=0.2) as client, pytest.raises(GraphTimeoutError) as caught:
        client.post_events(PIXEL, TOKEN, {"data": [make_event()]})
    assert isinstance(caught.value, GraphTransportError)
    assert caught.value.error_class is ErrorClass.TRANSIENT
    assert_no_token(caught.value)


def test_success_answers_carry_usage_headers(
    graph: GraphClient, sandbox: SandboxControl, make_event: Callable[..., dict[str, Any]]
) -> None:
    sandbox.add_fault(headers={"X-App-Usage": '{"call_count": 12, "total_time": 3, "total_cputime": 2}'})
    answer = graph.post_events(PIXEL, TOKEN, {"data": [make_event()]})
    assert answer.usage.app == {"call_count": 12, "total_time": 3, "total_cputime": 2}
    assert answer.usage.retry_after_seconds() == 0.0


def test_httpx_logging_never_shows_the_token(
    graph: GraphClient, make_event: Callable[..., dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        graph.post_events(PIXEL, TOKEN, {"data": [make_event()]})
        with pytest.raises(GraphInvalidRequestError):
            graph.post_events(PIXEL, TOKEN, {"data": []})
    assert "access_token" in caplog.text  # the URL was logged …
    assert TOKEN not in caplog.text  # … redacted


# --- what only a mock can produce ----------------------------------------------------------------------


def _mock_client(handler: Callable[[httpx.Request], httpx.Response]) -> GraphClient:
    return GraphClient(transport=httpx.MockTransport(handler))


def test_html_502_is_a_transport_error() -> None:
    html = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
    client = _mock_client(
        lambda request: httpx.Response(502, content=html, headers={"Content-Type": "text/html"})
    )
    with client, pytest.raises(GraphTransportError) as caught:
        client.post_events(PIXEL, TOKEN, {"data": []})
    exc = caught.value
    assert exc.error_class is ErrorClass.TRANSIENT
    assert exc.http_status == 502
    assert "text/html" in str(exc)
    assert_no_token(exc)


def test_200_with_non_json_is_a_transport_error() -> None:
    client = _mock_client(lambda request: httpx.Response(200, content=b"OK"))
    with client, pytest.raises(GraphTransportError):
        client.post_events(PIXEL, TOKEN, {"data": []})


def test_connection_error_is_a_transport_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"connection refused for {request.url}", request=request)

    client = _mock_client(refuse)
    with client, pytest.raises(GraphTransportError) as caught:
        client.post_events(PIXEL, TOKEN, {"data": []}, app_secret=APP_SECRET)
    exc = caught.value
    assert type(exc) is GraphTransportError
    assert exc.error_class is ErrorClass.TRANSIENT
    assert exc.http_status is None
    assert "ConnectError" in str(exc)
    assert_no_token(exc)
    assert appsecret_proof(TOKEN, APP_SECRET) not in str(exc)


def test_token_echoed_in_error_body_is_scrubbed() -> None:
    """Meta sometimes quotes a bad parameter back; a token must not ride along into the exception."""
    body = {
        "error": {
            "message": f"Malformed access token {TOKEN}",
            "type": "OAuthException",
            "code": 190,
            "error_data": f"token={TOKEN}",  # error_data can be a string (SDK issues #525/#573)
            "fbtrace_id": "Abc",
        }
    }
    client = _mock_client(lambda request: httpx.Response(400, json=body))
    with client, pytest.raises(GraphAuthError) as caught:
        client.post_events(PIXEL, TOKEN, {"data": []})
    assert_no_token(caught.value)
    assert caught.value.error_data == "token=***"


def test_error_without_envelope_falls_back_to_http_status() -> None:
    client = _mock_client(lambda request: httpx.Response(429, json={"detail": "slow down"}))
    with client, pytest.raises(GraphRateLimitError) as caught:
        client.post_events(PIXEL, TOKEN, {"data": []})
    assert caught.value.code is None


def test_client_refuses_to_build_bad_requests() -> None:
    with GraphClient(transport=httpx.MockTransport(lambda r: httpx.Response(200, json={}))) as client:
        with pytest.raises(ValueError):
            client.post_events(PIXEL, "", {"data": []})
        with pytest.raises(ValueError):
            client.post_events("12/../34", TOKEN, {"data": []})
        with pytest.raises(ValueError):
            client.request("GET", "me?access_token=x", access_token=TOKEN)
        with pytest.raises(ValueError):
            client.request("GET", "me", access_token=TOKEN, params={"access_token": "other"})
    with pytest.raises(ValueError):
        GraphClient(version="26.0")
