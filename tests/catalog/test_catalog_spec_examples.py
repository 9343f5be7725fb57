"""Meta's worked catalog examples (examples/catalog-doc-examples.json) against the pure core.

The sandbox side of the same examples (answers, warnings, status polling) is in
tests/sandbox/test_sandbox_catalog.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from metabridge.catalog import (
    PRODUCT_ITEM_FIELDS,
    ProductItem,
    delete_request,
    items_batch_body,
    matches,
    upsert_request,
    validate_filter,
    validate_product,
    value_problem,
)

#: Recorded from ../shared/meta-spec/examples (checked below whenever the shared folder is beside us).
EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "meta-spec" / "catalog-doc-examples.json"
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "meta-spec" / "examples" / EXAMPLES.name

CASES: list[dict[str, Any]] = json.loads(EXAMPLES.read_text())


def by_path(path: str, method: str = "POST") -> list[dict[str, Any]]:
    return [c for c in CASES if c["input"].get("path") == path and c["input"]["method"] == method]


def batch_case(method: str) -> dict[str, Any]:
    cases = by_path("/{catalog_id}/items_batch")
    [case] = [c for c in cases if c["input"]["requests"][0]["method"] == method]
    return case


@pytest.mark.skipif(not SHARED.is_file(), reason="../shared/meta-spec is not beside this checkout")
def test_fixture_matches_the_spec() -> None:
    assert EXAMPLES.read_bytes() == SHARED.read_bytes()


def test_items_batch_update_example_fields_follow_the_rule_table() -> None:
    case = batch_case("UPDATE")
    data = case["input"]["requests"][0]["data"]
    unknown = [name for name in data if name not in PRODUCT_ITEM_FIELDS]
    assert unknown == ["unknown_field"]  # the one Meta warns about
    for name, value in data.items():
        if name in PRODUCT_ITEM_FIELDS:
            assert value_problem(PRODUCT_ITEM_FIELDS[name], value) is None, name
    # As a shop product (with the image the abridged example leaves out) it becomes the same data, and
    # the unknown field is a warning, as in Meta's answer.
    result = validate_product({**data, "image_link": "http://example.com/product.jpg"})
    assert isinstance(result, ProductItem), result
    assert result.data == {**data, "image_link": "http://example.com/product.jpg"}
    assert [w.field for w in result.warnings] == ["unknown_field"]
    [status] = case["expected"]["validation_status"]
    assert "Unrecognised field" in status["warnings"][0]["message"]
    assert "Unrecognised field" in result.warnings[0].message
    body = items_batch_body([upsert_request(result)])
    assert body["item_type"] == case["input"]["item_type"]
    assert body["requests"][0]["method"] == "UPDATE"


def test_items_batch_delete_example() -> None:
    case = batch_case("DELETE")
    assert [delete_request("sku-123")] == case["input"]["requests"]


@pytest.mark.parametrize("case", by_path("/{catalog_id}/product_sets"), ids=lambda c: c["input"]["name"])
def test_product_set_example_filters_are_valid(case: dict[str, Any]) -> None:
    assert validate_filter(case["input"]["filter"]) == []
    assert validate_filter(json.dumps(case["input"]["filter"])) == []  # the form field is JSON text


FILTER_CASES = [c for c in CASES if "path" not in c["input"]]


@pytest.mark.parametrize("case", FILTER_CASES, ids=[json.dumps(c["input"]["filter"]) for c in FILTER_CASES])
def test_filter_examples(case: dict[str, Any]) -> None:
    assert validate_filter(case["input"]["filter"]) == []
    if case["expected"] == "set containing all catalog items":
        assert matches(case["input"]["filter"], {"id": "anything"})
        assert matches(case["input"]["filter"], {})


def test_the_or_example_evaluates_like_its_words() -> None:
    [case] = [c for c in FILTER_CASES if "or" in c["input"]["filter"]]
    rule = case["input"]["filter"]
    assert matches(rule, {"id": "1", "item_group_id": "group_1"})
    assert matches(rule, {"id": "2", "product_type": "Men > T-Shirts"})
    assert not matches(rule, {"id": "3", "item_group_id": "group_2", "product_type": "Shoes"})
