"""Pure request building and response parsing for Graph API calls.

Kept free of any HTTP client so that the sync :class:`~metabridge.graph.client.GraphClient` and a later
async client share one implementation of the things that must not drift: URL layout, where the token
goes, the ``appsecret_proof``, body encoding, and how Meta's error envelope becomes an exception.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson

from metabridge.graph.error_table import classify
from metabridge.graph.errors import GraphError, GraphTransportError, error_type_for_class
from metabridge.graph.redact import redact_url, scrub
from metabridge.graph.response import GraphResponse, parse_usage_headers

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_VERSION",
    "FORM_CONTENT_TYPE",
    "JSON_CONTENT_TYPE",
    "PreparedRequest",
    "appsecret_proof",
    "auth_params",
    "build_url",
    "check_version",
    "default_headers",
    "encode_form",
    "encode_json",
    "error_from_body",
    "events_path",
    "parse_response",
    "prepare_request",
]

DEFAULT_BASE_URL = "https://graph.facebook.com"
DEFAULT_VERSION = "v26.0"
JSON_CONTENT_TYPE = "application/json"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"

_VERSION_RE = re.compile(r"^v\d+\.\d+\Z")
_NODE_ID_RE = re.compile(r"^[A-Za-z0-9_:-]+\Z")


def appsecret_proof(access_token: str, app_secret: str) -> str:
    """Hex HMAC-SHA256 of the access token keyed with the app secret (Graph "appsecret_proof")."""
    return hmac.new(app_secret.encode("utf-8"), access_token.encode("utf-8"), hashlib.sha256).hexdigest()


def auth_params(access_token: str, app_secret: str | None = None) -> dict[str, str]:
    """The query parameters that authenticate a call: ``access_token`` and, with a secret, the proof."""
    if not access_token:
        raise ValueError("access_token must be a non-empty string")
    params = {"access_token": access_token}
    if app_secret:
        params["appsecret_proof"] = appsecret_proof(access_token, app_secret)
    return params


def check_version(version: str) -> str:
    """``version`` if it looks like a Graph version (``v26.0``), else ``ValueError``."""
    if not _VERSION_RE.match(version):
        raise ValueError(f"Graph version must look like 'v26.0', got {version!r}")
    return version


def build_url(base_url: str, version: str, path: str) -> str:
    """``{base_url}/{version}/{path}`` with exactly one slash between parts.

    ``path`` is relative to the version (``"123/events"`` or ``"/123/events"``). It must not carry a
    query string: parameters go through :func:`prepare_request` so the token is never hand-built into a URL.
    """
    check_version(version)
    if "?" in path or "#" in path:
        raise ValueError("path must not contain a query string or fragment; pass params instead")
    return f"{base_url.rstrip('/')}/{version}/{path.lstrip('/')}"


def events_path(pixel_id: str) -> str:
    """The Conversions API edge for a pixel or dataset id."""
    pixel_id = str(pixel_id).strip()
    if not pixel_id or not _NODE_ID_RE.match(pixel_id):
        raise ValueError(f"invalid pixel/dataset id {pixel_id!r}")
    return f"{pixel_id}/events"


def default_headers(user_agent: str) -> dict[str, str]:
    """Headers sent on every call."""
    return {"User-Agent": user_agent, "Accept": JSON_CONTENT_TYPE}


def encode_json(body: Any) -> bytes:
    """JSON bytes for a body; ``bytes`` are taken as already encoded (e.g. by the batcher)."""
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body)
    return orjson.dumps(body)


def _param_value(value: Any) -> str:
    """Graph form/query values: strings as is, booleans as true/false, everything else as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return orjson.dumps(value).decode("utf-8")


def encode_form(data: Mapping[str, Any]) -> bytes:
    """``application/x-www-form-urlencoded`` bytes; non-string values JSON-encoded as Graph expects."""
    return urlencode([(k, _param_value(v)) for k, v in data.items() if v is not None]).encode("ascii")


@dataclass(frozen=True, slots=True)
class PreparedRequest:
    """Everything an HTTP client needs to send one Graph call.

    ``url`` has no query string; ``params`` holds the token. Never log ``params``: use
    :attr:`redacted_url`.
    """

    method: str
    url: str
    params: tuple[tuple[str, str], ...]
    headers: Mapping[str, str]
    content: bytes | None

    @property
    def redacted_url(self) -> str:
        """The full URL with secrets replaced by ``***``: safe for logs and exceptions."""
        if not self.params:
            return self.url
        return redact_url(f"{self.url}?{urlencode(self.params)}")


