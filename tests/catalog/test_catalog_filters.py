"""Product-set filters (§6.3): the grammar, table-driven, and the evaluator the sandbox counts with."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from metabridge.catalog import (
    FILTER_FIELDS,
    MAX_FILTER_BYTES,
    OPERATORS,
    canonical_filter,
    matches,
    retailer_id_filter,
    validate_filter,
)

VALID: list[Any] = [
    {},
    "",
    None,
    "{}",
    {"retailer_id": {"is_any": ["pid1", "pid2"]}},
    {"custom_label_0": {"eq": "A"}},
    {"product_type": {"i_contains": "shirt"}},
    {"category": {"eq": "Luggage & Bags"}},
    {"category": {"starts_with": "Apparel"}},
    {"or": [{"retailer_product_group_id": {"eq": "group_1"}}, {"product_type": {"i_contains": "shirt"}}]},
    {"and": [{"price_amount": {"gte": 1000}}, {"price_amount": {"lt": 2000.5}}]},
    {"and": [
        {"brand": {"neq": "Acme"}},
        {"or": [{"color": {"contains": "red"}}, {"size": {"is_not_any": ["S"]}}]},
    ]},
    {"availability": {"eq": "in stock"}},
    {"availability": {"is_any": ["in stock", "available for order"]}},
    {"brand": {"EQ": "Acme"}},  # operators are case-insensitive
    {"brand": {"I_CONTAINS": "acme"}},
    {"internal_label": {"is_any": ["sale"]}},
    '{"brand": {"eq": "Acme"}}',  # JSON text, as forms send it
]


@pytest.mark.parametrize("value", VALID)
def test_valid_filters(value: Any) -> None:
    assert validate_filter(value) == []


# (filter, expected {path: message fragment})
INVALID: list[tuple[Any, dict[str, str]]] = [
    ("{not json", {"filter": "is not valid JSON"}),
    ([], {"filter": "must be a JSON object"}),
    ("[1]", {"filter": "must be a JSON object"}),
    (42, {"filter": "must be a JSON object"}),
    ({"brand": {"eq": "A"}, "color": {"eq": "B"}}, {"filter": "exactly one key"}),
    ({"brand": {"like": "A"}}, {"filter.brand.like": "unknown operator 'like'"}),
    ({"shoe_size": {"eq": "A"}}, {"filter.shoe_size": "unknown filter field 'shoe_size'"}),
    ({"Brand": {"eq": "A"}}, {"filter.Brand": "unknown filter field"}),
    ({"brand": "Acme"}, {"filter.brand": "exactly one operator"}),
    ({"brand": {}}, {"filter.brand": "exactly one operator"}),
    ({"brand": {"eq": "A", "neq": "B"}}, {"filter.brand": "exactly one operator"}),
    ({"price_amount": {"gt": "1000"}}, {"filter.price_amount.gt": "gt takes a number"}),
    ({"price_amount": {"lte": True}}, {"filter.price_amount.lte": "lte takes a number"}),
    ({"brand": {"eq": ["A"]}}, {"filter.brand.eq": "eq takes a string or a number"}),
    ({"brand": {"eq": None}}, {"filter.brand.eq": "eq takes a string or a number"}),
    ({"brand": {"contains": 5}}, {"filter.brand.contains": "contains takes a string"}),
    ({"retailer_id": {"is_any": "pid1"}}, {"filter.retailer_id.is_any": "is_any takes a non-empty list"}),
    ({"retailer_id": {"is_any": []}}, {"filter.retailer_id.is_any": "is_any takes a non-empty list"}),
    ({"retailer_id": {"is_not_any": [{"a": 1}]}}, {"filter.retailer_id.is_not_any": "non-empty list"}),
    ({"availability": {"contains": "stock"}}, {"filter.availability.contains": "use eq or is_any"}),
    ({"condition": {"i_not_contains": "used"}}, {"filter.condition.i_not_contains": "use eq or is_any"}),
    ({"brand": {"starts_with": "Ac"}}, {"filter.brand.starts_with": "category only"}),
    ({"custom_label_1": {"eq": "été"}}, {"filter.custom_label_1.eq": "ASCII"}),
    ({"and": []}, {"filter.and": "non-empty list of filters"}),
    ({"or": {"brand": {"eq": "A"}}}, {"filter.or": "non-empty list of filters"}),
    ({"not": [{"brand": {"eq": "A"}}]}, {"filter.not": "unknown filter field 'not'"}),
    (
        {"or": [{"brand": {"eq": "A"}}, {"and": [{"color": {"bad": 1}}, {"nope": {"eq": 1}}]}]},
        {
            "filter.or[1].and[0].color.bad": "unknown operator",
            "filter.or[1].and[1].nope": "unknown filter field",
        },
    ),
]


@pytest.mark.parametrize(("value", "expected"), INVALID)
def test_invalid_filters_name_the_path_and_rule(value: Any, expected: dict[str, str]) -> None:
    errors = validate_filter(value)
    assert [e.field for e in errors] == list(expected)
    for error in errors:
        assert expected[error.field] in error.message


def test_every_operator_and_field_is_accepted_somewhere() -> None:
    samples = {"NUMBER": 1, "TEXT": "x", "SCALAR": "x", "LIST": ["x"]}
    for op in OPERATORS.values():
        field = "category" if op.name == "starts_with" else "product_type"
        assert validate_filter({field: {op.name: samples[op.value.name]}}) == [], op
    for name in FILTER_FIELDS:
        assert validate_filter({name: {"is_any": ["x"]}}) == [], name


def test_the_500_kib_limit() -> None:
    def with_ids(n: int) -> dict[str, Any]:
        return {"retailer_id": {"is_any": [f"{i:09d}" for i in range(n)]}}

    fits = with_ids((MAX_FILTER_BYTES - 40) // 12)
    assert len(orjson.dumps(fits)) <= MAX_FILTER_BYTES and validate_filter(fits) == []
    too_big = with_ids(MAX_FILTER_BYTES // 12 + 10)
    [error] = validate_filter(too_big)
    assert error.field == "filter" and "500 KiB" in error.message


def test_nesting_is_bounded() -> None:
    node: dict[str, Any] = {"brand": {"eq": "A"}}
    for _ in range(40):
        node = {"and": [node]}
    assert "nests deeper" in validate_filter(node)[0].message


def test_retailer_id_filter() -> None:
    assert retailer_id_filter(["b", "a", "b"]) == {"retailer_id": {"is_any": ["b", "a"]}}
    assert validate_filter(retailer_id_filter(["a"])) == []
    with pytest.raises(ValueError):
        retailer_id_filter([])


def test_canonical_filter_lowercases_operators() -> None:
    assert canonical_filter('{"or": [{"brand": {"EQ": "A"}}]}') == {"or": [{"brand": {"eq": "A"}}]}
    assert canonical_filter("") == {}


# --- evaluation ---------------------------------------------------------------------------------------------
ITEM = {
    "id": "sku-1",
    "item_group_id": "g1",
    "title": "Red Shirt",
    "brand": "Acme",
    "product_type": "Apparel > Shirts",
    "google_product_category": "Apparel & Accessories > Clothing",
    "availability": "in stock",
    "condition": "new",
    "price": "19.99 USD",
    "sale_price": "15 USD",
    "custom_label_0": "summer",
    "internal_label": ["sale", "new-in"],
}

# (filter, matches ITEM)
EVALUATIONS: list[tuple[Any, bool]] = [
    ({}, True),
    ("", True),
    ({"retailer_id": {"is_any": ["sku-1", "sku-2"]}}, True),
    ({"retailer_id": {"is_any": ["sku-2"]}}, False),
    ({"retailer_id": {"is_not_any": ["sku-2"]}}, True),
    ({"retailer_product_group_id": {"eq": "g1"}}, True),
    ({"brand": {"eq": "Acme"}}, True),
    ({"brand": {"eq": "acme"}}, False),
    ({"brand": {"neq": "Acme"}}, False),
    ({"brand": {"EQ": "Acme"}}, True),
    ({"product_type": {"contains": "Shirt"}}, True),
    ({"product_type": {"contains": "shirt"}}, False),
    ({"product_type": {"i_contains": "shirt"}}, True),
    ({"product_type": {"not_contains": "Shirt"}}, False),
    ({"product_type": {"i_not_contains": "shoe"}}, True),
    ({"category": {"starts_with": "Apparel"}}, True),
    ({"name": {"eq": "Red Shirt"}}, True),
    ({"price_amount": {"eq": 1999}}, True),
    ({"price_amount": {"gt": 1999}}, False),
    ({"price_amount": {"gte": 1999}}, True),
    ({"price_amount": {"lt": 2000}}, True),
    ({"price_amount": {"lte": 1998.5}}, False),
    ({"sale_price_amount": {"lt": 1600}}, True),
    ({"currency": {"eq": "USD"}}, True),
    ({"custom_label_0": {"is_any": ["summer", "winter"]}}, True),
    ({"custom_label_1": {"eq": "x"}}, False),  # missing field: no positive match
    ({"custom_label_1": {"neq": "x"}}, True),  # ... and every negative one
    ({"internal_label": {"eq": "sale"}}, True),  # list field: any element
    ({"internal_label": {"is_not_any": ["sale"]}}, False),
    ({"visibility": {"eq": "published"}}, True),
    ({"product_item_id": {"eq": "123"}}, False),
    ({"and": [{"brand": {"eq": "Acme"}}, {"condition": {"eq": "new"}}]}, True),
    ({"and": [{"brand": {"eq": "Acme"}}, {"condition": {"eq": "used"}}]}, False),
    ({"or": [{"brand": {"eq": "Other"}}, {"condition": {"eq": "new"}}]}, True),
    ({"or": [{"brand": {"eq": "Other"}}, {"and": [{"condition": {"eq": "used"}}]}]}, False),
]


@pytest.mark.parametrize(("value", "expected"), EVALUATIONS)
def test_matches(value: Any, expected: bool) -> None:
    assert validate_filter(value) == []
    assert matches(value, ITEM) is expected
