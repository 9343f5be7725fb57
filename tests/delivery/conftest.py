"""Delivery test environment: a SQLite file database per test and the session's sandbox over HTTP.

The sandbox is the root conftest's (``sandbox_url``: uvicorn in a thread); each test resets it first.

No mocks: events go through the real pipeline and outbox, the worker talks HTTP to the sandbox app
served by uvicorn, and faults / token revocations are set through the sandbox's control endpoints.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from delivery_support import DeliveryEnv
from metabridge.config import Settings
from metabridge.credentials import SecretBox
from metabridge.store.db import make_engine
from metabridge.store.migrate import upgrade


@pytest.fixture
def env(tmp_path: Path, sandbox_url: str) -> Iterator[DeliveryEnv]:
    control = httpx.Client(base_url=sandbox_url, timeout=10)
    control.post("/_sandbox/reset").raise_for_status()
    engine = make_engine(f"sqlite:///{tmp_path / 'metabridge.db'}")
    upgrade(engine)
    settings = Settings(
        data_dir=tmp_path, batch_linger_ms=0, retry_base_seconds=1.0, retry_max_seconds=5.0, lease_seconds=120,
    )
    environment = DeliveryEnv(engine, settings, SecretBox(Fernet.generate_key()), sandbox_url, control, [])
    try:
        yield environment
    finally:
        for graph in environment.graphs:
            graph.close()
        control.close()
        engine.dispose()
