"""catalog: a 100,000-product first sync to the Graph API sandbox, then a re-sync after 1% change.

The Meta side is a ``metabridge sandbox`` process (its CPU and memory are not in the measured process);
this process holds the store (SQLite by default, ``--database-url`` for PostgreSQL) and runs a
:class:`~metabridge.delivery.catalogs.CatalogWorker` pass, exactly what the catalog thread of
``metabridge worker`` runs. Phases:

1. **import** (reported, not part of the sync figures): N products validated and stored through
   :func:`metabridge.catalog_ingest.store_products` in chunks of 50,000 (one ``PUT .../products`` each).
2. **first sync**: every product is new. items/s = items Meta confirmed / wall time of the worker pass
   (diff, items_batch calls, polling until finished, confirmations). Peak memory = the process's peak RSS
   during the pass above its RSS before it (Linux ``VmHWM`` reset first).
3. **re-sync after 1% change**: N/100 products changed (a new price and title), then a second pass. It must
   send exactly those items: the sandbox's request log gives the requests per items_batch call, and the
   sandbox's catalog is compared with what was stored.

Graph calls are counted from the sandbox's request log (items_batch, check_batch_request_status).
Goals (issue 5): first sync under 60 s, re-sync under 5 s. Memory: a first sync of N/10 products runs
first (its own store and sandbox); the peak of the N-product first sync must stay within 1.5 times it plus
16 MB, i.e. bounded by the items_batch call, not by the catalog (the open batches' items once grew with it).

Run: ``python -m benchmarks catalog [--products N] [--database-url URL]``.
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from benchmarks.events_core import PeakMemory

NAME = "catalog"
CATALOG = "700100200"
DEFAULT_PRODUCTS = 100_000
IMPORT_CHUNK = 50_000


def make_product(i: int, version: int = 0) -> dict[str, Any]:
    """Product ``i`` in the shop's terms; ``version`` > 0 changes its price and title."""
    return {
        "id": f"sku-{i:07d}", "title": f"Product {i}" + (f" (v{version})" if version else ""),
        "description": f"Product number {i}: a plain description of a reasonable length for a shop item.",
        "availability": "in stock" if i % 10 else "out of stock", "condition": "new",
        "price": {"amount": f"{(i % 5000) / 100 + 1 + version:.2f}", "currency": "EUR"},
        "link": f"https://shop.example/p/{i}", "image_link": f"https://cdn.shop.example/img/{i}.jpg",
        "brand": ("Acme", "Globex", "Initech")[i % 3], "item_group_id": f"g{i // 4}",
        "google_product_category": "Apparel & Accessories > Clothing", "inventory": i % 37,
        "custom_label_0": ("summer", "winter")[i % 2],
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_sandbox(log_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    log = open(log_dir / "sandbox.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen([sys.executable, "-m", "metabridge.cli.main", "sandbox", "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the sandbox exited; see {log_dir / 'sandbox.log'}")
        try:
            if httpx.get(f"{url}/_sandbox/stats", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError("the sandbox did not start")


def _graph_calls(control: Any, since: int) -> tuple[Counter[str], list[int]]:
    """Graph calls after the first ``since`` of the log, by kind, and the requests of each items_batch call."""
    log = control.requests(limit=10_000)[since:]
    kinds: Counter[str] = Counter()
    rows: list[int] = []
    for entry in log:
        path = entry["path"]
        if path.endswith("/items_batch"):
            kinds["items_batch"] += 1
            rows.append(entry["rows_count"])
        elif path.endswith("/check_batch_request_status"):
            kinds["check_batch_request_status"] += 1
        else:
            kinds["other"] += 1
    return kinds, rows


def _sync(worker: Any, engine: Any, catalog_id: int) -> tuple[dict[str, Any], float, float]:
    """Queue a sync and run one worker pass: (job, seconds, peak MB)."""
    from metabridge.store import catalog_jobs
    from metabridge.timeutil import now_ms

    with engine.begin() as conn:
        job_id, _ = catalog_jobs.request_sync(conn, catalog_id, trigger="manual", now=now_ms())
    gc.collect()
    with PeakMemory() as peak:
        started = time.perf_counter()
        worker.run_once()
        elapsed = time.perf_counter() - started
    with engine.connect() as conn:
        job = catalog_jobs.get_job(conn, job_id)
    assert job is not None
    return job, elapsed, peak.peak_mb


def run(products: int, database_url: str | None, work: Path) -> dict[str, Any]:
    from metabridge.catalog_ingest import store_products
    from metabridge.config import Settings
    from metabridge.delivery.catalogs import CatalogWorker
    from metabridge.sandbox.control import SandboxControl
    from metabridge.service import Service
    from metabridge.store.catalogs import create_catalog

    sandbox, url = _start_sandbox(work)
    try:
        settings = Settings(data_dir=work / "data", database_url=database_url or "", graph_url=url, log_level="warning")
        service = Service.open(settings)
        control = SandboxControl(url, timeout=120)
        with service.engine.begin() as conn:
            catalog = create_catalog(conn, service.box, name=f"bench-{time.time_ns()}", catalog_id=CATALOG,
                                     access_token="bench-token", app_secret=None, schedule="off", currency=None)
        started = time.perf_counter()
        for start in range(0, products, IMPORT_CHUNK):
            chunk = [make_product(i) for i in range(start, min(products, start + IMPORT_CHUNK))]
            outcome = store_products(service.engine, catalog, chunk, start_index=start)
            assert not outcome.rejected, outcome.rejected[:3]
        import_s = time.perf_counter() - started

        with service.graph_client() as graph:
            worker = CatalogWorker(service.engine, settings, service.box, graph)
            log_start = len(control.requests(limit=10_000))
            first, first_s, first_mb = _sync(worker, service.engine, catalog.id)
            first_calls, first_rows = _graph_calls(control, log_start)
            assert first["status"] == "done", first["error"]

            changed = list(range(0, products, 100))  # 1%
            store_products(service.engine, catalog, [make_product(i, version=1) for i in changed])
            log_start = len(control.requests(limit=10_000))
            second, second_s, second_mb = _sync(worker, service.engine, catalog.id)
            second_calls, second_rows = _graph_calls(control, log_start)
            assert second["status"] == "done", second["error"]

        held = control.catalog_items(CATALOG)
        exact = (
            sum(second_rows) == len(changed) and second["items_updated"] == len(changed)
            and second["items_created"] == 0 and second["items_deleted"] == 0
            and len(held) == products
            and all(held[f"sku-{i:07d}"]["title"] == f"Product {i} (v1)" for i in changed)
            and held["sku-0000001"]["title"] == "Product 1"
        )
        service.close()
        control.close()
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=30)
    return {
        "products": products, "database": "postgresql" if database_url else "sqlite",
        "import_s": import_s, "import_per_s": products / import_s,
        "first": {"seconds": first_s, "items_per_s": first["items_created"] / first_s, "peak_mb": first_mb,
                  "items_confirmed": first["items_created"], "graph_calls": dict(first_calls),
                  "requests_per_call": first_rows},
        "resync": {"seconds": second_s, "items_per_s": len(changed) / second_s, "peak_mb": second_mb,
                   "changed": len(changed), "items_sent": sum(second_rows), "graph_calls": dict(second_calls),
                   "exactly_the_changed_items": exact},
    }


def report(result: dict[str, Any]) -> str:
    first, resync = result["first"], result["resync"]
    lines = [
        f"catalog benchmark: {result['products']:,} products, {result['database']}",
        f"  import (validate + store):  {result['import_s']:6.1f} s  ({result['import_per_s']:,.0f} products/s)",
        f"  first sync:                 {first['seconds']:6.1f} s  ({first['items_per_s']:,.0f} items/s, "
        f"peak +{first['peak_mb']:.0f} MB)  goal < 60 s: {'met' if first['seconds'] < 60 else 'MISSED'}",
        f"    Graph calls: {first['graph_calls']}  (requests per items_batch call: {first['requests_per_call']})",
        f"  re-sync after 1% change:    {resync['seconds']:6.2f} s  ({resync['changed']:,} changed, "
        f"{resync['items_sent']:,} sent, peak +{resync['peak_mb']:.0f} MB)  goal < 5 s: "
        f"{'met' if resync['seconds'] < 5 else 'MISSED'}",
        f"    Graph calls: {resync['graph_calls']}",
        f"    exactly the changed items sent, and the sandbox's catalog equals the store: "
        f"{'yes' if resync['exactly_the_changed_items'] else 'NO'}",
    ]
    return "\n".join(lines)


def _run_in_fresh_process(products: int, database_url: str | None) -> dict[str, Any]:
    """:func:`run` in a process of its own, so that its peak memory owes nothing to an earlier run (memory a
    run freed stays with the process and would be reused by the next one)."""
    with tempfile.TemporaryDirectory(prefix="metabridge-bench-catalog-") as tmp, \
            ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(run, products, database_url, Path(tmp)).result()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks catalog", description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=DEFAULT_PRODUCTS)
    parser.add_argument("--database-url", default=os.environ.get("METABRIDGE_BENCH_DATABASE_URL"),
                        help="PostgreSQL URL (a fresh database); default: SQLite in a temporary folder")
    args = parser.parse_args(argv)
    small_products = max(args.products // 10, 1)
    small = _run_in_fresh_process(small_products, args.database_url)
    result = _run_in_fresh_process(args.products, args.database_url)
    print(report(result))
    peak, small_peak = result["first"]["peak_mb"], small["first"]["peak_mb"]
    bounded = peak <= 1.5 * small_peak + 16
    print(f"  memory bounded by the batch:  first sync peak +{peak:.0f} MB at {args.products:,} vs "
          f"+{small_peak:.0f} MB at {small_products:,} (goal <= 1.5 x + 16 MB): {'met' if bounded else 'MISSED'}")
    ok = result["resync"]["exactly_the_changed_items"] and result["first"]["items_confirmed"] == args.products
    return 0 if ok and bounded else 1


if __name__ == "__main__":
    raise SystemExit(main())
