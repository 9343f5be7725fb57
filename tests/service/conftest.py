"""The metabridge service over real HTTP, on SQLite and on PostgreSQL (helpers shared in tests/_service.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _service import API_KEY, RunningService, start_service  # noqa: F401 - re-exported for the tests here


@pytest.fixture
def api(tmp_path: Path, database_url: str, sandbox) -> Iterator[RunningService]:
    """The API (no worker) on SQLite or PostgreSQL, Graph calls going to the sandbox."""
    service, server = start_service(tmp_path, database_url, sandbox.base_url, run_worker=False)
    with server as url, httpx.Client(base_url=url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30) as http:
        yield RunningService(url, service, http)
    service.close()
