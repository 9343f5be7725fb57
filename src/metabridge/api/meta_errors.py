"""A Graph error met while serving an API call (not in a background sync), as the API's error.

Ad accounts, audiences and catalogs call Meta from their routes (checking an audience, creating one,
listing them, deleting a product set); each answers Meta's refusals with the same status codes, and only
the words about what was refused and what a person must do differ.
"""

from __future__ import annotations

from collections.abc import Callable

from metabridge.api.errors import ApiError
from metabridge.delivery.report import error_detail
from metabridge.graph import ErrorClass, GraphError
from metabridge.timeutil import now_ms

__all__ = ["graph_failure"]


def graph_failure(exc: GraphError, doing: str, *, throttled: str,
                  needs_person: Callable[[GraphError], str]) -> ApiError:
    """The API error for ``exc``, met while ``doing``: 409 needs a person (token, permission, terms),
    429 rate-limited (``throttled`` names what Meta limits), 422 Meta rejected the request, 502 otherwise.

    ``needs_person`` words what the person must do; it is only called for an AUTH-class error.
    """
    detail = error_detail(exc, now_ms())
    if exc.error_class is ErrorClass.AUTH:
        return ApiError(409, f"{doing}: {needs_person(exc)}", reason="needs_person", meta_error=detail)
    if exc.error_class is ErrorClass.RATE_LIMITED:
        return ApiError(429, f"{doing}: Meta rate-limits {throttled}; try again later", meta_error=detail)
    if exc.error_class is ErrorClass.INVALID:
        return ApiError(422, f"{doing}: Meta rejected the request ({exc})", meta_error=detail)
    return ApiError(502, f"{doing}: Meta could not answer ({exc})", meta_error=detail)
