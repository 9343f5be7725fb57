"""Synchronous Graph API client (httpx).

One :class:`GraphClient` per process (or per worker thread pool): it owns an ``httpx.Client`` and its
connection pool. It does not retry: retry policy depends on the error class and belongs to the caller
(the delivery loop), which gets everything it needs from the raised :class:`GraphError`.

Tokens are per call, not per client, because one metabridge instance serves many connections.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

import httpx

from metabridge import __version__
from metabridge.graph.errors import GraphError, GraphTimeoutError, GraphTransportError
from metabridge.graph.redact import install_httpx_log_filter, redact_text
from metabridge.graph.response import GraphResponse
from metabridge.graph.wire import (
    DEFAULT_BASE_URL,
    DEFAULT_VERSION,
    PreparedRequest,
    check_version,
    events_path,
    parse_response,
    prepare_request,
)

__all__ = ["DEFAULT_USER_AGENT", "GraphClient"]

DEFAULT_USER_AGENT = f"metabridge/{__version__}"

log = logging.getLogger(__name__)


class GraphClient:
    """Calls Graph API endpoints and turns Meta's answers into :class:`GraphResponse` or :class:`GraphError`.

    ``base_url`` points at Meta (default) or at the sandbox; ``transport`` lets tests and the in-process
    sandbox plug in (``httpx.MockTransport``, ``httpx.WSGITransport`` …).
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        version: str = DEFAULT_VERSION,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
        user_agent: str = DEFAULT_USER_AGENT,
    ) -> None:
        install_httpx_log_filter()
        self.base_url = base_url.rstrip("/")
        self.version = check_version(version)
        self.user_agent = user_agent
        self.timeout = float(timeout)
        self._http = httpx.Client(transport=transport, timeout=timeout, follow_redirects=False)

    # -- lifecycle -------------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the connection pool. The client cannot be used afterwards."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"GraphClient(base_url={self.base_url!r}, version={self.version!r})"

    # -- calls -----------------------------------------------------------------------------------------
    def post_events(
        self,
        pixel_id: str,
        access_token: str,
        body: bytes | Mapping[str, Any],
        *,
        app_secret: str | None = None,
    ) -> GraphResponse:
        """Send one Conversions API request: ``POST /{version}/{pixel_id}/events``.

        ``body`` is the JSON request body (``{"data": [...], "test_event_code"?, "partner_agent"?}``),
        or those bytes already orjson-encoded by the batcher (sent unchanged, as ``application/json``).
        Returns the answer (``events_received``, ``messages``, ``fbtrace_id``); raises :class:`GraphError`.
        """
        return self.request(
            "POST",
            events_path(pixel_id),
            access_token=access_token,
            app_secret=app_secret,
            json=body,
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        access_token: str,
        app_secret: str | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
    ) -> GraphResponse:
        """Any Graph call: ``path`` is relative to the version (``"act_1/customaudiences"``).

        ``json`` is a JSON value or pre-encoded ``bytes``; ``data`` a form (non-string values are
        JSON-encoded, as Graph expects for fields like ``payload``). The token always goes in the query.
        """
        prepared = prepare_request(
            method,
            self.base_url,
            self.version,
            path,
            access_token=access_token,
            app_secret=app_secret,
            params=params,
            json=json,
            data=data,
            user_agent=self.user_agent,
        )
        return self._send(prepared, secrets=(access_token, app_secret))

    def _send(self, prepared: PreparedRequest, *, secrets: tuple[str | None, ...]) -> GraphResponse:
        safe_url = prepared.redacted_url
        try:
            response = self._http.request(
                prepared.method,
                prepared.url,
                params=prepared.params,
                headers=prepared.headers,
                content=prepared.content,
            )
        except httpx.TimeoutException as exc:
            raise GraphTimeoutError(
                f"timed out: {_describe(exc, secrets)}", method=prepared.method, url=safe_url
            ) from exc
        except httpx.HTTPError as exc:  # connect/read/protocol errors, invalid URL…
            raise GraphTransportError(
                f"transport failure: {_describe(exc, secrets)}", method=prepared.method, url=safe_url
            ) from exc
        try:
            result = parse_response(
                response.status_code,
                response.headers,
                response.content,
                method=prepared.method,
                url=safe_url,
                secrets=secrets,
            )
        except GraphError as exc:
            log.debug("graph call failed: %r", exc)
            raise
        log.debug("graph call %s %s -> %s", prepared.method, safe_url, response.status_code)
        return result


def _describe(exc: BaseException, secrets: tuple[str | None, ...]) -> str:
    """``type: message`` of a transport exception with any secret removed."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return redact_text(text)
