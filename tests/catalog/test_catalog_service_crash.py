"""A worker process killed after its items_batch calls and before Meta's confirmation: another resumes it.

The first ``metabridge worker`` sends the three calls of a 15,000-product sync (their handles stored) and is
killed (SIGKILL) while it polls the first handle; the second one, once the lease expired, polls the stored
handles instead of sending anything again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from catalog_support import META_CATALOG, catalog_api, create_catalog, product, put_products  # noqa: F401
from _service import RunningService, wait_for


def start_worker(env: dict[str, str]) -> subprocess.Popen:
    """A ``metabridge worker`` process; its log goes to a file (a pipe nobody reads would block it once full)."""
    with (Path(env["METABRIDGE_DATA_DIR"]) / "workers.log").open("ab") as log:
        return subprocess.Popen([sys.executable, "-m", "metabridge.cli.main", "worker"], env=env,
                                stdout=subprocess.DEVNULL, stderr=log)


def test_killed_worker_between_items_batch_and_confirmation_resumes_without_resending(
    catalog_api: RunningService, database_url: str, sandbox
) -> None:
    api = catalog_api
    catalog = create_catalog(api, schedule="off")["id"]
    put_products(api, catalog, [product(i) for i in range(15_000)])
    sandbox.set_batch_in_progress_polls(6)  # Meta takes a while: each handle answers "started" 6 times
    env = {
        **os.environ,
        "METABRIDGE_DATA_DIR": str(api.service.settings.data_dir),
        "METABRIDGE_DATABASE_URL": database_url,
        "METABRIDGE_GRAPH_URL": sandbox.base_url,
        "METABRIDGE_LEASE_SECONDS": "6",
        "METABRIDGE_GRAPH_TIMEOUT_SECONDS": "2.5",
        "METABRIDGE_LOG_LEVEL": "warning",
    }
    job_id = api.http.post(f"/v1/catalogs/{catalog}/sync").json()["id"]

    def job() -> dict:
        return api.http.get(f"/v1/jobs/{job_id}").json()

    first = start_worker(env)
    try:
        wait_for(lambda: len(job()["batches"]) == 3, timeout=120, what="three handles stored", every=0.02)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    interrupted = job()
    assert interrupted["status"] == "running" and interrupted["items_created"] == 0
    assert [b["status"] for b in interrupted["batches"]] == ["sent"] * 3 and all(b["handle"] for b in interrupted["batches"])
    assert sandbox.batch_calls(META_CATALOG) == 3

    second = start_worker(env)
    try:
        done = wait_for(lambda: (j := job())["status"] in ("done", "failed") and j, timeout=120, what="the resumed sync")
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=60)
    assert done["status"] == "done" and done["attempts"] == 2, done
    assert done["items_created"] == 15_000 and [b["status"] for b in done["batches"]] == ["finished"] * 3
    assert sandbox.batch_calls(META_CATALOG) == 3  # the stored handles were polled, nothing was sent again
    assert len(sandbox.catalog_items(META_CATALOG)) == 15_000
    assert api.http.get(f"/v1/catalogs/{catalog}").json()["items_in_meta"] == 15_000
