"""items_batch requests and chunking (§6.1), computed product sets, and the sync diff."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest

from metabridge.catalog import (
    CHANGE_RULES,
    DEFAULT_SET_SIZE,
    MAX_BODY_BYTES,
    MAX_REQUESTS,
    PERSONAL_KINDS,
    SET_KINDS,
    ChangeKind,
    Changes,
    ProductInfo,
    ProductItem,
    chunk_requests,
    compute_members,
    delete_request,
    encode_body,
    items_batch_body,
    plan_changes,
    refusal_reason,
    upsert_request,
    validate_product,
)
from metabridge.catalog.batches import BODY_OVERHEAD_BYTES, request_size


def item(retailer_id: str, **extra: Any) -> ProductItem:
    raw = {
        "id": retailer_id, "title": "T", "description": "D", "availability": "in stock", "condition": "new",
        "price": "1 USD", "link": "https://s.example/p", "image_link": "https://s.example/i.jpg",
        "brand": "B",
        **extra,
    }  # fmt: skip
    result = validate_product(raw)
    assert isinstance(result, ProductItem), result
    return result


# --- requests and bodies ------------------------------------------------------------------------------------
def test_request_builders() -> None:
    product = item("sku-1")
    assert upsert_request(product) == {"method": "UPDATE", "data": product.data}
    assert upsert_request(product.data) == {"method": "UPDATE", "data": product.data}
    assert delete_request("sku-1") == {"method": "DELETE", "data": {"id": "sku-1"}}
    with pytest.raises(ValueError):
        delete_request("")


def test_items_batch_body_is_what_woocommerce_sends() -> None:
    requests = [upsert_request(item("woo-belt_96"))]
    body = items_batch_body(requests)
    assert body == {"item_type": "PRODUCT_ITEM", "allow_upsert": True, "requests": requests}
    assert items_batch_body(requests, allow_upsert=False)["allow_upsert"] is False
    assert orjson.loads(encode_body(requests)) == body
    with pytest.raises(ValueError):
        items_batch_body([])
    with pytest.raises(ValueError):
        items_batch_body([delete_request(str(i)) for i in range(MAX_REQUESTS + 1)])


@pytest.mark.parametrize(
    ("count", "sizes"),
    [(1, [1]), (4_999, [4_999]), (5_000, [5_000]), (5_001, [5_000, 1]), (12_345, [5_000, 5_000, 2_345])],
)
def test_chunks_hold_at_most_5000_requests(count: int, sizes: list[int]) -> None:
    requests = (delete_request(f"sku-{i}") for i in range(count))  # a generator: chunking is lazy
    chunks = list(chunk_requests(requests))
    assert [len(c) for c in chunks] == sizes
    assert [r["data"]["id"] for c in chunks for r in c] == [f"sku-{i}" for i in range(count)]


def test_chunks_stay_under_the_byte_limit() -> None:
    big = [upsert_request(item(f"sku-{i}", description="x" * 4_000)) for i in range(30)]
    size = request_size(big[0])
    limit = BODY_OVERHEAD_BYTES + size * 7 + 10  # room for 7 requests
    chunks = list(chunk_requests(big, max_bytes=limit))
    assert [len(c) for c in chunks] == [7, 7, 7, 7, 2]
    for chunk in chunks:
        assert len(encode_body(chunk)) <= limit


def test_the_default_byte_limit_is_metas_28_mb() -> None:
    # 5,000 requests of ~6.3 KB would be ~31 MB: the byte limit cuts before the count limit.
    one = item("sku-x", description="y" * 5_000, notes="z" * 1_000)
    requests = [upsert_request({**one.data, "id": f"sku-{i:05d}"}) for i in range(5_000)]
    assert sum(map(request_size, requests)) > MAX_BODY_BYTES
    chunks = list(chunk_requests(requests))
    assert len(chunks) == 2 and sum(len(c) for c in chunks) == 5_000
    assert all(len(encode_body(c)) <= MAX_BODY_BYTES for c in chunks)


def test_a_request_too_big_for_any_call_is_refused() -> None:
    with pytest.raises(ValueError, match="sku-1"):
        list(chunk_requests([upsert_request(item("sku-1", notes="z" * 10_000))], max_bytes=8_000))
    with pytest.raises(ValueError):
        list(chunk_requests([], max_requests=5_001))


# --- product sets -------------------------------------------------------------------------------------------
PRODUCTS: dict[str, Any] = {
    "a": ProductInfo("in stock", 10),
    "b": ProductInfo("in stock", 50),
    "c": ProductInfo("out of stock", 0),
    "d": ProductInfo("available for order", None),
    "e": ProductInfo("in stock", 50),
    "f": ProductInfo("discontinued", 99),
}
PURCHASES = {"a": 5, "b": 9, "c": 100, "d": 5, "e": 1, "ghost": 1_000}
VIEWS = {"a": 1, "b": 1, "c": 1_000, "e": 7, "f": 500, "ghost": 5}


@pytest.mark.parametrize(
    ("kind", "size", "members"),
    [
        # units bought, available only, ties by id, unknown products ignored
        ("most_sold", 50, ["b", "a", "d", "e"]),
        ("most_sold", 2, ["b", "a"]),
        ("most_viewed", 50, ["e", "a", "b"]),
        # in stock with a quantity, largest first, ties by id
        ("most_in_stock", 50, ["b", "e", "a"]),
        ("most_in_stock", 1, ["b"]),
    ],
)
def test_set_kinds(kind: str, size: int, members: list[str]) -> None:
    assert compute_members(kind, size, PRODUCTS, PURCHASES, VIEWS, seed="set-1") == members


def test_random_is_seeded_stable_and_available_only() -> None:
    products = {f"sku-{i:03d}": ProductInfo("in stock", 1) for i in range(300)}
    products["sold-out"] = ProductInfo("out of stock", 0)
    first = compute_members("random", 50, products, {}, {}, seed="set-7")
    assert len(first) == 50 and len(set(first)) == 50 and "sold-out" not in first
    shuffled = dict(random.Random(1).sample(list(products.items()), len(products)))
    assert compute_members("random", 50, shuffled, {}, {}, seed="set-7") == first  # order-independent
    assert compute_members("random", 50, products, {}, {}, seed="set-8") != first  # per set
    # one member leaves the catalog: the other 49 stay
    del products[first[0]]
    after = compute_members("random", 50, products, {}, {}, seed="set-7")
    assert set(first[1:]) <= set(after)


def test_products_may_be_items_or_data() -> None:
    catalog = {"x": item("x", inventory=3), "y": item("y", inventory=8).data}
    assert compute_members("most_in_stock", 5, catalog, {}, {}, seed="s") == ["y", "x"]


def test_every_set_kind_is_described_with_a_default_size() -> None:
    assert set(SET_KINDS) == {"most_sold", "most_viewed", "most_in_stock", "random"}
    for kind in SET_KINDS.values():
        assert kind.description and kind.default_size == DEFAULT_SET_SIZE == 50
        assert refusal_reason(kind.name) is None


@pytest.mark.parametrize("kind", sorted(PERSONAL_KINDS))
def test_personal_kinds_are_refused_with_the_reason(kind: str) -> None:
    reason = refusal_reason(kind)
    assert reason is not None
    assert "personal" in reason and PERSONAL_KINDS[kind] in reason and "most_sold" in reason
    with pytest.raises(ValueError, match="personal"):
        compute_members(kind, 10, PRODUCTS, PURCHASES, VIEWS, seed="s")


def test_personal_kinds_include_the_usual_ones() -> None:
    usual = (
        "recently_viewed", "viewed_by_visitor", "recommended_for_you", "similar_to_viewed", "cart_abandoned"
    )
    for kind in usual:
        assert kind in PERSONAL_KINDS


@pytest.mark.parametrize("kind", ["best_sellers", "", "MOST_SOLD"])
def test_unknown_kinds_are_refused_naming_the_allowed_ones(kind: str) -> None:
    reason = refusal_reason(kind)
    assert reason is not None and "unknown product set kind" in reason
    assert "most_sold, most_viewed, most_in_stock, random" in reason


@pytest.mark.parametrize("size", [0, -1, 1_001])
def test_set_size_bounds(size: int) -> None:
    with pytest.raises(ValueError, match="size"):
        compute_members("random", size, PRODUCTS, {}, {}, seed="s")


# --- diff ---------------------------------------------------------------------------------------------------
DIFFS: list[tuple[dict[str, str], dict[str, str], Changes]] = [
    ({}, {}, Changes([], [], [])),
    ({"a": "1", "b": "2"}, {}, Changes(["a", "b"], [], [])),
    ({}, {"a": "1"}, Changes([], [], ["a"])),
    ({"a": "1", "b": "2"}, {"a": "1", "b": "2"}, Changes([], [], [])),
    ({"b": "2", "a": "9", "c": "3"}, {"a": "1", "b": "2", "d": "4"}, Changes(["c"], ["a"], ["d"])),
]


@pytest.mark.parametrize(("current", "sent", "expected"), DIFFS)
def test_plan_changes(current: dict[str, str], sent: dict[str, str], expected: Changes) -> None:
    changes = plan_changes(current, sent)
    assert changes == expected
    assert bool(changes) is (expected.total > 0)


#: (current, sent, unsettled) -> Changes: an unsettled item (an abandoned batch carried it) is resent whatever
#: its fingerprint, and retracted when its product is gone, confirmed or not.
UNSETTLED_DIFFS: list[tuple[dict[str, str], dict[str, str], set[str], Changes]] = [
    ({"a": "1"}, {"a": "1"}, {"a"}, Changes([], ["a"], [])),  # back to the confirmed version
    ({"a": "2"}, {"a": "1"}, {"a"}, Changes([], ["a"], [])),
    ({"a": "1"}, {}, {"a"}, Changes(["a"], [], [])),  # created in an abandoned batch, still a product
    ({}, {}, {"a"}, Changes([], [], [], ["a"])),  # created in an abandoned batch, product gone
    ({}, {"a": "1"}, {"a"}, Changes([], [], [], ["a"])),  # an abandoned DELETE or UPDATE: Meta may lack it
    ({"b": "2"}, {"a": "1", "b": "2"}, {"c"}, Changes([], [], ["a"], ["c"])),
]


@pytest.mark.parametrize(("current", "sent", "unsettled", "expected"), UNSETTLED_DIFFS)
def test_plan_changes_with_unsettled_items(current: dict[str, str], sent: dict[str, str], unsettled: set[str],
                                           expected: Changes) -> None:
    assert plan_changes(current, sent, unsettled) == expected


def test_change_rules_cover_every_kind_and_only_a_retraction_takes_an_error_as_done() -> None:
    assert set(CHANGE_RULES) == set(ChangeKind)
    assert {kind for kind, rule in CHANGE_RULES.items() if rule.error_is_done} == {ChangeKind.RETRACTED}
    assert {kind for kind, rule in CHANGE_RULES.items() if rule.method == "DELETE"} == {
        ChangeKind.DELETED, ChangeKind.RETRACTED}


def test_one_change_in_ten_thousand() -> None:
    current = {f"sku-{i:05d}": f"fp-{i}" for i in range(10_000)}
    sent = dict(current)
    current["sku-04242"] = "changed"
    assert plan_changes(current, sent) == Changes([], ["sku-04242"], [])
