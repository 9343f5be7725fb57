"""The declarative Graph error table: every documented code lands in the right retry class."""

from __future__ import annotations

import pytest

from metabridge.graph import ERROR_TABLE, ErrorClass, classify, lookup
from metabridge.graph.errors import (
    GraphAuthError,
    GraphInvalidRequestError,
    GraphRateLimitError,
    GraphTransientError,
    GraphUnknownError,
    error_type_for_class,
)

T, R, A, I, U = (
    ErrorClass.TRANSIENT,
    ErrorClass.RATE_LIMITED,
    ErrorClass.AUTH,
    ErrorClass.INVALID,
    ErrorClass.UNKNOWN,
)

# (code, subcode, http_status, is_transient, expected) — spec conversions-api.md §1.4
CASES: list[tuple[int | None, int | None, int | None, bool, ErrorClass]] = [
    # temporary
    (1, None, 500, True, T),
    (2, None, 503, True, T),
    (21009, None, 500, False, T),
    # throttling (Meta answers 400 + is_transient for these)
    (4, None, 400, True, R),
    (4, 1504022, 400, True, R),
    (4, 1504039, 400, True, R),
    (17, None, 400, True, R),
    (17, 2446079, 400, True, R),
    (32, None, 400, False, R),
    (341, None, 400, False, R),
    (368, None, 400, False, R),
    (613, None, 400, True, R),
    (613, 1487742, 400, True, R),
    (613, 5044001, 400, True, R),
    (80000, None, 400, True, R),
    (80003, None, 400, True, R),
    (80004, None, 400, True, R),
    (80009, None, 400, True, R),  # catalog throttled
    (80014, None, 400, True, R),  # too many items_batch calls to the catalog
    # token / permission
    (190, None, 400, False, A),
    (190, 458, 400, False, A),
    (190, 460, 400, False, A),
    (190, 463, 400, False, A),
    (190, 467, 401, False, A),
    (190, 999999, 400, False, A),  # unknown subcode falls back to the code row
    (102, None, 400, False, A),
    (104, None, 400, False, A),
    (10, None, 403, False, A),
    (200, None, 403, False, A),
    (250, None, 403, False, A),
    (299, None, 400, False, A),
    (3, None, 400, False, A),
    (100, 33, 400, False, A),
    # invalid request
    (100, None, 400, False, I),
    (100, 2804003, 400, False, I),
    (100, 2804009, 400, False, I),
    (100, 2804001, 400, False, I),
    (100, 2804050, 400, False, I),
    (100, 2804036, 400, False, I),
    (100, 2804116, 400, False, I),
    (100, 2804007, 400, False, I),
    (100, 2804016, 400, False, I),
    (100, 2804017, 400, False, I),
    (100, 2804019, 400, False, I),
    (100, 2804048, 400, False, I),
    (100, 1234567, 400, False, I),  # any other 100 subcode: still invalid
    (10803, None, 400, False, I),  # duplicate product-set filter: look the set up, do not resend
    (100, None, 500, True, I),  # table row wins over status and is_transient
    # not in the table: HTTP status decides
    (99999, None, 500, False, T),
    (99999, None, 503, False, T),
    (99999, None, 400, True, T),
    (99999, None, 429, False, R),
    (99999, None, 400, False, U),
    (None, None, 502, False, T),
    (None, None, 429, False, R),
    (None, None, 404, False, U),
    (300, None, 400, False, U),  # just past the 200-299 range
    (199, None, 400, False, U),
]


@pytest.mark.parametrize(("code", "subcode", "http_status", "is_transient", "expected"), CASES)
def test_classify(
    code: int | None, subcode: int | None, http_status: int | None, is_transient: bool, expected: ErrorClass
) -> None:
    assert classify(code, subcode, http_status, is_transient) is expected


@pytest.mark.parametrize(
    ("error_class", "retryable"),
    [(T, True), (R, True), (U, True), (A, False), (I, False)],
)
def test_retryable(error_class: ErrorClass, retryable: bool) -> None:
    assert error_class.retryable is retryable


def test_every_row_is_reachable_and_self_consistent() -> None:
    for rule in ERROR_TABLE:
        code = rule.code.start if isinstance(rule.code, range) else rule.code
        assert lookup(code, rule.subcode) == rule
        assert classify(code, rule.subcode, 400, False) is rule.error_class
        assert rule.reason


def test_every_documented_code_is_in_the_table() -> None:
    codes = {rule.code for rule in ERROR_TABLE if not isinstance(rule.code, range)}
    documented = {
        1,
        2,
        4,
        17,
        32,
        341,
        368,
        613,
        80000,
        80003,
        80004,
        80009,
        80014,
        10803,
        21009,
        10,
        3,
        190,
        102,
        100,
    }
    assert documented <= codes
    assert any(isinstance(rule.code, range) and rule.code == range(200, 300) for rule in ERROR_TABLE)
    subcodes = {(rule.code, rule.subcode) for rule in ERROR_TABLE if rule.subcode is not None}
    for subcode in (
        33,
        2804003,
        2804009,
        2804001,
        2804050,
        2804036,
        2804116,
        2804007,
        2804016,
        2804017,
        2804019,
        2804048,
    ):
        assert (100, subcode) in subcodes


def test_lookup_without_a_code() -> None:
    assert lookup(None) is None
    assert lookup(424242) is None


@pytest.mark.parametrize(
    ("error_class", "exc_type"),
    [
        (T, GraphTransientError),
        (R, GraphRateLimitError),
        (A, GraphAuthError),
        (I, GraphInvalidRequestError),
        (U, GraphUnknownError),
    ],
)
def test_exception_type_per_class(error_class: ErrorClass, exc_type: type) -> None:
    assert error_type_for_class(error_class) is exc_type
