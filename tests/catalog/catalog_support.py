"""The catalog service over real HTTP for tests: the API (optionally with its worker threads) on SQLite or
PostgreSQL, Graph calls going to the sandbox, plus a :class:`CatalogWorker` driven pass by pass.

Import the fixtures into a test module (``from catalog_support import catalog_api  # noqa: F401``).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _service import RunningService, running_service

from metabridge.catalog import ProductItem, validate_product
from metabridge.delivery.catalogs import CatalogWorker

META_CATALOG = "555000111"


def product(i: int | str, **overrides: Any) -> dict[str, Any]:
    """A valid product in the shop's terms."""
    body: dict[str, Any] = {
        "id": f"sku-{i}", "title": f"Product {i}", "description": f"The product number {i}.",
        "availability": "in stock", "condition": "new", "price": {"amount": 10 + (int(i) % 50 if str(i).isdigit() else 1), "currency": "EUR"},
        "link": f"https://shop.example/p/{i}", "image_link": f"https://shop.example/img/{i}.jpg", "brand": "Acme",
    }
    body.update(overrides)
    return body


def _serve(tmp_path: Path, database_url: str, graph_url: str, *, run_worker: bool):
    return running_service(tmp_path, database_url, graph_url, run_worker=run_worker, timeout=120)


@pytest.fixture
def catalog_api(tmp_path: Path, database_url: str, sandbox) -> Iterator[RunningService]:
    """The API without a worker: nothing is synced unless a test runs a :func:`catalog_worker` pass."""
    with _serve(tmp_path, database_url, sandbox.base_url, run_worker=False) as running:
        yield running


@pytest.fixture
def catalog_live(tmp_path: Path, database_url: str, sandbox) -> Iterator[RunningService]:
    """The API and its in-process worker threads (events, audiences, catalogs), syncing to the sandbox."""
    with _serve(tmp_path, database_url, sandbox.base_url, run_worker=True) as running:
        yield running


@pytest.fixture
def catalog_worker(catalog_api: RunningService) -> Iterator[CatalogWorker]:
    """A catalog worker on the API's database, run pass by pass (``run_once(now_ms=...)`` injects the clock)."""
    service = catalog_api.service
    with service.graph_client() as graph:
        yield CatalogWorker(service.engine, service.settings, service.box, graph, rng=random.Random(5),
                            sleep=lambda seconds: None)


def create_catalog(api: RunningService, **overrides: Any) -> dict[str, Any]:
    body = {"name": "shop", "catalog_id": META_CATALOG, "access_token": "tok-cat", **overrides}
    answer = api.http.post("/v1/catalogs", json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()


def put_products(api: RunningService, catalog: int, products: list[dict[str, Any]]) -> dict[str, Any]:
    answer = api.http.put(f"/v1/catalogs/{catalog}/products", json={"products": products})
    assert answer.status_code == 200, answer.text
    return answer.json()


def sync(api: RunningService, worker: CatalogWorker, catalog: int) -> dict[str, Any]:
    """Ask for a sync, run the worker until nothing is left, return the finished job."""
    started = api.http.post(f"/v1/catalogs/{catalog}/sync")
    assert started.status_code == 202, started.text
    while worker.run_once():
        pass
    return api.http.get(f"/v1/jobs/{started.json()['id']}").json()


def meta_data(raw: dict[str, Any]) -> dict[str, Any]:
    """The items_batch data of a shop's product: what Meta's item must equal."""
    item = validate_product(raw)
    assert isinstance(item, ProductItem), item
    return item.data
