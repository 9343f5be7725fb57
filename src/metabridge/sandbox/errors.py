"""Graph error answers, built the way Meta builds them (spec §1.3).

Every error the sandbox returns goes through :func:`graph_error`, so the envelope is identical whether it
comes from validation, token checks or an injected fault::

    {"error": {"message", "type", "code", "error_subcode", "is_transient",
               "error_user_title", "error_user_msg", "error_data"?, "fbtrace_id"}}

``error_data`` is a sandbox extension for validation errors: ``{"event_index": i, "field": "..."}`` on the
Conversions API, ``{"field": "<param path>"}`` (``name``, ``payload.schema``, ``session.batch_seq``...) on
the audience endpoints.
HTTP statuses follow what Meta sends: 400 for parameter, token and throttling errors (throttling with
``is_transient: true``), 500/503 for codes 1/2.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = [
    "CANONICAL_ERRORS",
    "CanonicalError",
    "GraphAPIException",
    "appsecret_proof_invalid",
    "appsecret_proof_required",
    "graph_error",
    "invalid_parameter",
    "invalid_token",
    "missing_token",
    "new_fbtrace_id",
    "unknown_object",
]


class CanonicalError(NamedTuple):
    """How Meta answers a code by default: HTTP status, ``is_transient``, message, ``type``."""

    http_status: int
    is_transient: bool
    message: str
    type: str = "OAuthException"


#: Defaults used when a fault or a builder gives only a code. Messages are Meta's English texts.
CANONICAL_ERRORS: dict[int, CanonicalError] = {
    1: CanonicalError(500, True, "An unknown error occurred"),
    2: CanonicalError(503, True, "An unexpected error has occurred. Please retry your request later."),
    3: CanonicalError(400, False, "(#3) Application does not have the capability to make this API call."),
    4: CanonicalError(400, True, "(#4) Application request limit reached"),
    10: CanonicalError(400, False, "(#10) Application does not have permission for this action"),
    17: CanonicalError(400, True, "(#17) User request limit reached"),
    32: CanonicalError(400, True, "(#32) Page request limit reached"),
    100: CanonicalError(400, False, "Invalid parameter"),
    102: CanonicalError(400, False, "Session key invalid or no longer valid"),
    104: CanonicalError(400, False, "An access token is required to request this resource."),
    190: CanonicalError(400, False, "Error validating access token: the access token is invalid."),
    200: CanonicalError(403, False, "(#200) Permissions error"),
    341: CanonicalError(400, True, "(#341) Application limit reached"),
    368: CanonicalError(
        400, True, "(#368) The action attempted has been deemed abusive or is otherwise disallowed"
    ),
    613: CanonicalError(400, True, "(#613) Calls to this api have exceeded the rate limit."),
    2650: CanonicalError(400, False, "(#2650) Failed to update the custom audience"),
    2654: CanonicalError(400, False, "(#2654) Failed to create custom audience"),
    2656: CanonicalError(
        400, False, "(#2656) The custom audience cannot be deleted while lookalike audiences use it"
    ),
    21009: CanonicalError(503, True, "The data set upload is temporarily not ready."),
    80000: CanonicalError(
        400, True, "(#80000) There have been too many calls from this ad-account. Wait a bit and try again."
    ),
    80003: CanonicalError(
        400,
        True,
        "(#80003) There have been too many calls to this ad-account. Wait a bit and try again. For more "
        "info, please refer to https://developers.facebook.com/docs/graph-api/overview/rate-limiting"
        "#custom-audience.",
    ),
    80004: CanonicalError(
        400, True, "(#80004) There have been too many calls to this ad-account. Wait a bit and try again."
    ),
    # Catalog (audiences-and-catalog.md §6.1, §6.3)
    80009: CanonicalError(
        400, True,
        "(#80009) There have been too many calls to this Catalog account. Wait a bit and try again.",
    ),
    80014: CanonicalError(
        400, True, "(#80014) There have been too many calls for the batch uploads to this catalog account. "
        "Wait a bit and try again.",
    ),
    10803: CanonicalError(400, False, "(#10803) Product set with the same filters already exists"),
}

_FALLBACK = CanonicalError(400, False, "An error occurred")


def new_fbtrace_id() -> str:
    """A random id shaped like Meta's (23 url-safe characters)."""
    return secrets.token_urlsafe(18)[:23]


