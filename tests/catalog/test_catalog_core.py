"""The pure catalog core, products side: Meta's PRODUCT_ITEM rules (§6.2) applied to shop products."""

from __future__ import annotations

from typing import Any

import pytest

from metabridge.catalog import (
    PRODUCT_ITEM_FIELDS,
    REQUIRED_FIELDS,
    FieldError,
    FieldKind,
    ProductItem,
    fingerprint,
    validate_product,
    value_problem,
)
from metabridge.catalog.fields import PRICE_RULE

PRODUCT: dict[str, Any] = {
    "id": "sku-1",
    "title": "Leather belt",
    "description": "A brown leather belt.",
    "availability": "in stock",
    "condition": "new",
    "price": "19.99 EUR",
    "link": "https://shop.example/belt",
    "image_link": "https://shop.example/belt.jpg",
    "brand": "Acme",
}


def product(**changes: Any) -> dict[str, Any]:
    """The valid PRODUCT with fields changed; a value of ``...`` removes the field."""
    merged = {**PRODUCT, **changes}
    return {k: v for k, v in merged.items() if v is not ...}


def ok(raw: dict[str, Any], **kw: Any) -> ProductItem:
    result = validate_product(raw, **kw)
    assert isinstance(result, ProductItem), result
    return result


def errors_of(raw: Any, **kw: Any) -> dict[str, str]:
    result = validate_product(raw, **kw)
    assert isinstance(result, list), result
    assert all(isinstance(e, FieldError) for e in result)
    return {e.field: e.message for e in result}


def test_a_valid_product_becomes_exactly_the_items_batch_data() -> None:
    item = ok(PRODUCT)
    assert item.retailer_id == "sku-1"
    assert item.data == PRODUCT
    assert item.warnings == ()
    assert len(item.fingerprint) == 64


# --- required fields (§6.2) -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", REQUIRED_FIELDS)
@pytest.mark.parametrize("absent", [..., None, "", "   "], ids=["missing", "null", "empty", "blank"])
def test_every_required_field_is_reported_by_name(name: str, absent: Any) -> None:
    assert errors_of(product(**{name: absent})) == {name: "is required"}


def test_required_fields_are_the_spec_list() -> None:
    assert REQUIRED_FIELDS == (
        "id", "title", "description", "availability", "condition", "price", "link", "brand"
    )


def test_an_image_is_required_as_image_link_or_image() -> None:
    assert errors_of(product(image_link=...)) == {"image_link": "is required (or image)"}
    item = ok(product(image_link=..., image=[{"url": "https://shop.example/a.jpg", "tag": ["front"]}]))
    assert item.data["image"] == [{"url": "https://shop.example/a.jpg", "tag": ["front"]}]


def test_every_problem_is_reported_at_once() -> None:
    found = errors_of({"id": "x" * 101, "price": "free", "availability": "maybe", "link": "ftp://x"})
    assert set(found) == {
        "id", "price", "availability", "link", "title", "description", "condition", "brand", "image_link"
    }


@pytest.mark.parametrize("raw", [None, [], "sku-1", 3])
def test_a_product_must_be_an_object(raw: Any) -> None:
    assert errors_of(raw) == {"product": "must be a JSON object"}


# --- enums: accepted spellings are normalized ---------------------------------------------------------------
AVAILABILITY = (
    [(v, v) for v in ("in stock", "out of stock", "available for order", "discontinued")]
    + [
        ("in_stock", "in stock"), ("instock", "in stock"), ("InStock", "in stock"), ("IN STOCK", "in stock"),
        ("https://schema.org/InStock", "in stock"), ("in-stock", "in stock"),
        ("out_of_stock", "out of stock"), ("OutOfStock", "out of stock"), ("SoldOut", "out of stock"),
        ("available_for_order", "available for order"), ("onbackorder", "available for order"),
        ("BackOrder", "available for order"), ("Discontinued", "discontinued"),
    ]
)  # fmt: skip


