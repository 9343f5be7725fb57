"""The catalog API over real HTTP (SQLite and PostgreSQL): catalogs, products, product sets, job ids."""

from __future__ import annotations

from catalog_support import META_CATALOG, catalog_api, create_catalog, product, put_products  # noqa: F401
from _service import RunningService


def test_create_update_delete_catalog(catalog_api: RunningService) -> None:
    api = catalog_api
    shop = api.connection(name="web")
    created = create_catalog(api, app_secret="shh", currency="eur", connections=["web"])
    assert created["catalog_id"] == META_CATALOG and created["schedule"] == "hourly" and created["currency"] == "EUR"
    assert created["has_app_secret"] is True and "access_token" not in created and "app_secret" not in created
    assert created["connections"] == [shop["id"]] and created["status"] == "ok"
    assert created["next_sync_at"] - created["created_at"] == 3_600_000  # hourly: one hour after creation
    assert created["product_count"] == 0 and created["items_in_meta"] == 0

    duplicate = api.http.post("/v1/catalogs", json={"name": "shop", "catalog_id": "1", "access_token": "t"})
    assert duplicate.status_code == 409 and duplicate.json()["error"]["errors"][0]["field"] == "name"
    bad = api.http.post("/v1/catalogs", json={"name": "x", "catalog_id": "act_1", "access_token": "t",
                                              "schedule": "every hour", "currency": "EURO", "connections": ["nope"]})
    assert bad.status_code == 422
    fields = {e["field"]: e["message"] for e in bad.json()["error"]["errors"]}
    assert set(fields) == {"catalog_id", "schedule", "currency"}
    assert "cron expression" in fields["schedule"] and "ISO 4217" in fields["currency"]
    unknown = api.http.post("/v1/catalogs", json={"name": "x", "catalog_id": "1", "access_token": "t",
                                                  "connections": ["nope"]})
    assert unknown.status_code == 422 and unknown.json()["error"]["errors"][0]["field"] == "connections.0"

    cron = api.http.patch(f"/v1/catalogs/{created['id']}", json={"schedule": "30 2 * * *", "connections": []}).json()
    assert cron["schedule"] == "30 2 * * *" and cron["connections"] == []
    assert cron["next_sync_at"] % 86_400_000 == (2 * 60 + 30) * 60_000  # next 02:30 UTC
    off = api.http.patch(f"/v1/catalogs/{created['id']}", json={"schedule": "off", "currency": None,
                                                                "app_secret": ""}).json()
    assert off["next_sync_at"] is None and off["currency"] is None and off["has_app_secret"] is False
    assert [c["name"] for c in api.http.get("/v1/catalogs").json()] == ["shop"]

    assert api.http.delete(f"/v1/catalogs/{created['id']}").status_code == 204
    assert api.http.get(f"/v1/catalogs/{created['id']}").status_code == 404
    assert api.http.delete(f"/v1/catalogs/{created['id']}").status_code == 404


def test_products_stored_and_invalid_ones_rejected_with_field_and_rule(catalog_api: RunningService) -> None:
    api = catalog_api
    catalog = create_catalog(api, currency="USD")["id"]
    products = [
        product(1, price=19.99),  # a bare number: the catalog's currency
        product(2, title=None),
        product(3, availability="sometimes"),
        product(4, price="12.50 GBP", colour="red"),  # an unknown field: a warning, still stored
        "not an object",
    ]
    answer = put_products(api, catalog, products)
    assert answer["received"] == 5 and answer["created"] == 2 and answer["product_count"] == 2
    rejected = {r["index"]: r for r in answer["rejected"]}
    assert set(rejected) == {1, 2, 4}
    assert rejected[1]["id"] == "sku-2" and rejected[1]["errors"] == [{"field": "title", "message": "is required"}]
    assert rejected[2]["errors"][0]["field"] == "availability" and "in stock" in rejected[2]["errors"][0]["message"]
    assert rejected[4]["errors"][0]["field"] == "product"
    assert answer["warnings_total"] == 1 and answer["warnings"][0]["warnings"][0]["field"] == "colour"

    page = api.http.get(f"/v1/catalogs/{catalog}/products").json()
    assert [p["retailer_id"] for p in page["data"]] == ["sku-1", "sku-4"] and page["next_after"] is None
    assert page["data"][0]["item"]["price"] == "19.99 USD" and page["data"][1]["item"]["price"] == "12.5 GBP"
    assert page["data"][0]["data"]["price"] == 19.99 and page["data"][0]["in_meta"] == "pending"

    again = put_products(api, catalog, [product(1, price=19.99), product(4, price="12.50 GBP", colour="blue")])
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 1, 1)
    first = api.http.get(f"/v1/catalogs/{catalog}/products", params={"limit": 1}).json()
    assert len(first["data"]) == 1 and first["next_after"] == first["data"][0]["id"]

    removed = api.http.request("DELETE", f"/v1/catalogs/{catalog}/products", json={"ids": ["sku-1", "sku-9"]}).json()
    assert (removed["deleted"], removed["not_found"], removed["product_count"]) == (1, 1, 1)
    too_many = api.http.put(f"/v1/catalogs/{catalog}/products", json={"products": [{}] * 50_001})
    assert too_many.status_code == 413 and "50,000" in too_many.json()["error"]["message"]
    assert api.http.put("/v1/catalogs/999/products", json={"products": []}).status_code == 404


