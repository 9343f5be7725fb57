"""Catalog syncs to the sandbox over real HTTP (SQLite and PostgreSQL), driven pass by pass.

A :class:`CatalogWorker` runs against the API's database; its clock is injected (``run_once(now_ms=...)``)
for the schedule and the back-off, and a crash is a ``BaseException`` thrown out of a Graph call, which
leaves the database exactly as a killed process would (no handler runs).
"""

from __future__ import annotations

from dataclasses import replace
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
from sqlalchemy import update

from metabridge.delivery.catalogs import CatalogWorker
from metabridge.graph import GraphClient
from metabridge.store.schema import catalog_products
from metabridge.timeutil import now_ms


def batch_rows(sandbox) -> list[dict[str, Any]]:
    """The items_batch calls the sandbox received (rows_count = requests in the call)."""
    return [r for r in sandbox.requests() if r["path"].endswith("/items_batch")]


def test_first_sync_then_nothing_sent_when_nothing_changed(catalog_api: RunningService, catalog_worker: CatalogWorker,
                                                          sandbox) -> None:
    api = catalog_api
    catalog = create_catalog(api)["id"]
    put_products(api, catalog, [product(i) for i in range(10)])
    job = sync(api, catalog_worker, catalog)
    assert job["status"] == "done" and job["trigger"] == "manual"
    assert (job["items_created"], job["items_updated"], job["items_deleted"], job["items_rejected"]) == (10, 0, 0, 0)
    assert len(job["batches"]) == 1 and job["batches"][0]["status"] == "finished" and job["batches"][0]["handle"]
    assert job["batches"][0]["items"] == 10 and job["batches"][0]["polls"] >= 1  # the sandbox answers "started" first
    items = sandbox.catalog_items(META_CATALOG)
    assert sorted(items) == sorted(f"sku-{i}" for i in range(10))
    assert items["sku-3"]["price"] == "13 EUR" and items["sku-3"]["title"] == "Product 3"
    got = api.http.get(f"/v1/catalogs/{catalog}").json()
    assert got["items_in_meta"] == 10 and got["last_sync"]["result"] == "ok" and got["last_sync"]["job"] == job["id"]
    assert {p["in_meta"] for p in api.http.get(f"/v1/catalogs/{catalog}/products").json()["data"]} == {"confirmed"}

    calls = sandbox.batch_calls(META_CATALOG)
    again = sync(api, catalog_worker, catalog)
    assert again["status"] == "done" and again["batches"] == []
    assert (again["items_created"], again["items_updated"], again["items_deleted"]) == (0, 0, 0)
    assert sandbox.batch_calls(META_CATALOG) == calls  # nothing sent when nothing changed


def test_one_change_among_10000_products_sends_exactly_that_item_and_deletes_are_sent(
    catalog_api: RunningService, catalog_worker: CatalogWorker, sandbox
) -> None:
    api = catalog_api
    catalog = create_catalog(api)["id"]
    assert put_products(api, catalog, [product(i) for i in range(10_000)])["created"] == 10_000
    first = sync(api, catalog_worker, catalog)
    assert first["items_created"] == 10_000 and [b["items"] for b in first["batches"]] == [5_000, 5_000]
    assert len(sandbox.catalog_items(META_CATALOG)) == 10_000

    before = len(batch_rows(sandbox))
    put_products(api, catalog, [product(1234, title="Product 1234, now in blue")])
    second = sync(api, catalog_worker, catalog)
    calls = batch_rows(sandbox)[before:]
    assert [c["rows_count"] for c in calls] == [1]  # one call holding one item
    assert (second["items_created"], second["items_updated"], second["items_deleted"]) == (0, 1, 0)
    assert sandbox.catalog_items(META_CATALOG)["sku-1234"]["title"] == "Product 1234, now in blue"

    before = len(batch_rows(sandbox))
    api.http.request("DELETE", f"/v1/catalogs/{catalog}/products", json={"ids": ["sku-1", "sku-2"]})
    third = sync(api, catalog_worker, catalog)
    assert [c["rows_count"] for c in batch_rows(sandbox)[before:]] == [2]
    assert (third["items_created"], third["items_updated"], third["items_deleted"]) == (0, 0, 2)
    held = sandbox.catalog_items(META_CATALOG)
    assert len(held) == 9_998 and "sku-1" not in held and "sku-2" not in held
    assert api.http.get(f"/v1/catalogs/{catalog}").json()["items_in_meta"] == 9_998


