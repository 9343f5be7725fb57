"""``metabridge catalog import`` and ``catalog sync`` as a user runs them (real subprocesses, real files)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from metabridge.config import Settings
from metabridge.service import Service
from metabridge.store import catalog_jobs
from metabridge.store.catalogs import count_products, create_catalog, product_page


def metabridge(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200", "METABRIDGE_DATA_DIR": str(data_dir), "METABRIDGE_DATABASE_URL": ""}
    return subprocess.run([sys.executable, "-m", "metabridge.cli.main", *args], capture_output=True, env=env,
                          timeout=120)


def test_import_a_csv_file_then_queue_a_sync(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    service = Service.open(Settings(data_dir=data_dir))
    with service.engine.begin() as conn:
        catalog = create_catalog(conn, service.box, name="shop", catalog_id="42", access_token="tok",
                                 app_secret=None, schedule="off", currency="EUR")
    products = tmp_path / "products.csv"
    products.write_text(
        "id,title,description,availability,condition,price,link,image_link,brand,custom_label_0\n"
        "sku-1,Blue shirt,A blue shirt.,in stock,new,19.99,https://shop.example/1,https://shop.example/1.jpg,Acme,summer\n"
        "sku-2,Red shirt,A red shirt.,InStock,new,12.50 USD,https://shop.example/2,https://shop.example/2.jpg,Acme,\n"
        "sku-3,,No title.,in stock,broken,5,https://shop.example/3,https://shop.example/3.jpg,Acme,\n",
        encoding="utf-8",
    )
    result = metabridge(data_dir, "catalog", "import", str(products), "--catalog", "shop")
    out = result.stdout.decode()
    assert result.returncode == 1, result.stderr.decode()  # some products were rejected
    assert "2 stored" in out and "1 rejected" in out and "Traceback" not in out + result.stderr.decode()
    assert "title" in out and "condition" in out and "is required" in out
    with service.engine.connect() as conn:
        assert count_products(conn, catalog.id) == 2
        items = {p["retailer_id"]: p["item"] for p in product_page(conn, catalog.id, 0, 10)}
    assert items["sku-1"]["price"] == "19.99 EUR" and items["sku-1"]["custom_label_0"] == "summer"
    assert items["sku-2"]["price"] == "12.5 USD" and items["sku-2"]["availability"] == "in stock"

    queued = metabridge(data_dir, "catalog", "sync", "shop")
    assert queued.returncode == 0, queued.stderr.decode()
    assert "queued" in queued.stdout.decode()
    with service.engine.connect() as conn:
        assert [j["status"] for j in catalog_jobs.list_jobs(conn, catalog_id=catalog.id)] == ["queued"]

    missing = metabridge(data_dir, "catalog", "import", str(products), "--catalog", "nope")
    assert missing.returncode == 2 and "no catalog named" in missing.stderr.decode()
    service.close()