def prepare_request(
    method: str,
    base_url: str,
    version: str,
    path: str,
    *,
    access_token: str,
    app_secret: str | None = None,
    params: Mapping[str, Any] | None = None,
    json: Any = None,
    data: Mapping[str, Any] | None = None,
    user_agent: str,
) -> PreparedRequest:
    """Build a Graph call. ``json`` (a value, or pre-encoded ``bytes``) and ``data`` (form) exclude each other."""
    if json is not None and data is not None:
        raise ValueError("pass either json or data, not both")
    query: list[tuple[str, str]] = []
    if params:
        for key, value in params.items():
            if key in ("access_token", "appsecret_proof"):
                raise ValueError(f"pass {key} through the dedicated arguments, not params")
            if value is not None:
                query.append((key, _param_value(value)))
    query.extend(auth_params(access_token, app_secret).items())
    headers = default_headers(user_agent)
    content: bytes | None = None
    if json is not None:
        content = encode_json(json)
        headers["Content-Type"] = JSON_CONTENT_TYPE
    elif data is not None:
        content = encode_form(data)
        headers["Content-Type"] = FORM_CONTENT_TYPE
    return PreparedRequest(
        method=method.upper(),
        url=build_url(base_url, version, path),
        params=tuple(query),
        headers=headers,
        content=content,
    )


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _as_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def error_from_body(
    status_code: int,
    body: Any,
    *,
    method: str | None = None,
    url: str | None = None,
    secrets: Iterable[str | None] = (),
) -> GraphError:
    """The exception for an error answer; ``body`` is the parsed JSON (Meta's envelope, spec §1.3).

    ``url`` must already be redacted; ``secrets`` (the token) are scrubbed from every copied string.
    """
    secrets = tuple(secrets)
    body = scrub(body, secrets)
    envelope = body.get("error") if isinstance(body, dict) else None
    if not isinstance(envelope, dict):
        message = (
            envelope if isinstance(envelope, str) else f"HTTP {status_code} without a Graph error envelope"
        )
        envelope = {}
    else:
        message = _as_str(envelope.get("message")) or "Graph API error"
    code = _as_int(envelope.get("code"))
    subcode = _as_int(envelope.get("error_subcode"))
    is_transient = envelope.get("is_transient") is True
    error_class = classify(code, subcode, status_code, is_transient)
    exc_type = error_type_for_class(error_class)
    return exc_type(
        message,
        http_status=status_code,
        code=code,
        subcode=subcode,
        type=_as_str(envelope.get("type")),
        user_title=_as_str(envelope.get("error_user_title")),
        user_msg=_as_str(envelope.get("error_user_msg")),
        is_transient=is_transient,
        fbtrace_id=_as_str(envelope.get("fbtrace_id")),
        error_data=envelope.get("error_data"),
        body=body if isinstance(body, dict) else None,
        method=method,
        url=url,
    )


def parse_response(
    status_code: int,
    headers: Mapping[str, str],
    content: bytes,
    *,
    method: str | None = None,
    url: str | None = None,
    secrets: Iterable[str | None] = (),
) -> GraphResponse:
    """Turn raw HTTP results into a :class:`GraphResponse`, or raise the matching :class:`GraphError`.

    A body that is not a JSON object (HTML error page from a proxy/CDN, truncated body) raises
    :class:`GraphTransportError`: it is not an answer from Graph and says nothing about the request.
    """
    try:
        body = orjson.loads(content) if content else None
    except orjson.JSONDecodeError:
        body = None
        parsed = False
    else:
        parsed = True
    ok = 200 <= status_code < 300
    if not parsed or not isinstance(body, dict):
        content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "unknown")
        what = "non-JSON" if not parsed else "empty" if body is None else "non-object JSON"
        raise GraphTransportError(
            f"HTTP {status_code} with a {what} body (content-type {content_type}); not a Graph answer",
            http_status=status_code,
            method=method,
            url=url,
            usage=parse_usage_headers(headers),
        )
    usage = parse_usage_headers(headers)
    if not ok or isinstance(body.get("error"), dict):
        exc = error_from_body(status_code, body, method=method, url=url, secrets=secrets)
        exc.usage = usage
        raise exc
    return GraphResponse(status_code=status_code, body=body, headers=headers, usage=usage)
