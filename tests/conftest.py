"""Shared fixtures: a real sandbox served over HTTP, and a builder of valid Conversions API events.

The sandbox runs once per test session with uvicorn in a background thread on a free 127.0.0.1 port
(:func:`metabridge.serving.run_in_thread`); tests talk to it over real HTTP. Use ``sandbox`` (fresh
state per test) unless a test only needs a URL and does not care what other tests left behind.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

try:
    import metabridge  # noqa: F401
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from metabridge.sandbox import SandboxState, create_sandbox_app
from metabridge.serving import run_in_thread
from _postgres import fresh_database, postgres_server  # noqa: E402
from metabridge.sandbox.control import SandboxControl


def sha256_hex(text: str) -> str:
    """Lowercase SHA-256 hex of ``text`` (what metabridge sends for hashed keys)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[tuple[str, SandboxState]]:
    """One sandbox for the whole session: ``(base_url, state)``."""
    state = SandboxState()
    with run_in_thread(create_sandbox_app(state)) as url:
        yield url, state


@pytest.fixture(scope="session")
def sandbox_url(sandbox_server: tuple[str, SandboxState]) -> str:
    """Base URL of the session's sandbox, e.g. ``http://127.0.0.1:54321`` (state shared across tests)."""
    return sandbox_server[0]


@pytest.fixture(scope="session")
def sandbox_state(sandbox_server: tuple[str, SandboxState]) -> SandboxState:
    """The in-memory state behind ``sandbox_url`` (for assertions that the HTTP API does not cover)."""
    return sandbox_server[1]


@pytest.fixture
def sandbox(sandbox_server: tuple[str, SandboxState]) -> Iterator[SandboxControl]:
    """The session's sandbox, reset before and after the test, as a control client.

    ``sandbox.base_url`` is its URL and ``sandbox.http`` an httpx client on it for raw Graph calls.
    """
    url, state = sandbox_server
    state.reset()
    with SandboxControl(url) as control:
        yield control
    state.reset()


@pytest.fixture
def make_event() -> Callable[..., dict[str, Any]]:
    """Builder of a valid website Purchase event; keyword arguments override top-level fields."""

    def build(**overrides: Any) -> dict[str, Any]:
        event: dict[str, Any] = {
            "event_name": "Purchase",
            "event_time": int(time.time()) - 60,
            "event_id": "order-1001",
            "action_source": "website",
            "event_source_url": "https://shop.example.com/checkout/done",
            "user_data": {
                "em": [sha256_hex("john_smith@gmail.com")],
                "ph": [sha256_hex("16505551212")],
                "external_id": [sha256_hex("abc123")],
                "client_ip_address": "203.0.113.7",
                "client_user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
                "fbc": "fb.1.1554763741205.IwAR2F4-dbP0l7Mn1IawQQGCINEz7PYXQvwjNwB_qa2ofrHyiLjcbCRxTDMgk",
                "fbp": "fb.1.1596403881668.1116446470",
            },
            "custom_data": {"value": 142.52, "currency": "usd"},
        }
        event.update(overrides)
        return event

    return build


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server for the session: the one on 127.0.0.1:5432, or a throwaway one."""
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each test using this runs twice: on a SQLite file and on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'metabridge.db'}"
    else:
        with fresh_database(request.getfixturevalue("postgres_url")) as url:
            yield url
