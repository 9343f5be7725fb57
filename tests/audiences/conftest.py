"""The service over real HTTP for audience tests: API only, or API + its worker (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _service import RunningService, running_service


def _serve(tmp_path: Path, database_url: str, graph_url: str, *, run_worker: bool, **settings: object):
    return running_service(tmp_path, database_url, graph_url, run_worker=run_worker, timeout=60,
                           audience_debounce_seconds=0.05, **settings)


@pytest.fixture
def audience_api(tmp_path: Path, database_url: str, sandbox) -> Iterator[RunningService]:
    """The API without a worker: nothing is synced to Meta."""
    with _serve(tmp_path, database_url, sandbox.base_url, run_worker=False) as running:
        yield running


@pytest.fixture
def audience_live(tmp_path: Path, database_url: str, sandbox) -> Iterator[RunningService]:
    """The API and its in-process worker, syncing to the sandbox."""
    with _serve(tmp_path, database_url, sandbox.base_url, run_worker=True) as running:
        yield running