def test_product_sets_validated_and_personal_kinds_refused(catalog_api: RunningService) -> None:
    api = catalog_api
    catalog = create_catalog(api)["id"]
    base = f"/v1/catalogs/{catalog}/product-sets"
    most_sold = api.http.put(f"{base}/most_sold", json={})
    assert most_sold.status_code == 201 and most_sold.json()["size"] == 50 and most_sold.json()["kind"] == "most_sold"
    assert most_sold.json()["meta_product_set_id"] is None
    assert api.http.put(f"{base}/most_sold", json={"size": 10}).status_code == 200
    assert api.http.get(f"{base}/most_sold").json()["size"] == 10

    personal = api.http.put(f"{base}/recently_viewed", json={"size": 5})
    assert personal.status_code == 422 and personal.json()["error"]["reason"] == "personal_product_set"
    assert "personal product set" in personal.json()["error"]["message"]
    assert "never sends it to Meta" in personal.json()["error"]["message"]
    assert api.http.put(f"{base}/recommended_for_you", json={"filter": {"brand": {"eq": "Acme"}}}).status_code == 422

    unknown = api.http.put(f"{base}/best_sellers", json={"size": 5})
    assert unknown.status_code == 422 and "allowed kinds are" in unknown.json()["error"]["message"]
    too_big = api.http.put(f"{base}/random", json={"size": 5000})
    assert too_big.status_code == 422 and too_big.json()["error"]["errors"][0]["field"] == "size"
    invalid = api.http.put(f"{base}/shirts", json={"filter": {"or": [{"product_type": {"i_contains": "shirt"}},
                                                                      {"brand": {"like": "x"}}]}})
    assert invalid.status_code == 422
    assert invalid.json()["error"]["errors"][0]["field"].startswith("filter.or[1].brand")

    shirts = api.http.put(f"{base}/shirts", json={"name": "Shirts", "filter": {"product_type": {"I_CONTAINS": "shirt"}}})
    assert shirts.status_code == 201 and shirts.json()["kind"] == "filter"
    assert shirts.json()["filter"] == {"product_type": {"i_contains": "shirt"}}
    assert [s["key"] for s in api.http.get(base).json()] == ["most_sold", "shirts"]
    assert api.http.delete(f"{base}/shirts").status_code == 204
    assert api.http.get(f"{base}/shirts").status_code == 404
    assert api.http.get(f"/v1/catalogs/{catalog}").json()["product_sets"] == 1


def test_catalog_job_ids_cannot_be_taken_for_audience_job_ids(catalog_api: RunningService) -> None:
    api = catalog_api
    catalog = create_catalog(api, name="eu-shop")["id"]
    job = api.http.post(f"/v1/catalogs/{catalog}/sync").json()
    assert job["id"].startswith("catalog-") and job["type"] == "catalog" and job["status"] == "queued"
    assert job["trigger"] == "manual"
    again = api.http.post(f"/v1/catalogs/{catalog}/sync").json()
    assert again["id"] == job["id"]  # a queued sync is reused
    assert api.http.get(f"/v1/jobs/{job['id']}").json()["catalog"] == catalog
    listed = api.http.get("/v1/jobs", params={"catalog": "eu-shop"}).json()
    assert [j["id"] for j in listed] == [job["id"]]
    assert api.http.get("/v1/jobs", params={"type": "catalog"}).json()[0]["id"] == job["id"]
    assert api.http.get("/v1/jobs").json() == []  # audience jobs only
    number = job["id"].removeprefix("catalog-")
    assert api.http.get(f"/v1/jobs/{number}").status_code == 404  # no audience job has that number
    assert api.http.get("/v1/jobs/catalog-x").status_code == 404
    assert api.http.get("/v1/jobs", params={"catalog": "eu-shop", "audience": "a"}).status_code == 422
