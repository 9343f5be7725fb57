"""The metabridge service over real HTTP, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from metabridge.api.app import create_app
from metabridge.config import Settings
from metabridge.serving import run_in_thread
from metabridge.service import Service

API_KEY = "mb_test_key"


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
    config = Settings(
        data_dir=tmp_path / "data", database_url=database_url, graph_url=graph_url,
        api_key=API_KEY, batch_linger_ms=50, retry_base_seconds=0.05, retry_max_seconds=0.2, **settings,
    )
    service = Service.open(config)
    app = create_app(service, run_worker=run_worker)
    return service, run_in_thread(app, lifespan="on")


@pytest.fixture
def api(tmp_path: Path, database_url: str, sandbox) -> Iterator[RunningService]:
    """The API (no worker) on SQLite or PostgreSQL, Graph calls going to the sandbox."""
    service, server = start_service(tmp_path, database_url, sandbox.base_url, run_worker=False)
    with server as url, httpx.Client(base_url=url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30) as http:
        yield RunningService(url, service, http)
    service.close()
