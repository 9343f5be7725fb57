"""The service over real HTTP for audience tests: API only, or API + its worker (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _service import API_KEY, RunningService, start_service


def _serve(tmp_path: Path, database_url: str, graph_url: str, *, run_worker: bool, **settings: object):
    service, server = start_service(tmp_path, database_url, graph_url, run_worker=run_worker,
                                    audience_debounce_seconds=0.05, **settings)
    return service, server


@pytest.fixture
def audience_api(tmp_path: Path, database_url: str, sandbox) -> Iterator[RunningService]:
    """The API without a worker: nothing is synced to Meta."""
    service, server = _serve(tmp_path, database_url, sandbox.base_url, run_worker=False)
    with server as url, httpx.Client(base_url=url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60) as http:
        yield RunningService(url, service, http)
    service.close()


@pytest.fixture
def audience_live(tmp_path: Path, database_url: str, sandbox) -> Iterator[RunningService]:
    """The API and its in-process worker, syncing to the sandbox."""
    service, server = _serve(tmp_path, database_url, sandbox.base_url, run_worker=True)
    with server as url, httpx.Client(base_url=url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60) as http:
        yield RunningService(url, service, http)
    service.close()
