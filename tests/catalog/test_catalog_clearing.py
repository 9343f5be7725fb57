"""Emptying the optional fields a product dropped since Meta confirmed it (§6.1 UPDATE merges, §6.2 ``[]``)."""

from __future__ import annotations

from typing import Any

import pytest

from metabridge.catalog import (
    PRODUCT_ITEM_FIELDS,
    REQUIRED_FIELDS,
    clear_dropped,
    cleared_value,
    held_fields,
    merge_held,
    validate_product,
)
from metabridge.catalog.products import ProductItem
from metabridge.sandbox.validation.catalog import check_item

BASE: dict[str, Any] = {
    "id": "sku-1", "title": "Belt", "description": "A belt.", "availability": "in stock", "condition": "new",
    "price": "10 EUR", "link": "https://s.example/p", "image_link": "https://s.example/i.jpg", "brand": "Acme",
}


#: One row per kind of the field table (and per array flag), with Meta's value that removes such a field.
CLEARED_BY_KIND = [
    ("sale_price", ""),  # PRICE
    ("sale_price_effective_date", ""),  # TEXT
    ("custom_label_0", ""),  # TEXT with a length limit
    ("custom_number_3", ""),  # COUNT
    ("mobile_link", ""),  # URL
    ("image_link", ""),  # URL (the item carries image instead)
    ("additional_image_link", []),  # URL_LIST
    ("internal_label", []),  # TEXT_LIST
    ("image", []),  # IMAGES
    ("video", []),  # ANY, an array per Meta (§6.2: "video: []")
    ("shipping", []),  # ANY, "array of objects"
    ("applink", ""),  # ANY, not documented as an array
    ("material_grade", ""),  # not in the table: a custom field
]  # fmt: skip


@pytest.mark.parametrize(("name", "cleared"), CLEARED_BY_KIND)
def test_cleared_value_by_the_kind_in_the_field_table(name: str, cleared: Any) -> None:
    assert cleared_value(name) == cleared


def test_every_kind_in_the_field_table_has_a_clearing_row() -> None:
    """A kind of optional field added to the table (or the array flag on a kind not covered yet) needs its
    row above, which says by Meta's documentation how such a field is removed. (Required fields are never
    emptied: see test_clear_dropped.)"""
    rows = [PRODUCT_ITEM_FIELDS[name] for name, _ in CLEARED_BY_KIND if name in PRODUCT_ITEM_FIELDS]
    optional = [rule for name, rule in PRODUCT_ITEM_FIELDS.items() if name not in REQUIRED_FIELDS]
    assert {(r.kind, r.array) for r in optional} - {(r.kind, r.array) for r in rows} == set()


def test_held_fields_are_the_optional_fields_sorted() -> None:
    data = {**BASE, "sale_price": "8 EUR", "custom_label_0": "summer", "additional_image_link": ["https://s.example/2"]}
    assert held_fields(data) == ["additional_image_link", "custom_label_0", "image_link", "sale_price"]
    assert held_fields({name: "x" for name in REQUIRED_FIELDS}) == []


@pytest.mark.parametrize(
    ("new", "held", "expected_extra"),
    [
        ({}, None, {}),  # Meta holds nothing confirmed (a create): nothing to empty
        ({}, [], {}),
        ({}, ["image_link"], {}),  # still there
        ({"sale_price": "8 EUR"}, ["image_link", "sale_price"], {}),  # kept, with a new value or not
        ({}, ["image_link", "sale_price", "custom_label_0"], {"sale_price": "", "custom_label_0": ""}),
        ({}, ["additional_image_link", "image_link"], {"additional_image_link": []}),
        ({}, ["image_link", "video", "x_custom"], {"video": [], "x_custom": ""}),
        ({"custom_label_1": "new"}, ["custom_label_0", "image_link"], {"custom_label_0": ""}),  # renamed label
        ({}, ["image_link", "title", "price"], {}),  # required fields are never emptied
    ],
)  # fmt: skip
def test_clear_dropped(new: dict[str, Any], held: list[str] | None, expected_extra: dict[str, Any]) -> None:
    data = {**BASE, **new}
    update = clear_dropped(data, held)
    assert update == {**data, **expected_extra}
    assert data == {**BASE, **new}  # the product's own data is not touched


@pytest.mark.parametrize(
    ("held", "merged"),
    [
        ((None, None), None),  # nothing confirmed, nothing unsettled: nothing to empty
        ((["sale_price"], None), ["sale_price"]),
        ((None, []), []),  # an abandoned DELETE: unsettled, no field
        ((["image_link", "sale_price"], ["custom_label_0", "sale_price"]), ["custom_label_0", "image_link", "sale_price"]),
    ],
)  # fmt: skip
def test_merge_held_is_the_sorted_union_of_what_meta_holds_or_may_hold(
    held: tuple[list[str] | None, ...], merged: list[str] | None
) -> None:
    assert merge_held(*held) == merged


def test_an_item_moving_from_image_to_image_link_drops_image_with_an_empty_array() -> None:
    before = {**{k: v for k, v in BASE.items() if k != "image_link"}, "image": [{"url": "https://s.example/a.jpg"}]}
    update = clear_dropped(BASE, held_fields(before))
    assert update == {**BASE, "image": []}


def test_the_update_passes_meta_items_batch_rules() -> None:
    """What metabridge sends for a product that lost fields passes the items_batch rules (the sandbox's
    check, on the same field table): an empty optional field is neither an error nor a warning."""
    old = validate_product({**BASE, "sale_price": "8 EUR", "custom_label_0": "summer",
                            "additional_image_links": ["https://s.example/2.jpg"]})
    new = validate_product(BASE)
    assert isinstance(old, ProductItem) and isinstance(new, ProductItem)
    update = clear_dropped(new.data, held_fields(old.data))
    assert update == {**new.data, "sale_price": "", "custom_label_0": "", "additional_image_link": []}
    for exists in (True, False):  # an existing item, and one that a lost Meta item makes an upsert create
        check = check_item(1, {"method": "UPDATE", "data": update}, exists=exists, allow_upsert=True)
        assert check.errors == [] and check.warnings == []