@pytest.mark.parametrize(("given", "sent"), AVAILABILITY)
def test_availability_spellings(given: str, sent: str) -> None:
    assert ok(product(availability=given)).data["availability"] == sent


@pytest.mark.parametrize("given", ["preorder", "pending", "yes", "available", 1, True, ["in stock"]])
def test_availability_outside_metas_four_values_is_refused(given: Any) -> None:
    assert errors_of(product(availability=given)) == {
        "availability": "must be one of in stock, out of stock, available for order, discontinued"
    }


@pytest.mark.parametrize(
    ("given", "sent"),
    [("new", "new"), ("New", "new"), ("NEW", "new"), ("NewCondition", "new"), ("refurbished", "refurbished"),
     ("https://schema.org/RefurbishedCondition", "refurbished"), ("used", "used"), ("Used", "used")],
)  # fmt: skip
def test_condition_spellings(given: str, sent: str) -> None:
    assert ok(product(condition=given)).data["condition"] == sent


@pytest.mark.parametrize("given", ["cpo", "open_box_new", "damaged", "like new", 0])
def test_condition_outside_metas_three_values_is_refused(given: Any) -> None:
    assert errors_of(product(condition=given)) == {"condition": "must be one of new, refurbished, used"}


# --- lengths ------------------------------------------------------------------------------------------------
LENGTHS = [("id", 100), ("title", 100), ("description", 5000), ("google_product_category", 250),
           *((f"custom_label_{n}", 100) for n in range(5)), ("product_type", 750)]  # fmt: skip


@pytest.mark.parametrize(("name", "limit"), LENGTHS)
def test_length_limits(name: str, limit: int) -> None:
    assert ok(product(**{name: "a" * limit})).data[name] == "a" * limit
    assert errors_of(product(**{name: "a" * (limit + 1)})) == {
        name: f"must be at most {limit} characters (got {limit + 1})"
    }


def test_lengths_count_characters_not_bytes() -> None:
    assert ok(product(title="é" * 100)).data["title"] == "é" * 100


def test_text_is_trimmed_and_numbers_become_text() -> None:
    item = ok(product(id=" 42 ", title="  Belt ", item_group_id=7, google_product_category=2271))
    assert (item.retailer_id, item.data["title"]) == ("42", "Belt")
    assert (item.data["item_group_id"], item.data["google_product_category"]) == ("7", "2271")


@pytest.mark.parametrize("value", [1.5, True, ["a"], {"a": 1}])
def test_text_fields_refuse_other_types(value: Any) -> None:
    assert errors_of(product(title=value)) == {"title": "must be text of at most 100 characters"}


# --- prices -------------------------------------------------------------------------------------------------
GOOD_PRICES: list[tuple[Any, str | None, str]] = [
    ("9.99 USD", None, "9.99 USD"),
    ("14 GBP", None, "14 GBP"),
    ("9.99 usd", None, "9.99 USD"),
    ("9.99USD", None, "9.99 USD"),
    ("USD 9.99", None, "9.99 USD"),
    ("  12.50 EUR ", None, "12.5 EUR"),
    ({"amount": 12.5, "currency": "EUR"}, None, "12.5 EUR"),
    ({"amount": "12.50", "currency": "eur"}, None, "12.5 EUR"),
    ({"amount": 71}, "USD", "71 USD"),
    (9.99, "USD", "9.99 USD"),
    (10, "JPY", "10 JPY"),
    (100.0, "EUR", "100 EUR"),
    ("1250", "USD", "1250 USD"),
    (0, "USD", "0 USD"),
    ("9.99 USD", "EUR", "9.99 USD"),  # the text's own currency wins over the catalog's
]


@pytest.mark.parametrize(("given", "currency", "sent"), GOOD_PRICES)
def test_good_prices(given: Any, currency: str | None, sent: str) -> None:
    assert ok(product(price=given), currency=currency).data["price"] == sent
    assert ok(product(sale_price=given), currency=currency).data["sale_price"] == sent


