"""The metabridge service over real HTTP, on SQLite and on PostgreSQL (helpers shared in tests/_service.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _service import API_KEY, RunningService, running_service, start_service  # noqa: F401 - re-exported for the tests here


@pytest.fixture
def api(tmp_path: Path, database_url: str, sandbox) -> Iterator[RunningService]:
    """The API (no worker) on SQLite or PostgreSQL, Graph calls going to the sandbox."""
    with running_service(tmp_path, database_url, sandbox.base_url, run_worker=False) as running:
        yield running
