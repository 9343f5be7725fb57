"""Product sets computed from the events metabridge delivered, synced by the service's own worker threads.

Shop events go in through the API, the delivery thread sends them to the sandbox (counting the purchases
and views of the linked connection as Meta accepts them), and the catalog thread syncs the sets.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from catalog_support import META_CATALOG, catalog_live, create_catalog, product, put_products  # noqa: F401
from _service import RunningService, wait_for

PIXEL = "1234567890"


def event(event_id: str, name: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "event": name, "event_id": event_id, "timestamp": int(time.time()) - 60,
        "url": "https://shop.example/p", "user": {"email": f"{event_id}@example.com", "user_agent": "Mozilla/5.0"},
        "properties": {"value": 10, "currency": "EUR", "items": items},
    }


def deliver(live: RunningService, connection: int, events: list[dict[str, Any]], sandbox, pixel: str = PIXEL) -> None:
    before = sandbox.event_total(pixel)
    answer = live.http.post(f"/v1/connections/{connection}/events", json={"events": events}).json()
    assert answer["pending"] == len(events), answer
    wait_for(lambda: sandbox.event_total(pixel) == before + len(events), what="events delivered")
    last = events[-1]["event_id"]
    wait_for(lambda: live.http.get(f"/v1/connections/{connection}/events/{last}").json()["status"] == "sent",
             what="delivery recorded")


def synced(live: RunningService, catalog: int) -> dict[str, Any]:
    job = live.http.post(f"/v1/catalogs/{catalog}/sync").json()
    return wait_for(lambda: (j := live.http.get(f"/v1/jobs/{job['id']}").json())["status"] in ("done", "failed") and j,
                    timeout=60, what="catalog sync")


def members(sandbox, name_part: str) -> list[str]:
    found = next(s for s in sandbox.product_sets(META_CATALOG) if name_part in s["name"])
    return found["filter"]["retailer_id"]["is_any"]


def set_writes(sandbox) -> int:
    """Graph calls that create or update product sets."""
    return sum(1 for r in sandbox.requests() if r["method"] == "POST" and not r["path"].endswith(
        ("/items_batch", "/events")) and "/check_batch" not in r["path"])


def test_sets_recomputed_from_delivered_events_and_sent_only_when_membership_changes(
    catalog_live: RunningService, sandbox
) -> None:
    live = catalog_live
    web = live.connection(name="web", pixel_id=PIXEL)["id"]
    other = live.connection(name="other-shop", pixel_id="999888")["id"]  # not linked: its events do not count
    catalog = create_catalog(live, connections=["web"])["id"]
    put_products(live, catalog, [product(i, inventory=10 * i) for i in range(6)]
                 + [product(6, availability="out of stock")])

    deliver(live, web, [
        event("o1", "purchase", [{"id": "sku-1", "quantity": 3}, {"id": "sku-2"}]),
        event("o2", "purchase", [{"id": "sku-2", "quantity": 1}, {"id": "sku-6", "quantity": 50}]),
        event("v1", "view_item", [{"id": "sku-4"}]),
        event("v2", "view_item", [{"id": "sku-4"}]),
        event("v3", "view_item", [{"id": "sku-5"}]),
    ], sandbox)
    deliver(live, other, [event("x1", "purchase", [{"id": "sku-5", "quantity": 99}])], sandbox, "999888")

    # a set someone made in Meta with the filter we are about to use: 10803, adopted
    existing = sandbox.http.post(f"/v26.0/{META_CATALOG}/product_sets", data={
        "name": "Acme (made by hand)", "filter": orjson.dumps({"brand": {"eq": "Acme"}}).decode(),
        "access_token": "tok-cat"}).json()["id"]
    base = f"/v1/catalogs/{catalog}/product-sets"
    for key, body in {"most_sold": {"size": 2}, "most_viewed": {"size": 2}, "most_in_stock": {"size": 1},
                      "random": {"size": 3}, "acme": {"filter": {"brand": {"eq": "Acme"}}}}.items():
        assert live.http.put(f"{base}/{key}", json=body).status_code == 201

    job = synced(live, catalog)
    assert job["status"] == "done", job
    results = {s["key"]: s for s in job["product_sets"]}
    assert {k: r["result"] for k, r in results.items() if k != "acme"} == dict.fromkeys(
        ["most_sold", "most_viewed", "most_in_stock", "random"], "created")
    assert results["acme"]["result"].startswith("adopted") and results["acme"]["meta_product_set_id"] == existing
    assert members(sandbox, "most sold") == ["sku-1", "sku-2"]  # 3 units, 2 units; sku-6 is out of stock
    assert members(sandbox, "most viewed") == ["sku-4", "sku-5"]
    assert members(sandbox, "most in stock") == ["sku-5"]
    randomly = members(sandbox, "random")
    assert len(randomly) == 3 and "sku-6" not in randomly
    listed = {s["key"]: s for s in live.http.get(base).json()}
    assert listed["most_sold"]["members"] == 2 and listed["most_sold"]["meta_product_set_id"]

    writes = set_writes(sandbox)
    again = synced(live, catalog)
    assert {s["result"] for s in again["product_sets"]} == {"unchanged"}
    assert set_writes(sandbox) == writes  # nothing changed: no filter sent

    deliver(live, web, [event("o3", "purchase", [{"id": "sku-3", "quantity": 10}])], sandbox)
    third = synced(live, catalog)
    assert {s["key"]: s["result"] for s in third["product_sets"]}["most_sold"] == "updated"
    assert {s["result"] for s in third["product_sets"] if s["key"] != "most_sold"} == {"unchanged"}
    assert members(sandbox, "most sold") == ["sku-3", "sku-1"]
    assert set_writes(sandbox) == writes + 1

    assert live.http.delete(f"{base}/most_sold").status_code == 204  # removed from Meta too
    assert not any("most sold" in s["name"] for s in sandbox.product_sets(META_CATALOG))