BAD_PRICES: list[tuple[Any, str | None, str]] = [
    ("free", None, PRICE_RULE),
    ("9,99 EUR", None, PRICE_RULE),
    ("-5 USD", None, PRICE_RULE),
    ("9.99 dollars", None, PRICE_RULE),
    ("9.99 XYZ", None, "'XYZ' is not an ISO 4217 currency code"),
    ({"amount": 5, "currency": "EURO"}, None, "'EURO' is not an ISO 4217 currency code"),
    ({"amount": "five", "currency": "EUR"}, None, PRICE_RULE),
    ({"currency": "EUR"}, None, PRICE_RULE),
    (True, "USD", PRICE_RULE),
    (float("nan"), "USD", PRICE_RULE),
    (float("inf"), "USD", PRICE_RULE),
    (-1, "USD", PRICE_RULE),
    ([9.99, "USD"], None, PRICE_RULE),
    (9.99, None, PRICE_RULE + ": the amount has no currency (give {\"amount\", \"currency\"}, a \"currency\" "
     "field, or set the catalog's currency)"),
]


@pytest.mark.parametrize(("given", "currency", "message"), BAD_PRICES)
def test_bad_prices_name_the_rule(given: Any, currency: str | None, message: str) -> None:
    assert errors_of(product(price=given), currency=currency) == {"price": message}
    assert errors_of(product(sale_price=given), currency=currency) == {"sale_price": message}


def test_a_product_currency_field_serves_its_bare_prices() -> None:
    item = ok(product(price=20, sale_price="15", currency="chf"), currency="EUR")
    assert (item.data["price"], item.data["sale_price"]) == ("20 CHF", "15 CHF")
    assert "currency" not in item.data
    assert errors_of(product(price=20, currency="francs")) == {
        "currency": "'francs' is not an ISO 4217 currency code",
        "price": NO_CURRENCY_MESSAGE,
    }


NO_CURRENCY_MESSAGE = BAD_PRICES[-1][2]


def test_the_catalog_currency_must_be_iso_4217() -> None:
    with pytest.raises(ValueError, match="ISO 4217"):
        validate_product(PRODUCT, currency="euros")


def test_same_price_same_fingerprint() -> None:
    a = ok(product(price="12.50 EUR"))
    b = ok(product(price={"amount": 12.5, "currency": "EUR"}))
    assert a.data == b.data and a.fingerprint == b.fingerprint


# --- URLs, lists, counts ------------------------------------------------------------------------------------
@pytest.mark.parametrize("url", ["shop.example/belt", "ftp://shop.example/b", "https://", "/belt", 5])
@pytest.mark.parametrize("name", ["link", "image_link", "mobile_link"])
def test_urls_must_be_absolute_http(name: str, url: Any) -> None:
    assert errors_of(product(**{name: url})) == {name: "must be an absolute http:// or https:// URL"}


def test_additional_image_links_map_to_metas_name() -> None:
    urls = [f"https://shop.example/{n}.jpg" for n in range(50)]
    assert ok(product(additional_image_links=urls)).data["additional_image_link"] == urls
    assert ok(product(additional_image_link=urls[0])).data["additional_image_link"] == urls[:1]
    assert ok(product(additional_image_links=[])).data["additional_image_link"] == []  # removes all in Meta
    message = "must be a list of at most 50 http(s) URLs"
    assert errors_of(product(additional_image_links=[*urls, urls[0]])) == {"additional_image_links": message}
    assert errors_of(product(additional_image_links=["not a url"])) == {"additional_image_links": message}


def test_the_same_field_under_two_names_is_refused() -> None:
    found = errors_of(product(additional_image_links=[], additional_image_link=[]))
    assert found == {
        "additional_image_link": "give either additional_image_links or additional_image_link, not both "
        "(Meta's additional_image_link)"
    }


