"""Graph API error classification as data.

Each row says what one Graph ``code`` (optionally narrowed by ``error_subcode``) means for a caller.
The rows come from the Meta facts file ``conversions-api.md`` §1.4 (Meta's "Handling Errors" and
"Marketing API Rate Limiting" pages, the official SDK, RudderStack's and Segment's handlers) and are
kept here as a table so that adding a code is a one-line, reviewable change.

Lookup order in :func:`classify`: the ``(code, subcode)`` row, then the code row (exact or range), then
the HTTP answer itself (5xx or ``is_transient`` → TRANSIENT, 429 → RATE_LIMITED), else UNKNOWN.
The error message is never consulted: Meta localizes it.
"""

from __future__ import annotations

from typing import NamedTuple

from metabridge.graph.errors import ErrorClass

__all__ = ["ERROR_TABLE", "ErrorRule", "classify", "lookup"]

T = ErrorClass.TRANSIENT
R = ErrorClass.RATE_LIMITED
A = ErrorClass.AUTH
I = ErrorClass.INVALID


class ErrorRule(NamedTuple):
    """One row: ``code`` is an int or a ``range`` of codes; ``subcode`` ``None`` matches any subcode."""

    code: int | range
    subcode: int | None
    error_class: ErrorClass
    reason: str


ERROR_TABLE: tuple[ErrorRule, ...] = (
    # --- temporary failures: retry with backoff -------------------------------------------------------
    ErrorRule(1, None, T, "API unknown: possibly temporary downtime"),
    ErrorRule(2, None, T, "API service: temporary downtime"),
    ErrorRule(21009, None, T, "the data set upload is temporarily not ready"),
    # --- throttling: retry with a long backoff --------------------------------------------------------
    ErrorRule(4, None, R, "application request limit reached"),
    ErrorRule(4, 1504022, R, "application request limit reached (insights)"),
    ErrorRule(4, 1504039, R, "application request limit reached (insights)"),
    ErrorRule(17, None, R, "user request limit reached"),
    ErrorRule(17, 2446079, R, "ad account API-level request limit reached"),
    ErrorRule(32, None, R, "page-level request limit reached"),
    ErrorRule(341, None, R, "application limit reached"),
    ErrorRule(368, None, R, "temporarily blocked for policy violation: wait and retry"),
    ErrorRule(613, None, R, "calls to this API have exceeded the rate limit"),
    ErrorRule(613, 1487742, R, "too many calls from this ad account"),
    ErrorRule(613, 5044001, R, "mutation rate (QPS) limit reached"),
    ErrorRule(80000, None, R, "business use case throttling (ads insights)"),
    ErrorRule(80003, None, R, "business use case throttling (custom audience)"),
    ErrorRule(
        80004, None, R, "business use case throttling (ads management): too many calls to this ad account"
    ),
    ErrorRule(80009, None, R, "catalog throttled (batch status, product sets): back off, then resume"),
    ErrorRule(80014, None, R, "too many batch calls to this catalog (Catalog Batch BUC): back off"),
    # --- token / permission: a person must act --------------------------------------------------------
    ErrorRule(190, None, A, "access token invalid or expired"),
    ErrorRule(190, 458, A, "app not installed / not authorized by the user"),
    ErrorRule(190, 459, A, "user checkpointed: must log in to Facebook"),
    ErrorRule(190, 460, A, "password changed: token invalidated"),
    ErrorRule(190, 463, A, "access token expired"),
    ErrorRule(190, 464, A, "unconfirmed user"),
    ErrorRule(190, 467, A, "access token invalid (expired, revoked or malformed)"),
    ErrorRule(190, 492, A, "invalid session (user not an admin of the Page)"),
    ErrorRule(102, None, A, "API session expired"),
    ErrorRule(104, None, A, "an access token is required (none was sent)"),
    ErrorRule(10, None, A, "permission denied"),
    ErrorRule(range(200, 300), None, A, "permission missing or removed"),
    ErrorRule(3, None, A, "capability or permission missing (API method)"),
    ErrorRule(100, 33, A, "object does not exist or the token cannot access it (wrong pixel/dataset id?)"),
    # --- the request itself is bad: do not retry as is ------------------------------------------------
    ErrorRule(100, None, I, "invalid parameter"),
    ErrorRule(100, 2804003, I, "event timestamp too old (more than 7 days; 62 for physical_store)"),
    ErrorRule(100, 2804009, I, "Purchase event without value"),
    ErrorRule(100, 2804001, I, "click id (fbc) incorrectly formatted"),
    ErrorRule(100, 2804050, I, "insufficient customer information (only broad matching keys)"),
    ErrorRule(100, 2804036, I, "invalid lead id"),
    ErrorRule(100, 2804116, I, "WhatsApp business messaging event lacks its business ids"),
    ErrorRule(100, 2804007, I, "Conversions API validation error"),
    ErrorRule(100, 2804016, I, "Conversions API validation error"),
    ErrorRule(100, 2804017, I, "Conversions API validation error"),
    ErrorRule(100, 2804019, I, "Conversions API validation error"),
    ErrorRule(100, 2804048, I, "Conversions API validation error"),
    ErrorRule(100, 2804030, I, "Limited Data Use selection required"),
    ErrorRule(105, None, I, "too many parameters"),
    ErrorRule(194, None, I, "a required parameter is missing"),
    ErrorRule(2635, None, I, "deprecated Graph API version"),
    # --- Custom Audiences (audiences-and-catalog.md §1.2, §2.5, §2.8) ---------------------------------
    ErrorRule(200, 1870090, A, "Custom Audience Terms not accepted: a person must accept them for the ad account"),
    ErrorRule(2655, None, A, "Custom Audience terms of service not accepted"),
    ErrorRule(2663, None, A, "Custom Audience terms of service not accepted"),
    ErrorRule(100, 1713230, I, "audience upload blocked (integrity policy)"),
    ErrorRule(100, 1713231, I, "audience edit blocked (integrity policy)"),
    ErrorRule(100, 1713228, I, "audience edit blocked (integrity policy)"),
    ErrorRule(2650, None, I, "failed to update the custom audience"),
    ErrorRule(2650, 1870145, T, "audience update in progress: wait for it, then retry"),
    ErrorRule(2650, 1870148, T, "replace failed (something went wrong): may retry"),
    ErrorRule(2650, 1870158, I, "replace session timed out: add the rest with /users"),
    ErrorRule(2650, 1870147, I, "replace session must start with batch_seq 1"),
    ErrorRule(2650, 1870159, I, "replace session already finished (last_batch_flag was sent)"),
    ErrorRule(2650, 1870144, I, "audience too large (100M+) to replace: use /users"),
    ErrorRule(2656, None, I, "the audience has lookalikes: it cannot be deleted"),
    # --- Catalog (audiences-and-catalog.md §6.1, §6.3) ---------------------------------------------------
    ErrorRule(10803, None, I, "product set with the same filters already exists: look up the existing set"),
)