@dataclass(eq=False)
class GraphAPIException(Exception):
    """Raised inside the sandbox to answer with a Graph error; the app's handler renders it."""

    http_status: int
    code: int
    message: str
    subcode: int | None = None
    type: str = "OAuthException"
    is_transient: bool = False
    user_title: str | None = None
    user_msg: str | None = None
    error_data: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def envelope(self, fbtrace_id: str) -> dict[str, Any]:
        """The JSON body Meta would send."""
        error: dict[str, Any] = {
            "message": self.message,
            "type": self.type,
            "code": self.code,
        }
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        error["is_transient"] = self.is_transient
        if self.user_title is not None:
            error["error_user_title"] = self.user_title
        if self.user_msg is not None:
            error["error_user_msg"] = self.user_msg
        if self.error_data is not None:
            error["error_data"] = self.error_data
        error["fbtrace_id"] = fbtrace_id
        return {"error": error}


def graph_error(
    code: int,
    subcode: int | None = None,
    message: str | None = None,
    *,
    http_status: int | None = None,
    is_transient: bool | None = None,
    type: str | None = None,
    user_title: str | None = None,
    user_msg: str | None = None,
    error_data: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> GraphAPIException:
    """A Graph error for ``code``; anything not given comes from :data:`CANONICAL_ERRORS`."""
    canonical = CANONICAL_ERRORS.get(code)
    if canonical is None and 200 <= code < 300:
        canonical = CANONICAL_ERRORS[200]
    canonical = canonical or _FALLBACK
    return GraphAPIException(
        http_status=http_status if http_status is not None else canonical.http_status,
        code=code,
        message=message if message is not None else canonical.message,
        subcode=subcode,
        type=type or canonical.type,
        is_transient=canonical.is_transient if is_transient is None else is_transient,
        user_title=user_title,
        user_msg=user_msg,
        error_data=error_data,
        headers=dict(headers or {}),
    )


def missing_token() -> GraphAPIException:
    """No token anywhere in the request: Graph answers 104 (an OAuthException, HTTP 400)."""
    return graph_error(104)


def invalid_token() -> GraphAPIException:
    """A token the sandbox was told is revoked: 190/467 "invalid access token", HTTP 400."""
    return graph_error(
        190,
        467,
        "Error validating access token: The session has been invalidated because the user changed "
        "their password or Facebook has changed the session for security reasons.",
        headers={
            "WWW-Authenticate": 'OAuth "Facebook Platform" "invalid_token" "Error validating access token"'
        },
    )


def unknown_object(object_id: str, method: str) -> GraphAPIException:
    """100/33: the node does not exist or the token cannot see it (bad pixel id)."""
    return graph_error(
        100,
        33,
        f"Unsupported {method.lower()} request. Object with ID '{object_id}' does not exist, cannot be "
        "loaded due to missing permissions, or does not support this operation. Please read the Graph "
        "API documentation at https://developers.facebook.com/docs/graph-api",
        type="GraphMethodException",
    )


def invalid_parameter(
    user_title: str,
    user_msg: str,
    *,
    subcode: int | None = None,
    event_index: int | None = None,
    field: str | None = None,
    message: str = "Invalid parameter",
) -> GraphAPIException:
    """A code-100 rejection of the request's content; ``error_data`` says where when known."""
    error_data: dict[str, Any] | None = None
    if event_index is not None or field is not None:
        error_data = {"event_index": event_index, "field": field}
    return graph_error(
        100,
        subcode,
        message,
        user_title=user_title,
        user_msg=user_msg,
        error_data=error_data,
        is_transient=False,
    )


def appsecret_proof_required() -> GraphAPIException:
    """The sandbox has an app secret configured and the call carried no ``appsecret_proof``."""
    return graph_error(
        100,
        None,
        "API calls from the server require an appsecret_proof argument",
        type="GraphMethodException",
    )


def appsecret_proof_invalid() -> GraphAPIException:
    """The ``appsecret_proof`` does not match HMAC-SHA256(app secret, token)."""
    return graph_error(
        100, None, "Invalid appsecret_proof provided in the API argument", type="GraphMethodException"
    )