@pytest.mark.parametrize(("given", "sent"), [(5, 5), ("12", 12), (0, 0), (3.0, 3)])
def test_inventory_is_quantity_to_sell_on_facebook(given: Any, sent: int) -> None:
    item = ok(product(inventory=given))
    assert item.data["quantity_to_sell_on_facebook"] == sent
    assert "inventory" not in item.data


@pytest.mark.parametrize("given", [-1, 2.5, "many", True])
def test_inventory_must_be_a_whole_number(given: Any) -> None:
    assert errors_of(product(inventory=given)) == {"inventory": "must be a whole number >= 0"}


@pytest.mark.parametrize(
    ("given", "valid"), [(0, True), (4_294_967_295, True), (4_294_967_296, False), (-1, False)]
)
def test_custom_numbers_range(given: int, valid: bool) -> None:
    result = validate_product(product(custom_number_0=given))
    assert isinstance(result, ProductItem) is valid


def test_internal_labels_are_a_list_of_strings() -> None:
    assert ok(product(internal_label=["sale", "summer"])).data["internal_label"] == ["sale", "summer"]
    assert errors_of(product(internal_label=[1])) == {"internal_label": "must be a list of strings"}


@pytest.mark.parametrize(
    "image",
    [[{"url": "nope"}], [{"url": "https://a.example/i.jpg", "tag": "front"}], "https://a.example/i.jpg",
     [{"url": "https://a.example/i.jpg"}] * 22],
)  # fmt: skip
def test_image_objects(image: Any) -> None:
    assert set(errors_of(product(image=image))) == {"image"}


# --- unknown and extra fields -------------------------------------------------------------------------------
def test_extra_attributes_pass_through_with_a_warning() -> None:
    item = ok(product(fabric="cotton", specs={"width_cm": 3}, color="brown"))
    assert item.data["fabric"] == "cotton" and item.data["specs"] == {"width_cm": 3}
    assert item.data["color"] == "brown"  # a Meta field: no warning
    assert [w.field for w in item.warnings] == ["fabric", "specs"]
    assert all("Unrecognised field" in w.message for w in item.warnings)


def test_an_extra_attribute_must_be_json() -> None:
    assert errors_of(product(made={1, 2})) == {"made": "must be a JSON value"}


def test_retailer_id_is_accepted_for_id() -> None:
    item = ok(product(id=..., retailer_id="sku-9"))
    assert item.retailer_id == "sku-9" and item.data["id"] == "sku-9" and "retailer_id" not in item.data


# --- fingerprint --------------------------------------------------------------------------------------------
def test_fingerprint_ignores_key_order_and_sees_every_change() -> None:
    a = ok(PRODUCT)
    b = ok(dict(reversed(list(PRODUCT.items()))))
    assert a.fingerprint == b.fingerprint == fingerprint(a.data)
    assert ok(product(title="Leather belt!")).fingerprint != a.fingerprint
    assert ok(product(specs={"a": 1, "b": 2})).fingerprint == ok(product(specs={"b": 2, "a": 1})).fingerprint


# --- the rule table itself ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "value", "valid"),
    [
        ("price", "9.99 USD", True), ("price", "9.99  USD", False), ("price", "9.99 usd", False),
        ("price", 9.99, False), ("availability", "in stock", True), ("availability", "in_stock", False),
        ("link", "http://example.com/product.html", True), ("quantity_to_sell_on_facebook", 3, True),
        ("quantity_to_sell_on_facebook", "3", False), ("additional_image_link", [], True),
        ("shipping", [{"country": "US"}], True), ("title", "x" * 101, False),
    ],
)  # fmt: skip
def test_value_problem_checks_metas_wire_format(name: str, value: Any, valid: bool) -> None:
    assert (value_problem(PRODUCT_ITEM_FIELDS[name], value) is None) is valid


def test_every_rule_has_a_kind_and_enums_have_values() -> None:
    for rule in PRODUCT_ITEM_FIELDS.values():
        assert isinstance(rule.kind, FieldKind)
        assert (rule.kind is FieldKind.ENUM) == bool(rule.allowed)
