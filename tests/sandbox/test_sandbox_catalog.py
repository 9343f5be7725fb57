"""The sandbox's catalog endpoints over real HTTP: items_batch, check_batch_request_status, product sets,
faults, tokens and the control API (audiences-and-catalog.md §6.1-§6.3, examples/catalog-doc-examples.json).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from _audience_graph import graph_error

from metabridge.sandbox.control import SandboxControl

TOKEN = "EAAB-sandbox-catalog-token"
VERSION = "v26.0"
CATALOG = "555000111"
OTHER_CATALOG = "555000222"
EXAMPLES = json.loads(
    (Path(__file__).resolve().parents[1] / "fixtures" / "meta-spec" / "catalog-doc-examples.json").read_text()
)

ITEM: dict[str, Any] = {
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


def item(retailer_id: str, **changes: Any) -> dict[str, Any]:
    return {**ITEM, "id": retailer_id, **changes}


class Catalog:
    """Raw Graph calls to one sandbox catalog (token in the query)."""

    def __init__(self, sandbox: SandboxControl, catalog_id: str = CATALOG) -> None:
        self.http = sandbox.http
        self.id = catalog_id

    def call(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, **kw: Any
    ) -> httpx.Response:
        query = {"access_token": TOKEN, **(params or {})}
        return self.http.request(method, f"/{VERSION}/{path}", params=query, **kw)

    def batch_raw(self, requests: Any, *, form: bool = False, **params: Any) -> httpx.Response:
        body = {"item_type": "PRODUCT_ITEM", "requests": requests, **params}
        if form:
            encoded = {k: v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in body.items()}
            return self.call("POST", f"{self.id}/items_batch", data=encoded)
        return self.call("POST", f"{self.id}/items_batch", json=body)

    def batch(self, requests: list[dict[str, Any]], **params: Any) -> dict[str, Any]:
        answer = self.batch_raw(requests, **params)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    def upsert(self, *items: dict[str, Any]) -> str:
        body = self.batch([{"method": "UPDATE", "data": i} for i in items])
        [handle] = body["handles"]
        return str(handle)

    def status_raw(self, handle: str, **params: Any) -> httpx.Response:
        return self.call("GET", f"{self.id}/check_batch_request_status", params={"handle": handle, **params})

    def status(self, handle: str, **params: Any) -> dict[str, Any]:
        answer = self.status_raw(handle, **params)
        assert answer.status_code == 200, answer.text
        [status] = answer.json()["data"]
        return dict(status)

    def finished(self, handle: str, **params: Any) -> dict[str, Any]:
        for _ in range(10):
            status = self.status(handle, **params)
            if status["status"] == "finished":
                return status
        raise AssertionError("never finished")

    def create_set_raw(self, **params: Any) -> httpx.Response:
        return self.call("POST", f"{self.id}/product_sets", json=params)

    def create_set(self, name: str, rule: Any, **params: Any) -> str:
        answer = self.create_set_raw(name=name, filter=rule, **params)
        assert answer.status_code == 200, answer.text
        return str(answer.json()["id"])


@pytest.fixture
def catalog(sandbox: SandboxControl) -> Catalog:
    return Catalog(sandbox)


# --- items_batch --------------------------------------------------------------------------------------------
def test_create_update_delete_and_the_catalog_shows_it(catalog: Catalog, sandbox: SandboxControl) -> None:
    body = catalog.batch([
        {"method": "CREATE", "data": item("sku-1")},
        {"method": "UPDATE", "data": item("sku-2", custom_label_0="summer")},  # allow_upsert creates it
    ])
    assert len(body["handles"]) == 1 and body["validation_status"] == []
    assert sandbox.catalog_items(CATALOG) == {
        "sku-1": item("sku-1"), "sku-2": item("sku-2", custom_label_0="summer")
    }

    catalog.batch([
        {"method": "UPDATE", "data": {"id": "sku-1", "price": "17.5 EUR", "sale_price": "15 EUR"}},
        {"method": "UPDATE", "data": {"id": "sku-2", "custom_label_0": ""}},  # "" clears an optional field
        {"method": "DELETE", "data": {"id": "sku-3"}},  # missing: harmless
    ])
    items = sandbox.catalog_items(CATALOG)
    assert items["sku-1"] == item("sku-1", price="17.5 EUR", sale_price="15 EUR")  # merged, rest kept
    assert items["sku-2"] == item("sku-2")

    catalog.batch([{"method": "DELETE", "data": {"id": "sku-1"}}])
    assert list(sandbox.catalog_items(CATALOG)) == ["sku-2"]
    assert sandbox.batch_calls(CATALOG) == 3
    assert sandbox.catalog_items(OTHER_CATALOG) == {} and sandbox.batch_calls(OTHER_CATALOG) == 0


def test_form_body_with_requests_as_json_text(catalog: Catalog, sandbox: SandboxControl) -> None:
    answer = catalog.batch_raw([{"method": "UPDATE", "data": item("sku-1")}], form=True, allow_upsert="true")
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["handles"]) == 1
    assert list(sandbox.catalog_items(CATALOG)) == ["sku-1"]


def test_metas_update_example_answers_the_unrecognised_field_warning(
    catalog: Catalog, sandbox: SandboxControl
) -> None:
    [case] = [c for c in EXAMPLES if c["input"].get("path") == "/{catalog_id}/items_batch"
              and c["input"]["requests"][0]["method"] == "UPDATE"]  # fmt: skip
    data = case["input"]["requests"][0]["data"]
    catalog.upsert(item(data["id"]))  # the example's data is abridged: the item exists already
    body = catalog.batch(case["input"]["requests"], item_type=case["input"]["item_type"])
    assert len(body["handles"]) == 1
    assert body["validation_status"] == case["expected"]["validation_status"]
    stored = sandbox.catalog_items(CATALOG)[data["id"]]
    assert "unknown_field" not in stored  # Meta ignores it
    assert stored["internal_label"] == ["Literary Girl", "Another tag"] and stored["price"] == "14 GBP"


def test_metas_delete_example(catalog: Catalog, sandbox: SandboxControl) -> None:
    [case] = [c for c in EXAMPLES if c["input"].get("path") == "/{catalog_id}/items_batch"
              and c["input"]["requests"][0]["method"] == "DELETE"]  # fmt: skip
    catalog.upsert(item("sku-123"))
    body = catalog.batch(case["input"]["requests"])
    assert len(body["handles"]) == len(case["expected"]["handles"]) == 1
    assert sandbox.catalog_items(CATALOG) == {}


# (case, params, field named in error_data, message fragment)
REQUEST_ERRORS: list[tuple[str, dict[str, Any], str, str]] = [
    ("no item_type", {"requests": [{"method": "UPDATE", "data": ITEM}]}, "item_type",
     "item_type is required"),
    ("other item_type", {"item_type": "HOTEL", "requests": [{"method": "UPDATE", "data": ITEM}]}, "item_type",
     "only PRODUCT_ITEM"),
    ("no requests", {"item_type": "PRODUCT_ITEM"}, "requests", "requests is required"),
    ("requests not an array", {"item_type": "PRODUCT_ITEM", "requests": {"method": "UPDATE"}}, "requests",
     "JSON array"),
    ("requests not JSON", {"item_type": "PRODUCT_ITEM", "requests": "[{"}, "requests", "JSON array"),
    ("empty requests", {"item_type": "PRODUCT_ITEM", "requests": []}, "requests", "must not be empty"),
    ("5001 requests", {"item_type": "PRODUCT_ITEM", "requests": [{"method": "DELETE", "data": {"id": str(i)}}
                                                                  for i in range(5_001)]},
     "requests", "at most 5000 requests"),
    ("bad allow_upsert", {"item_type": "PRODUCT_ITEM", "requests": [{"method": "UPDATE", "data": ITEM}],
                          "allow_upsert": "perhaps"}, "allow_upsert", "boolean"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "params", "field", "fragment"), REQUEST_ERRORS, ids=[c[0] for c in REQUEST_ERRORS]
)
def test_request_level_errors_apply_nothing(
    catalog: Catalog, sandbox: SandboxControl, case: str, params: dict[str, Any], field: str, fragment: str
) -> None:
    answer = catalog.call("POST", f"{CATALOG}/items_batch", json=params)
    error = graph_error(answer, 100)
    assert error["error_data"] == {"field": field}
    assert fragment in error["error_user_msg"]
    assert sandbox.catalog_items(CATALOG) == {}
    assert sandbox.batch_calls(CATALOG) == 1


def test_5000_requests_are_accepted(catalog: Catalog, sandbox: SandboxControl) -> None:
    body = catalog.batch([{"method": "UPDATE", "data": item(f"sku-{i:04d}")} for i in range(5_000)])
    assert len(body["handles"]) == 1
    assert sandbox.catalog(CATALOG)["items"] == 5_000


def test_a_body_over_28_mb_is_refused(catalog: Catalog, sandbox: SandboxControl) -> None:
    answer = catalog.batch_raw([{"method": "UPDATE", "data": item("sku-1", notes="x" * 28_000_000)}])
    error = graph_error(answer, 100)
    assert "28000000" in error["error_user_msg"]
    assert sandbox.catalog_items(CATALOG) == {}


# (case, request, message fragments) — each item fails alone
ITEM_ERRORS: list[tuple[str, Any, list[str]]] = [
    *[
        (f"CREATE without {name}", {"method": "CREATE", "data": {k: v for k, v in ITEM.items() if k != name}},
         [f"A required field is missing: {name}"])
        for name in ITEM if name not in ("id", "image_link")
    ],
    ("CREATE without an image",
     {"method": "CREATE", "data": {k: v for k, v in ITEM.items() if k != "image_link"}},
     ["A required field is missing: image (or image_link)"]),
    ("no id", {"method": "UPDATE", "data": {"title": "x"}}, ["A required field is missing: id"]),
    ("id too long", {"method": "UPDATE", "data": item("x" * 101)},
     ["Invalid value for id: must be at most 100"]),
    ("bad availability", {"method": "UPDATE", "data": item("sku-9", availability="in_stock")},
     ["Invalid value for availability: must be one of in stock, out of stock, available for order, "
      "discontinued"]),
    ("bad condition", {"method": "UPDATE", "data": item("sku-9", condition="mint")},
     ["Invalid value for condition: must be one of new, refurbished, used"]),
    ("price without space", {"method": "UPDATE", "data": item("sku-9", price="9.99USD")},
     ['Invalid value for price: must be a number and an ISO 4217 currency such as "9.99 USD"']),
    ("price as a number", {"method": "UPDATE", "data": item("sku-9", price=9.99)},
     ["Invalid value for price"]),
    ("unknown currency", {"method": "UPDATE", "data": item("sku-9", sale_price="5 XYZ")},
     ["Invalid value for sale_price"]),
    ("title too long", {"method": "UPDATE", "data": item("sku-9", title="t" * 101)},
     ["Invalid value for title: must be at most 100 characters"]),
    ("relative link", {"method": "UPDATE", "data": item("sku-9", link="/belt")}, ["Invalid value for link"]),
    ("bad method", {"method": "UPSERT", "data": item("sku-9")}, ["Invalid method 'UPSERT'"]),
    ("data not an object", {"method": "UPDATE", "data": ["sku-9"]}, ["data must be an object"]),
    ("request not an object", 42, ["each request must be an object"]),
    ("required field emptied", {"method": "UPDATE", "data": item("sku-9", title="")},
     ["A required field is missing: title"]),
]  # fmt: skip


@pytest.mark.parametrize(("case", "request_", "fragments"), ITEM_ERRORS, ids=[c[0] for c in ITEM_ERRORS])
def test_invalid_items_fail_alone_with_the_rule(
    catalog: Catalog, sandbox: SandboxControl, case: str, request_: Any, fragments: list[str]
) -> None:
    body = catalog.batch([{"method": "UPDATE", "data": item("good")}, request_])
    [handle] = body["handles"]
    [status] = body["validation_status"]
    messages = [e["message"] for e in status["errors"]]
    for fragment in fragments:
        assert any(fragment in m for m in messages), messages
    assert list(sandbox.catalog_items(CATALOG)) == ["good"]
    finished = catalog.finished(handle, load_ids_of_invalid_requests="true")
    assert finished["errors_total_count"] == len(messages)
    assert {e["line"] for e in finished["errors"]} == {2}
    assert [e["message"] for e in finished["errors"]] == messages


def test_create_of_an_existing_item_and_update_without_upsert(
    catalog: Catalog, sandbox: SandboxControl
) -> None:
    catalog.upsert(item("sku-1"))
    body = catalog.batch([{"method": "CREATE", "data": item("sku-1", title="Again")},
                          {"method": "UPDATE", "data": {"id": "sku-2", "title": "New"}}], allow_upsert=False)
    assert body["handles"] == []  # nothing valid: nothing ingested
    assert [s["retailer_id"] for s in body["validation_status"]] == ["sku-1", "sku-2"]
    assert "already exists" in body["validation_status"][0]["errors"][0]["message"]
    assert "allow_upsert is false" in body["validation_status"][1]["errors"][0]["message"]
    assert sandbox.catalog_items(CATALOG) == {"sku-1": item("sku-1")}


def test_an_upserting_update_of_a_missing_item_needs_every_required_field(catalog: Catalog) -> None:
    body = catalog.batch([{"method": "UPDATE", "data": {"id": "sku-new", "title": "Partial"}}])
    assert body["handles"] == []
    messages = [e["message"] for e in body["validation_status"][0]["errors"]]
    assert "A required field is missing: price" in messages


def test_an_empty_list_removes_the_field(catalog: Catalog, sandbox: SandboxControl) -> None:
    catalog.upsert(item("sku-1", additional_image_link=["https://shop.example/2.jpg"]))
    catalog.upsert({"id": "sku-1", "additional_image_link": []})
    assert sandbox.catalog_items(CATALOG)["sku-1"] == item("sku-1")


@pytest.mark.parametrize(
    ("name", "value", "empty"),
    [
        ("sale_price", "15 EUR", ""),
        ("sale_price_effective_date", "2014-11-01T12:00-0300/2014-12-01T00:00-0300", ""),
        ("custom_label_4", "clearance", ""),
        ("custom_number_0", 7, ""),
        ("mobile_link", "https://m.shop.example/belt", ""),
        ("additional_image_link", ["https://shop.example/2.jpg"], []),
        ("internal_label", ["promo"], []),
        ("image", [{"url": "https://shop.example/big.jpg", "tag": ["front"]}], []),
        ("video", [{"url": "https://shop.example/belt.mp4"}], []),
    ],
)  # fmt: skip
def test_a_full_update_with_an_emptied_optional_field_removes_it_without_error(
    catalog: Catalog, sandbox: SandboxControl, name: str, value: Any, empty: Any
) -> None:
    """What metabridge sends for a product that dropped a field: its whole data plus the field emptied."""
    catalog.upsert(item("sku-1", **{name: value}))
    assert sandbox.catalog_items(CATALOG)["sku-1"][name] == value
    handle = catalog.upsert(item("sku-1", title="Belt, plain", **{name: empty}))
    status = catalog.finished(handle)
    assert status["errors"] == [] and status["warnings"] == [] and status["ids_of_invalid_requests"] == []
    assert sandbox.catalog_items(CATALOG)["sku-1"] == item("sku-1", title="Belt, plain")


# --- check_batch_request_status -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("polls", "statuses"),
    [(None, ["started", "finished", "finished"]), (0, ["finished"]),
     (3, ["started", "dispatched", "dispatched", "finished"])],
)  # fmt: skip
def test_status_polling(
    catalog: Catalog, sandbox: SandboxControl, polls: int | None, statuses: list[str]
) -> None:
    if polls is not None:
        sandbox.set_batch_in_progress_polls(polls)
    handle = catalog.upsert(item("sku-1"))
    assert [catalog.status(handle)["status"] for _ in statuses] == statuses


def test_the_poll_setting_applies_to_later_batches(catalog: Catalog, sandbox: SandboxControl) -> None:
    earlier = catalog.upsert(item("sku-1"))
    sandbox.set_batch_in_progress_polls(0)
    later = catalog.upsert(item("sku-2"))
    assert catalog.status(later)["status"] == "finished"
    assert catalog.status(earlier)["status"] == "started"


def test_metas_status_example_fields(catalog: Catalog) -> None:
    [case] = [c for c in EXAMPLES if c["input"].get("path") == "/{catalog_id}/check_batch_request_status"]
    body = catalog.batch([
        {"method": "UPDATE", "data": item("item_id", condition="mint", extra="x")},
        {"method": "UPDATE", "data": item("fine")},
    ])
    [handle] = body["handles"]
    query = {**case["input"]["query"], "handle": handle}
    catalog.status(handle)  # started
    answer = catalog.call("GET", f"{CATALOG}/check_batch_request_status", params=query)
    assert answer.status_code == 200, answer.text
    [status] = answer.json()["data"]
    [expected] = case["expected"]["data"]
    assert list(status) == list(expected) == query["fields"].split(",")
    assert status["status"] == "finished"
    assert status["ids_of_invalid_requests"] == expected["ids_of_invalid_requests"] == ["item_id"]
    assert status["warnings"] == [
        {"line": 1, "id": "item_id",
         "message": "Unrecognised field: A request for item item_id contains unrecognised field: 'extra'"}
    ]  # fmt: skip
    assert status["errors_total_count"] == 1


def test_status_without_fields_has_them_all_and_ids_only_on_request(catalog: Catalog) -> None:
    body = catalog.batch([{"method": "UPDATE", "data": item("bad", price="free")},
                          {"method": "UPDATE", "data": item("ok")}])  # fmt: skip
    status = catalog.finished(body["handles"][0])
    assert set(status) == {"handle", "status", "errors", "errors_total_count", "warnings",
                           "warnings_total_count", "ids_of_invalid_requests"}  # fmt: skip
    assert status["ids_of_invalid_requests"] == []  # load_ids_of_invalid_requests defaults to false
    assert (status["errors_total_count"], status["warnings_total_count"]) == (1, 0)


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({}, "handle is required"),
        ({"handle": "nope"}, "is not a batch of this catalog"),
        ({"handle": "<handle>", "fields": "handle,colour"}, "nonexisting field (colour)"),
        ({"handle": "<handle>", "load_ids_of_invalid_requests": "maybe"}, "must be a boolean"),
    ],
)
def test_status_errors(catalog: Catalog, params: dict[str, Any], fragment: str) -> None:
    handle = catalog.upsert(item("sku-1"))
    query = {k: handle if v == "<handle>" else v for k, v in params.items()}
    answer = catalog.call("GET", f"{CATALOG}/check_batch_request_status", params=query)
    assert fragment in graph_error(answer, 100)["error_user_msg"]


def test_a_handle_belongs_to_its_catalog(catalog: Catalog, sandbox: SandboxControl) -> None:
    handle = catalog.upsert(item("sku-1"))
    graph_error(Catalog(sandbox, OTHER_CATALOG).status_raw(handle), 100)


# --- faults and tokens --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("code", "path"), [(80014, "/items_batch"), (80009, "/check_batch_request_status")])
def test_injected_catalog_throttling(catalog: Catalog, sandbox: SandboxControl, code: int, path: str) -> None:
    handle = catalog.upsert(item("sku-0"))
    sandbox.add_fault(error={"code": code}, path_contains=path)
    answer = catalog.batch_raw([{"method": "UPDATE", "data": item("sku-1")}]) if code == 80014 else (
        catalog.status_raw(handle)
    )
    error = graph_error(answer, code)
    assert answer.status_code == 400 and error["is_transient"] is True
    assert f"(#{code})" in error["message"]
    assert "sku-1" not in sandbox.catalog_items(CATALOG)
    # the fault is used up: the same call now works
    retry = catalog.batch_raw([{"method": "UPDATE", "data": item("sku-1")}]) if code == 80014 else (
        catalog.status_raw(handle)
    )
    assert retry.status_code == 200, retry.text


def test_tokens_and_appsecret_proof(catalog: Catalog, sandbox: SandboxControl) -> None:
    requests = [{"method": "UPDATE", "data": item("sku-1")}]
    no_token = catalog.http.post(f"/{VERSION}/{CATALOG}/items_batch",
                                 json={"item_type": "PRODUCT_ITEM", "requests": requests})  # fmt: skip
    graph_error(no_token, 104)
    sandbox.revoke_token(TOKEN)
    graph_error(catalog.batch_raw(requests), 190, 467)
    graph_error(catalog.create_set_raw(name="s", filter={}), 190, 467)
    sandbox.restore_token(TOKEN)
    sandbox.set_app_secret("s3cret")
    graph_error(catalog.batch_raw(requests), 100)
    proof = hmac.new(b"s3cret", TOKEN.encode(), hashlib.sha256).hexdigest()
    assert catalog.batch_raw(requests, appsecret_proof=proof).status_code == 200
    assert list(sandbox.catalog_items(CATALOG)) == ["sku-1"]
    assert sandbox.batch_calls(CATALOG) == 4


def test_a_catalog_id_must_be_numeric(catalog: Catalog) -> None:
    body = {"item_type": "PRODUCT_ITEM", "requests": [{"method": "DELETE", "data": {"id": "1"}}]}
    graph_error(catalog.call("POST", "shop/items_batch", json=body), 100, 33)
    graph_error(catalog.call("GET", "shop/product_sets"), 100, 33)


# --- product sets -------------------------------------------------------------------------------------------
SET_EXAMPLES = [c for c in EXAMPLES if c["input"].get("path") == "/{catalog_id}/product_sets"]


@pytest.mark.parametrize("case", SET_EXAMPLES, ids=[c["input"]["name"] for c in SET_EXAMPLES])
def test_metas_product_set_examples(catalog: Catalog, case: dict[str, Any]) -> None:
    catalog.upsert(
        item("pid1", product_type="Men > Shirts"), item("pid2"), item("pid3", product_type="Shoes")
    )
    # as a JSON body, and as the SDK sends it: a form whose filter is compact JSON text
    answer = catalog.create_set_raw(name=case["input"]["name"], filter=case["input"]["filter"])
    assert answer.status_code == 200, answer.text
    assert list(answer.json()) == list(case["expected"])
    set_id = answer.json()["id"]
    view = catalog.call("GET", set_id, params={"fields": "id,name,filter,product_count"}).json()
    assert json.loads(view["filter"]) == case["input"]["filter"]
    assert view["product_count"] == (2 if "retailer_id" in case["input"]["filter"] else 1)


def test_form_created_set_and_duplicate_filter_is_10803(catalog: Catalog, sandbox: SandboxControl) -> None:
    rule = {"brand": {"eq": "Acme"}}
    form = {"name": "Acme", "filter": json.dumps(rule, separators=(",", ":"))}
    answer = catalog.call("POST", f"{CATALOG}/product_sets", data=form)
    assert answer.status_code == 200, answer.text
    duplicate = catalog.create_set_raw(name="Acme again", filter={"brand": {"EQ": "Acme"}})
    error = graph_error(duplicate, 10803)
    assert error["message"] == "(#10803) Product set with the same filters already exists"
    # the same filter on another catalog is fine
    assert Catalog(sandbox, OTHER_CATALOG).create_set("Acme", rule)


@pytest.mark.parametrize(
    ("params", "field", "fragment"),
    [
        ({"filter": {}}, "name", "name is required"),
        ({"name": " ", "filter": {}}, "name", "name is required"),
        ({"name": "s", "filter": {"brand": {"like": "A"}}}, "filter.brand.like", "unknown operator"),
        ({"name": "s", "filter": {"shoe": {"eq": "A"}}}, "filter.shoe", "unknown filter field"),
        ({"name": "s", "filter": {"price_amount": {"gt": "10"}}}, "filter.price_amount.gt",
         "gt takes a number"),
        ({"name": "s", "filter": "{oops"}, "filter", "not valid JSON"),
    ],
)
def test_product_set_validation(
    catalog: Catalog, sandbox: SandboxControl, params: dict[str, Any], field: str, fragment: str
) -> None:
    error = graph_error(catalog.create_set_raw(**params), 100)
    assert error["error_data"] == {"field": field}
    assert fragment in error["error_user_msg"]
    assert sandbox.product_sets(CATALOG) == []


def test_list_page_summary_and_retailer_id(catalog: Catalog) -> None:
    ids = [catalog.create_set(f"set {n}", {"custom_label_0": {"eq": f"L{n}"}}, retailer_id=f"mb-{n}")
           for n in range(5)]  # fmt: skip
    first = catalog.call("GET", f"{CATALOG}/product_sets", params={"limit": 2}).json()
    assert [s["id"] for s in first["data"]] == ids[:2]
    assert set(first["data"][0]) == {"id", "name"}
    assert first["summary"] == {"total_count": 5}
    second = httpx.get(first["paging"]["next"]).json()
    assert [s["id"] for s in second["data"]] == ids[2:4]
    third = httpx.get(second["paging"]["next"]).json()
    assert [s["id"] for s in third["data"]] == ids[4:] and "next" not in third["paging"]
    query = {"retailer_id": "mb-3", "fields": "id,retailer_id,filter"}
    found = catalog.call("GET", f"{CATALOG}/product_sets", params=query).json()
    assert found["data"] == [
        {"id": ids[3], "retailer_id": "mb-3", "filter": '{"custom_label_0":{"eq":"L3"}}'}
    ]
    assert found["summary"] == {"total_count": 1}
    empty = catalog.call("GET", f"{OTHER_CATALOG}/product_sets").json()
    assert empty == {"data": [], "summary": {"total_count": 0}}


def test_read_update_delete_a_set_and_count_its_products(catalog: Catalog, sandbox: SandboxControl) -> None:
    catalog.upsert(item("a"), item("b"), item("c"))
    set_id = catalog.create_set("Pick", {"retailer_id": {"is_any": ["a", "b"]}})
    other = catalog.create_set("Other", {"retailer_id": {"is_any": ["c"]}})
    assert catalog.call("GET", set_id).json() == {"id": set_id}
    view = catalog.call("GET", set_id, params={"fields": "name,product_count,product_catalog"}).json()
    assert view == {"id": set_id, "name": "Pick", "product_count": 2, "product_catalog": {"id": CATALOG}}

    changes = {"name": "Pick 2", "filter": {"retailer_id": {"is_any": ["a"]}}}
    update = catalog.call("POST", set_id, json=changes)
    assert update.json() == {"success": True}
    [pick, _] = sandbox.product_sets(CATALOG)
    assert (pick["name"], pick["members"], pick["product_count"]) == ("Pick 2", ["a"], 1)
    assert pick["filter"] == {"retailer_id": {"is_any": ["a"]}}
    graph_error(catalog.call("POST", set_id, json={"filter": {"retailer_id": {"is_any": ["c"]}}}), 10803)

    catalog.batch([{"method": "DELETE", "data": {"id": "a"}}])
    assert catalog.call("GET", set_id, params={"fields": "product_count"}).json()["product_count"] == 0

    assert catalog.call("DELETE", set_id).json() == {"success": True}
    graph_error(catalog.call("GET", set_id), 100, 33)
    assert catalog.call("POST", other, data={"method": "DELETE"}).json() == {"success": True}
    assert sandbox.product_sets(CATALOG) == []
    graph_error(catalog.call("DELETE", other), 100, 33)


def test_audience_nodes_still_answer_beside_product_sets(catalog: Catalog) -> None:
    audience = {"name": "x", "subtype": "CUSTOM", "customer_file_source": "USER_PROVIDED_ONLY"}
    answer = catalog.call("POST", "act_123/customaudiences", data=audience)
    audience_id = answer.json()["id"]
    set_id = catalog.create_set("All", {})
    read = catalog.call("GET", audience_id, params={"fields": "name"}).json()
    assert read == {"id": audience_id, "name": "x"}
    assert catalog.call("GET", set_id, params={"fields": "name"}).json() == {"id": set_id, "name": "All"}


# --- control API --------------------------------------------------------------------------------------------
def test_control_summary_and_reset(catalog: Catalog, sandbox: SandboxControl) -> None:
    catalog.upsert(item("a"), item("b"))
    catalog.create_set("All", {})
    assert sandbox.catalog(CATALOG) == {
        "id": CATALOG, "items": 2, "product_sets": 1, "batch_calls": 1, "handles": 1
    }
    [all_items] = sandbox.product_sets(CATALOG)
    assert all_items["members"] == ["a", "b"] and all_items["filter"] == {}
    assert sandbox.stats()["catalogs"]["items"] == 2
    sandbox.reset()
    assert sandbox.catalog(CATALOG)["items"] == 0 and sandbox.catalog_items(CATALOG) == {}


def test_catalog_items_pages_through_large_catalogs(catalog: Catalog, sandbox: SandboxControl) -> None:
    catalog.batch([{"method": "UPDATE", "data": item(f"sku-{i:04d}")} for i in range(2_500)])
    items = sandbox.catalog_items(CATALOG, page_size=1_000)
    assert len(items) == 2_500 and items["sku-2499"]["id"] == "sku-2499"


def test_poll_setting_bounds(sandbox: SandboxControl) -> None:
    with pytest.raises(httpx.HTTPStatusError):
        sandbox.set_batch_in_progress_polls(-1)
