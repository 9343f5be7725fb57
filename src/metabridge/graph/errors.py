"""Exceptions raised by the Graph API client, and the retry classes they fall into.

The tree mirrors httpx's (one base class, transport failures apart from answers the server gave)::

    GraphError                      every failure; carries Meta's error envelope fields
    ├── GraphTransportError         no usable answer: network failure, HTML/non-JSON body  (TRANSIENT)
    │   └── GraphTimeoutError       the request timed out                                  (TRANSIENT)
    ├── GraphTransientError         Meta answered with a temporary failure (codes 1, 2, 5xx)
    ├── GraphRateLimitError         throttled (4, 17, 32, 613, 80000…): retry with a long backoff
    ├── GraphAuthError              token/permission problem: pause the connection until a person fixes it
    ├── GraphInvalidRequestError    the request or one of its events is bad: never retry it as is
    └── GraphUnknownError           an error the table does not know: treated as transient

Callers decide on ``exc.error_class`` (an :class:`ErrorClass`) rather than on the subclass or, worse, the
message: Meta localizes ``error_user_title``/``error_user_msg`` to the request locale, so only the numeric
``code``/``error_subcode`` are stable (spec §1.3). The subclasses exist for ``except`` clauses.

No exception here ever holds an access token: the client redacts URLs and scrubs the token out of
any text it copies from a response before building one of these.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from metabridge.graph.response import GraphUsage

__all__ = [
    "ErrorClass",
    "GraphAuthError",
    "GraphError",
    "GraphInvalidRequestError",
    "GraphRateLimitError",
    "GraphTimeoutError",
    "GraphTransientError",
    "GraphTransportError",
    "GraphUnknownError",
    "error_type_for_class",
]


class ErrorClass(enum.Enum):
    """What a caller should do about a failed Graph request."""

    TRANSIENT = "transient"
    """Temporary failure: retry with exponential backoff."""
    RATE_LIMITED = "rate_limited"
    """Throttled: retry, with a long backoff (honour the usage headers' time to regain access)."""
    AUTH = "auth"
    """Token or permission problem: retrying cannot help; pause the connection until a person fixes it."""
    INVALID = "invalid"
    """The request or one of its events is bad: do not retry as is (repair or drop the offending events)."""
    UNKNOWN = "unknown"
    """Not in the table: treated as transient so that a new Meta code never silently drops data."""

    @property
    def retryable(self) -> bool:
        """True when resending the same request later may succeed."""
        return self in (ErrorClass.TRANSIENT, ErrorClass.RATE_LIMITED, ErrorClass.UNKNOWN)


class GraphError(Exception):
    """A Graph API request failed.

    Fields follow Meta's error envelope (spec §1.3); ``body`` is the whole parsed response (or ``None``
    when there was no JSON body). ``error_class`` is looked up in :mod:`metabridge.graph.error_table`
    from the codes, never from the text, unless the subclass fixes it.
    """

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        code: int | None = None,
        subcode: int | None = None,
        type: str | None = None,
        user_title: str | None = None,
        user_msg: str | None = None,
        is_transient: bool = False,
        fbtrace_id: str | None = None,
        error_data: Any = None,
        body: dict[str, Any] | None = None,
        method: str | None = None,
        url: str | None = None,
        usage: GraphUsage | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.code = code
        self.subcode = subcode
        self.type = type
        self.user_title = user_title
        self.user_msg = user_msg
        self.is_transient = is_transient
        self.fbtrace_id = fbtrace_id
        self.error_data = error_data
        self.body = body
        self.method = method
        self.url = url  # always a redacted URL
        self.usage = usage  # rate-limit usage headers of the error answer, when there was one

    @property
    def error_class(self) -> ErrorClass:
        """The retry class of this error, from the declarative error table."""
        from metabridge.graph.error_table import classify  # local: error_table imports this module

        return classify(self.code, self.subcode, self.http_status, self.is_transient)

    @property
    def retryable(self) -> bool:
        """Shortcut for ``self.error_class.retryable``."""
        return self.error_class.retryable

    def __str__(self) -> str:
        parts: list[str] = []
        if self.code is not None:
            parts.append(f"(#{self.code}" + (f"/{self.subcode})" if self.subcode is not None else ")"))
        parts.append(self.message)
        if self.user_title:
            parts.append(f"- {self.user_title}")
        if self.user_msg:
            parts.append(f": {self.user_msg}")
        context = []
        if self.http_status is not None:
            context.append(f"HTTP {self.http_status}")
        if self.fbtrace_id:
            context.append(f"fbtrace_id={self.fbtrace_id}")
        if self.method and self.url:
            context.append(f"{self.method} {self.url}")
        text = " ".join(parts)
        return f"{text} [{', '.join(context)}]" if context else text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(error_class={self.error_class.name}, http_status={self.http_status}, "
            f"code={self.code}, subcode={self.subcode}, fbtrace_id={self.fbtrace_id!r}, "
            f"message={self.message!r}, url={self.url!r})"
        )


class GraphTransportError(GraphError):
    """No usable answer from Graph: connection failure, TLS error, HTML error page, non-JSON body.

    Always TRANSIENT: the request may never have reached Meta, or a proxy/CDN answered for it.
    """

    @property
    def error_class(self) -> ErrorClass:
        return ErrorClass.TRANSIENT


class GraphTimeoutError(GraphTransportError):
    """The request timed out (connect, read, write or pool). Meta may or may not have processed it."""


class GraphTransientError(GraphError):
    """Meta answered with a temporary failure (codes 1, 2, 21009, HTTP 5xx, ``is_transient``)."""


class GraphRateLimitError(GraphError):
    """Meta throttled the call (4, 17, 32, 341, 368, 613, 800xx). Retry later, slowly."""


class GraphAuthError(GraphError):
    """The token is invalid/expired/revoked or lacks permission (190, 102, 104, 10, 200-299, 3, 100/33)."""


class GraphInvalidRequestError(GraphError):
    """Meta rejected the request's content (code 100 and its CAPI subcodes). Retrying it unchanged fails again."""


class GraphUnknownError(GraphError):
    """An error code the table does not know. Treated as transient (see :class:`ErrorClass`)."""


_TYPE_FOR_CLASS: dict[ErrorClass, type[GraphError]] = {
    ErrorClass.TRANSIENT: GraphTransientError,
    ErrorClass.RATE_LIMITED: GraphRateLimitError,
    ErrorClass.AUTH: GraphAuthError,
    ErrorClass.INVALID: GraphInvalidRequestError,
    ErrorClass.UNKNOWN: GraphUnknownError,
}


def error_type_for_class(error_class: ErrorClass) -> type[GraphError]:
    """The exception subclass to raise for an error of ``error_class``."""
    return _TYPE_FOR_CLASS[error_class]
