"""The metabridge service over real HTTP for tests: start it (API, optionally its worker) on a database.

Shared by every test folder (``from _service import ...``), like :mod:`_postgres`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from metabridge.api.app import create_app
from metabridge.config import Settings
from metabridge.serving import run_in_thread
from metabridge.service import Service

API_KEY = "mb_test_key"
T = TypeVar("T")


@dataclass
class RunningService:
    url: str
    service: Service
    http: httpx.Client  # authenticated

    def connection(self, **overrides: object) -> dict:
        body = {"name": "shop", "pixel_id": "1234567890", "access_token": "tok-123", **overrides}
        answer = self.http.post("/v1/connections", json=body)
        assert answer.status_code == 201, answer.text
        return answer.json()


def start_service(tmp_path: Path, database_url: str, graph_url: str, *, run_worker: bool, **settings: object):
    """(service, context manager serving its app on a free port and yielding the URL)."""
    values: dict[str, Any] = {"batch_linger_ms": 50, "retry_base_seconds": 0.05, "retry_max_seconds": 0.2, **settings}
    config = Settings(data_dir=tmp_path / "data", database_url=database_url, graph_url=graph_url, api_key=API_KEY,
                      **values)
    service = Service.open(config)
    app = create_app(service, run_worker=run_worker)
    return service, run_in_thread(app, lifespan="on")


@contextmanager
def running_service(tmp_path: Path, database_url: str, graph_url: str, *, run_worker: bool, timeout: float = 30,
                    **settings: object) -> Iterator[RunningService]:
    """The service serving its app on a free port, with a client holding the API key (``timeout`` per
    request); stopped and closed on exit. What every test folder's service fixtures yield."""
    service, server = start_service(tmp_path, database_url, graph_url, run_worker=run_worker, **settings)
    try:
        with server as url, httpx.Client(base_url=url, headers={"Authorization": f"Bearer {API_KEY}"},
                                          timeout=timeout) as http:
            yield RunningService(url, service, http)
    finally:
        service.close()


def wait_for(predicate: Callable[[], T], timeout: float = 20.0, what: str = "condition", every: float = 0.05) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")