def _index(
    rows: tuple[ErrorRule, ...],
) -> tuple[dict[tuple[int, int], ErrorRule], dict[int, ErrorRule], tuple[ErrorRule, ...]]:
    """Split the table into lookup dicts; refuses duplicate rows so the table stays unambiguous."""
    by_pair: dict[tuple[int, int], ErrorRule] = {}
    by_code: dict[int, ErrorRule] = {}
    ranges: list[ErrorRule] = []
    for rule in rows:
        if isinstance(rule.code, range):
            if rule.subcode is not None:
                raise ValueError(f"range rows cannot carry a subcode: {rule}")
            ranges.append(rule)
        elif rule.subcode is None:
            if rule.code in by_code:
                raise ValueError(f"duplicate error table row: {rule}")
            by_code[rule.code] = rule
        else:
            if (rule.code, rule.subcode) in by_pair:
                raise ValueError(f"duplicate error table row: {rule}")
            by_pair[(rule.code, rule.subcode)] = rule
    return by_pair, by_code, tuple(ranges)


_BY_CODE_AND_SUBCODE, _BY_CODE, _RANGES = _index(ERROR_TABLE)


def lookup(code: int | None, subcode: int | None = None) -> ErrorRule | None:
    """The most specific table row for ``code``/``subcode``, or ``None`` when the table has none."""
    if code is None:
        return None
    if subcode is not None:
        rule = _BY_CODE_AND_SUBCODE.get((code, subcode))
        if rule is not None:
            return rule
    rule = _BY_CODE.get(code)
    if rule is not None:
        return rule
    for rule in _RANGES:
        if isinstance(rule.code, range) and code in rule.code:
            return rule
    return None


def classify(
    code: int | None,
    subcode: int | None = None,
    http_status: int | None = None,
    is_transient: bool = False,
) -> ErrorClass:
    """The :class:`ErrorClass` for a Graph error.

    Table rows win over the HTTP status: Meta answers throttling (4, 17, 613) with HTTP 400 and
    ``is_transient: true``, and a 100 stays INVALID whatever the status. Codes the table does not know
    fall back to the HTTP answer, then to UNKNOWN (which callers treat as transient).
    """
    rule = lookup(code, subcode)
    if rule is not None:
        return rule.error_class
    if is_transient or (http_status is not None and http_status >= 500):
        return ErrorClass.TRANSIENT
    if http_status == 429:
        return ErrorClass.RATE_LIMITED
    return ErrorClass.UNKNOWN
