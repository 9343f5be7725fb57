"""Items an abandoned batch carried: Meta may hold them, as that batch left them (SQLite and PostgreSQL).

A batch ends ``abandoned`` when its job fails after Meta took it but before Meta's outcome was known (here a
non-retryable error, code 100, answers the first ``check_batch_request_status``): the sandbox applied it, as
Meta may have. The next syncs must still make Meta's catalog equal the products:

- an optional field the abandoned UPDATE carried and the product no longer has is sent empty, even when
  the product went back to the version Meta last confirmed (nothing "changed" since the confirmation);
- an item the abandoned batch created and whose product is gone gets a DELETE, and a DELETE of an item
  Meta does not hold (it never applied the create, or lost it) is a success, not a rejection;
- once a later batch is confirmed the state is exact again: the sync after it sends nothing.
"""

from __future__ import annotations

from typing import Any

import pytest
from catalog_support import (  # noqa: F401
    META_CATALOG,
    catalog_api,
    catalog_worker,
    create_catalog,
    meta_data,
    product,
    put_products,
    sync,
)
from _service import RunningService

from metabridge.catalog import delete_request, encode_body
from metabridge.delivery.catalogs import CatalogWorker

#: Meta's answer to the first poll of the handle: the job fails, its open batch is abandoned.
POLL_FAILS = {"code": 100, "message": "Invalid parameter"}


def abandoned_sync(api: RunningService, worker: CatalogWorker, catalog: int, sandbox) -> dict[str, Any]:
    """A sync whose items_batch Meta took (and the sandbox applied) but whose outcome is never known."""
    sandbox.add_fault(count=1, path_contains="check_batch_request_status", error=POLL_FAILS)
    job = sync(api, worker, catalog)
    assert job["status"] == "failed" and [b["status"] for b in job["batches"]] == ["abandoned"], job
    return job


def in_meta(api: RunningService, catalog: int) -> dict[str, str]:
    """retailer id -> ``in_meta`` as ``GET /v1/catalogs/{id}/products`` shows it."""
    page = api.http.get(f"/v1/catalogs/{catalog}/products").json()["data"]
    return {p["retailer_id"]: p["in_meta"] for p in page}


def settled(api: RunningService, worker: CatalogWorker, catalog: int, sandbox) -> None:
    """The state is exact again: a further sync finds nothing to send."""
    calls = sandbox.batch_calls(META_CATALOG)
    again = sync(api, worker, catalog)
    assert again["status"] == "done" and again["batches"] == [], again
    assert sandbox.batch_calls(META_CATALOG) == calls


@pytest.mark.parametrize(
    ("confirmed", "unconfirmed", "later"),
    [
        # back to the version Meta confirmed: the fingerprint equals the confirmed one
        ({}, {"sale_price": "8 EUR"}, {}),
        # a new version without the fields the abandoned UPDATE added
        ({}, {"sale_price": "8 EUR", "custom_label_0": "summer",
              "additional_image_links": ["https://shop.example/1b.jpg"]}, {"title": "Product 1, sale over"}),
        # the abandoned UPDATE removed a field and added another; the later version is the confirmed one again
        ({"custom_label_0": "winter"}, {"custom_label_1": "clearance"}, {"custom_label_0": "winter"}),
    ],
    ids=["back-to-confirmed", "new-version", "removed-then-restored"],
)  # fmt: skip
def test_fields_an_abandoned_update_may_have_set_are_cleared(
    catalog_api: RunningService, catalog_worker: CatalogWorker, sandbox, confirmed: dict[str, Any],
    unconfirmed: dict[str, Any], later: dict[str, Any],
) -> None:
    api = catalog_api
    catalog = create_catalog(api)["id"]
    put_products(api, catalog, [product(1, **confirmed), product(2)])
    assert sync(api, catalog_worker, catalog)["items_created"] == 2

    put_products(api, catalog, [product(1, **unconfirmed)])
    abandoned_sync(api, catalog_worker, catalog, sandbox)
    held = sandbox.catalog_items(META_CATALOG)["sku-1"]
    assert held == meta_data(product(1, **unconfirmed))  # Meta applied it; metabridge never learnt it
    assert in_meta(api, catalog) == {"sku-1": "unsettled", "sku-2": "confirmed"}

    put_products(api, catalog, [product(1, **later)])
    job = sync(api, catalog_worker, catalog)
    assert job["status"] == "done" and (job["items_updated"], job["items_rejected"]) == (1, 0), job
    assert sandbox.catalog_items(META_CATALOG)["sku-1"] == meta_data(product(1, **later))
    assert sandbox.catalog_items(META_CATALOG)["sku-2"] == meta_data(product(2))
    assert in_meta(api, catalog) == {"sku-1": "confirmed", "sku-2": "confirmed"}
    settled(api, catalog_worker, catalog, sandbox)


def _lose_in_meta(api: RunningService, retailer_id: str) -> None:
    """Meta does not hold the item (it never applied the create, or lost it): removed over real HTTP."""
    with api.service.graph_client() as graph:
        graph.request("POST", f"{META_CATALOG}/items_batch", access_token="tok-cat",
                      json=encode_body([delete_request(retailer_id)]))


@pytest.mark.parametrize("meta_holds_it", [True, False], ids=["meta-holds-it", "meta-lacks-it"])
def test_a_product_created_in_an_abandoned_batch_then_deleted_is_deleted_in_meta(
    catalog_api: RunningService, catalog_worker: CatalogWorker, sandbox, meta_holds_it: bool
) -> None:
    api = catalog_api
    catalog = create_catalog(api)["id"]
    put_products(api, catalog, [product(1)])
    sync(api, catalog_worker, catalog)

    put_products(api, catalog, [product(7)])
    abandoned_sync(api, catalog_worker, catalog, sandbox)
    assert "sku-7" in sandbox.catalog_items(META_CATALOG)
    if not meta_holds_it:
        _lose_in_meta(api, "sku-7")
    assert api.http.request("DELETE", f"/v1/catalogs/{catalog}/products", json={"ids": ["sku-7"]}).status_code == 200

    calls = sandbox.batch_calls(META_CATALOG)
    job = sync(api, catalog_worker, catalog)
    assert job["status"] == "done", job
    assert (job["items_deleted"], job["items_rejected"], job["rejected"]) == (1, 0, None), job
    assert sandbox.batch_calls(META_CATALOG) == calls + 1  # the DELETE was sent either way
    assert sorted(sandbox.catalog_items(META_CATALOG)) == ["sku-1"]
    settled(api, catalog_worker, catalog, sandbox)