def test_items_meta_rejects_are_reported_and_not_resent_until_changed(
    catalog_api: RunningService, catalog_worker: CatalogWorker, sandbox
) -> None:
    api = catalog_api
    catalog = create_catalog(api)["id"]
    put_products(api, catalog, [product(i) for i in range(3)])
    # Meta's rules moved on (metabridge's table does not know yet): the stored item now lacks its title
    with api.service.engine.begin() as conn:
        stale = product(1)
        item = {"id": "sku-1", "description": stale["description"], "availability": "in stock", "condition": "new",
                "price": "11 EUR", "link": stale["link"], "image_link": stale["image_link"], "brand": "Acme"}
        conn.execute(update(catalog_products).where(catalog_products.c.retailer_id == "sku-1")
                     .values(item=item, fingerprint="f" * 64))
    job = sync(api, catalog_worker, catalog)
    assert job["status"] == "done" and job["items_created"] == 2 and job["items_rejected"] == 1
    sample = job["rejected"]["samples"][0]
    assert sample["retailer_id"] == "sku-1" and sample["method"] == "UPDATE" and "title" in sample["errors"][0]
    assert sum(job["rejected"]["by_reason"].values()) == 1
    rejected = next(p for p in api.http.get(f"/v1/catalogs/{catalog}/products").json()["data"] if p["retailer_id"] == "sku-1")
    assert rejected["in_meta"] == "rejected" and "title" in rejected["meta_errors"][0]

    calls = sandbox.batch_calls(META_CATALOG)
    assert sync(api, catalog_worker, catalog)["items_rejected"] == 0
    assert sandbox.batch_calls(META_CATALOG) == calls  # the rejected version is not sent again
    put_products(api, catalog, [product(1)])  # fixed by the shop
    fixed = sync(api, catalog_worker, catalog)
    assert fixed["items_created"] == 1 and fixed["items_rejected"] == 0
    assert sorted(sandbox.catalog_items(META_CATALOG)) == ["sku-0", "sku-1", "sku-2"]


@pytest.mark.parametrize("code, where", [(80014, "/items_batch"), (80009, "/check_batch_request_status")])
def test_rate_limits_back_off_then_the_sync_resumes(catalog_api: RunningService, sandbox, code: int, where: str) -> None:
    api = catalog_api
    service = api.service
    graph = GraphClient(service.graph_base_url, service.settings.graph_version)
    slow = replace(service.settings, retry_base_seconds=60.0)  # rate limits wait at least the base delay
    catalog_worker = CatalogWorker(service.engine, slow, service.box, graph, sleep=lambda seconds: None)
    catalog = create_catalog(api)["id"]
    put_products(api, catalog, [product(i) for i in range(20)])
    sandbox.add_fault(count=1, path_contains=where, error={"code": code})
    job_id = api.http.post(f"/v1/catalogs/{catalog}/sync").json()["id"]
    catalog_worker.run_once()
    waiting = api.http.get(f"/v1/jobs/{job_id}").json()
    assert waiting["status"] == "running" and waiting["error"]["code"] == code and waiting["error"]["class"] == "rate_limited"
    throttled = api.http.get(f"/v1/catalogs/{catalog}").json()["throttled_until"]
    assert throttled and throttled >= now_ms() + 50_000
    assert catalog_worker.run_once() == 0  # the catalog is throttled: nobody calls Meta for it
    calls = sandbox.batch_calls(META_CATALOG)
    catalog_worker.run_once(now_ms=throttled + 1)
    done = api.http.get(f"/v1/jobs/{job_id}").json()
    assert done["status"] == "done" and done["attempts"] == 2 and done["items_created"] == 20
    # an 80014 refused the call (sent again once); after an 80009 while polling, the stored handle is polled
    assert sandbox.batch_calls(META_CATALOG) == calls + (1 if code == 80014 else 0)
    assert len(sandbox.catalog_items(META_CATALOG)) == 20
    graph.close()


class _Crash(BaseException):
    """The process dies here: no except clause of the worker runs."""


