"""Graph API access: the httpx client, its exceptions and the declarative error table.

Typical use::

    with GraphClient() as graph:
        try:
            answer = graph.post_events(pixel_id, token, {"data": events})
        except GraphError as exc:
            if exc.error_class is ErrorClass.AUTH: ...      # pause the connection
            elif exc.error_class.retryable: ...             # back off and retry
            else: ...                                       # INVALID: repair or drop events
"""

from metabridge.graph.client import DEFAULT_USER_AGENT, GraphClient
from metabridge.graph.error_table import ERROR_TABLE, ErrorRule, classify, lookup
from metabridge.graph.errors import (
    ErrorClass,
    GraphAuthError,
    GraphError,
    GraphInvalidRequestError,
    GraphRateLimitError,
    GraphTimeoutError,
    GraphTransientError,
    GraphTransportError,
    GraphUnknownError,
)
from metabridge.graph.redact import redact_url, scrub
from metabridge.graph.response import GraphResponse, GraphUsage, parse_usage_headers
from metabridge.graph.wire import (
    DEFAULT_BASE_URL,
    DEFAULT_VERSION,
    PreparedRequest,
    appsecret_proof,
    parse_response,
    prepare_request,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_USER_AGENT",
    "DEFAULT_VERSION",
    "ERROR_TABLE",
    "ErrorClass",
    "ErrorRule",
    "GraphAuthError",
    "GraphClient",
    "GraphError",
    "GraphInvalidRequestError",
    "GraphRateLimitError",
    "GraphResponse",
    "GraphTimeoutError",
    "GraphTransientError",
    "GraphTransportError",
    "GraphUnknownError",
    "GraphUsage",
    "PreparedRequest",
    "appsecret_proof",
    "classify",
    "lookup",
    "parse_response",
    "parse_usage_headers",
    "prepare_request",
    "redact_url",
    "scrub",
]