class _CrashingGraph(GraphClient):
    """Dies on the ``crash_on``-th check_batch_request_status call."""

    def __init__(self, *args: Any, crash_on: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.polls = 0
        self.crash_on = crash_on

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        if path.endswith("check_batch_request_status"):
            self.polls += 1
            if self.polls == self.crash_on:
                raise _Crash
        return super().request(method, path, **kwargs)


def test_a_crash_between_items_batch_and_confirmation_resumes_without_resending(
    catalog_api: RunningService, sandbox
) -> None:
    api = catalog_api
    service = api.service
    catalog = create_catalog(api)["id"]
    put_products(api, catalog, [product(i) for i in range(12_000)])  # three calls: 5,000 + 5,000 + 2,000
    sandbox.set_batch_in_progress_polls(0)  # each handle is finished at its first poll
    job_id = api.http.post(f"/v1/catalogs/{catalog}/sync").json()["id"]
    with _CrashingGraph(service.graph_base_url, service.settings.graph_version, crash_on=2) as graph:
        worker = CatalogWorker(service.engine, service.settings, service.box, graph, worker_id="doomed")
        with pytest.raises(_Crash):
            worker.run_once()
    interrupted = api.http.get(f"/v1/jobs/{job_id}").json()
    assert interrupted["status"] == "running" and interrupted["items_created"] == 5_000
    assert [b["status"] for b in interrupted["batches"]] == ["finished", "sent", "sent"]
    assert all(b["handle"] for b in interrupted["batches"])  # every handle stored before any poll
    assert sandbox.batch_calls(META_CATALOG) == 3

    lease_over = now_ms() + service.settings.lease_seconds * 1000 + 1_000
    with service.graph_client() as graph:
        CatalogWorker(service.engine, service.settings, service.box, graph, worker_id="heir").run_once(now_ms=lease_over)
    job = api.http.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "done" and job["attempts"] == 2
    assert job["items_created"] == 12_000 and [b["status"] for b in job["batches"]] == ["finished"] * 3
    assert sandbox.batch_calls(META_CATALOG) == 3  # handles were polled, nothing was sent again
    assert len(sandbox.catalog_items(META_CATALOG)) == 12_000
    assert api.http.get(f"/v1/catalogs/{catalog}").json()["items_in_meta"] == 12_000


def test_off_schedule_sends_nothing_on_its_own_but_syncs_on_demand(
    catalog_api: RunningService, catalog_worker: CatalogWorker, sandbox
) -> None:
    api = catalog_api
    catalog = create_catalog(api, schedule="off")["id"]
    put_products(api, catalog, [product(i) for i in range(5)])
    assert catalog_worker.run_once(now_ms=now_ms() + 30 * 86_400_000) == 0  # a month later: still nothing
    assert api.http.get("/v1/jobs", params={"catalog": catalog}).json() == []
    assert sandbox.batch_calls(META_CATALOG) == 0
    job = sync(api, catalog_worker, catalog)
    assert job["status"] == "done" and job["items_created"] == 5
    assert api.http.get(f"/v1/catalogs/{catalog}").json()["next_sync_at"] is None


def test_hourly_schedule_is_due_one_hour_after_the_last_scheduled_sync(
    catalog_api: RunningService, catalog_worker: CatalogWorker, sandbox
) -> None:
    api = catalog_api
    created = create_catalog(api)
    catalog, due = created["id"], created["next_sync_at"]
    put_products(api, catalog, [product(i) for i in range(3)])
    assert catalog_worker.run_once(now_ms=due - 1_000) == 0
    assert api.http.get("/v1/jobs", params={"catalog": catalog}).json() == []
    assert catalog_worker.run_once(now_ms=due + 1_000) == 1
    jobs = api.http.get("/v1/jobs", params={"catalog": catalog}).json()
    assert [(j["trigger"], j["status"], j["items_created"]) for j in jobs] == [("schedule", "done", 3)]
    next_due = api.http.get(f"/v1/catalogs/{catalog}").json()["next_sync_at"]
    assert due + 3_601_000 <= next_due < due + 3_601_000 + 60_000  # an hour after the pass took it
    assert catalog_worker.run_once(now_ms=due + 2_000) == 0  # taken: not due again within the hour
    assert catalog_worker.run_once(now_ms=next_due + 1) == 1
    assert len(api.http.get("/v1/jobs", params={"catalog": catalog}).json()) == 2
    assert sandbox.batch_calls(META_CATALOG) == 1  # the second scheduled sync had nothing to send


def test_fields_a_product_drops_are_removed_from_meta_then_nothing_is_sent(
    catalog_api: RunningService, catalog_worker: CatalogWorker, sandbox
) -> None:
    """An UPDATE changes only the fields it carries: a dropped sale price, custom label or image list is sent
    empty ("" / []), so Meta's item equals the product again; the next sync sends nothing."""
    api = catalog_api
    catalog = create_catalog(api)["id"]
    put_products(api, catalog, [
        product(1, sale_price="8 EUR", custom_label_0="summer", additional_image_links=["https://shop.example/1b.jpg"]),
        product(2, custom_label_0="winter"),
    ])
    sync(api, catalog_worker, catalog)
    held = sandbox.catalog_items(META_CATALOG)
    assert held["sku-1"]["sale_price"] == "8 EUR" and held["sku-1"]["custom_label_0"] == "summer"
    assert held["sku-1"]["additional_image_link"] == ["https://shop.example/1b.jpg"]

    put_products(api, catalog, [product(1, title="Product 1, sale over")])  # the shop dropped all three
    before = len(batch_rows(sandbox))
    job = sync(api, catalog_worker, catalog)
    assert (job["items_created"], job["items_updated"], job["items_rejected"], job["warnings_count"]) == (0, 1, 0, 0)
    assert [c["rows_count"] for c in batch_rows(sandbox)[before:]] == [1]
    item = sandbox.catalog_items(META_CATALOG)["sku-1"]
    assert not {"sale_price", "custom_label_0", "additional_image_link"} & set(item)
    assert item == meta_data(product(1, title="Product 1, sale over"))  # Meta's item equals the product again
    assert sandbox.catalog_items(META_CATALOG)["sku-2"]["custom_label_0"] == "winter"  # untouched

    calls = sandbox.batch_calls(META_CATALOG)
    again = sync(api, catalog_worker, catalog)
    assert again["status"] == "done" and again["batches"] == [] and again["items_updated"] == 0
    assert sandbox.batch_calls(META_CATALOG) == calls  # confirmed as the product now is: nothing to send

    put_products(api, catalog, [product(1, title="Product 1, sale over", sale_price="7 EUR")])  # back on sale
    sync(api, catalog_worker, catalog)
    assert sandbox.catalog_items(META_CATALOG)["sku-1"]["sale_price"] == "7 EUR"


def test_fields_sent_before_a_crash_are_known_after_the_resume(catalog_api: RunningService, catalog_worker: CatalogWorker,
                                                              sandbox) -> None:
    """The fields an UPDATE gave Meta are stored with its batch: a sync resumed after a crash confirms them
    (without resending), and a later version that drops one of them empties it."""
    api = catalog_api
    service = api.service
    catalog = create_catalog(api)["id"]
    put_products(api, catalog, [product(1, sale_price="8 EUR")])
    sync(api, catalog_worker, catalog)

    put_products(api, catalog, [product(1, custom_label_1="clearance")])  # sale_price dropped, a label added
    sandbox.set_batch_in_progress_polls(0)
    job_id = api.http.post(f"/v1/catalogs/{catalog}/sync").json()["id"]
    with _CrashingGraph(service.graph_base_url, service.settings.graph_version, crash_on=1) as graph:
        with pytest.raises(_Crash):
            CatalogWorker(service.engine, service.settings, service.box, graph, worker_id="doomed").run_once()
    calls = sandbox.batch_calls(META_CATALOG)
    item = sandbox.catalog_items(META_CATALOG)["sku-1"]
    assert item["custom_label_1"] == "clearance" and "sale_price" not in item  # Meta applied it; unconfirmed

    lease_over = now_ms() + service.settings.lease_seconds * 1000 + 1_000
    with service.graph_client() as graph:
        CatalogWorker(service.engine, service.settings, service.box, graph, worker_id="heir").run_once(now_ms=lease_over)
    resumed = api.http.get(f"/v1/jobs/{job_id}").json()
    assert resumed["status"] == "done" and resumed["items_updated"] == 1
    assert sandbox.batch_calls(META_CATALOG) == calls  # polled, not sent again

    put_products(api, catalog, [product(1)])  # the label goes too
    job = sync(api, catalog_worker, catalog)
    assert job["items_updated"] == 1 and sandbox.batch_calls(META_CATALOG) == calls + 1
    assert sandbox.catalog_items(META_CATALOG)["sku-1"] == meta_data(product(1))
