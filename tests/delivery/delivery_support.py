"""Helpers for the delivery tests: event factory and :class:`DeliveryEnv` (used through conftest fixtures).

Everything goes through public entry points: the real pipeline and outbox for ingest, the sandbox's
HTTP control endpoints for faults and token revocation, plain SELECTs to inspect the outcome.
"""

from __future__ import annotations

from collections.abc import Sequence

from dataclasses import dataclass, replace
from typing import Any

import httpx
from sqlalchemy import Engine, select

from metabridge.config import Settings
from metabridge.credentials import SecretBox
from metabridge.delivery import DeliveryWorker
from metabridge.events import ConnectionSettings, EventPipeline
from metabridge.graph import GraphClient
from metabridge.store.connections import StoredConnection, create_connection, get_connection
from metabridge.store.outbox import enqueue
from metabridge.store.schema import delivery_requests, events
from metabridge.timeutil import now_ms

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


def purchase(n: int, *, timestamp_ms: int | None = None, action_source: str | None = None, **extra: Any) -> dict[str, Any]:
    """A website Purchase the sandbox accepts (hashed email, IP, user agent, URL, value, currency)."""
    event: dict[str, Any] = {
        "event": "purchase",
        "event_id": f"ord-{n}",
        "url": "https://shop.example/checkout",
        "user": {"email": f"buyer{n}@example.com", "ip": "203.0.113.7", "user_agent": "Mozilla/5.0"},
        "properties": {"value": 10 + n, "currency": "EUR"},
    }
    if timestamp_ms is not None:
        event["timestamp"] = timestamp_ms
    if action_source is not None:
        event["action_source"] = action_source
    event.update(extra)
    return event


@dataclass
class DeliveryEnv:
    """Everything a delivery test needs, with small helpers that use only public entry points."""

    engine: Engine
    settings: Settings
    box: SecretBox
    sandbox_url: str
    control: httpx.Client
    graphs: list[GraphClient]

    # -- setup -----------------------------------------------------------------------------------------
    def graph(self, *, timeout: float = 10.0) -> GraphClient:
        client = GraphClient(base_url=self.sandbox_url, timeout=timeout)
        self.graphs.append(client)
        return client

    def worker(self, *, timeout: float = 10.0, worker_id: str | None = None, **settings: Any) -> DeliveryWorker:
        return DeliveryWorker(
            self.engine, replace(self.settings, **settings), self.box, self.graph(timeout=timeout), worker_id
        )

    def connection(
        self, pixel_id: str = "111", *, token: str = "token-111", app_secret: str | None = None, **settings: Any
    ) -> StoredConnection:
        with self.engine.begin() as conn:
            return create_connection(
                conn, self.box, name=f"shop-{pixel_id}", settings=ConnectionSettings(pixel_id=pixel_id, **settings),
                access_token=token, app_secret=app_secret,
            )

    def enqueue(
        self, connection: StoredConnection, raws: Sequence[dict[str, Any]], *, received_ms: int | None = None
    ) -> list[str]:
        """Run raw events through the real pipeline and store them; returns their event ids."""
        received = now_ms() if received_ms is None else received_ms
        pipeline = EventPipeline(connection.settings)
        decisions = [pipeline.process(raw, index=i, now_ms=received, received_ms=received) for i, raw in enumerate(raws)]
        assert all(d.action == "send" for d in decisions), [d.summary() for d in decisions if d.action != "send"]
        with self.engine.begin() as conn:
            result = enqueue(conn, connection.id, decisions, received)
        assert result.pending == len(raws)
        return [d.event_id or "" for d in decisions]

    # -- database --------------------------------------------------------------------------------------
    def rows(self, connection_id: int | None = None) -> dict[str, Any]:
        """Event rows by event_id."""
        query = select(events).order_by(events.c.id)
        if connection_id is not None:
            query = query.where(events.c.connection_id == connection_id)
        with self.engine.connect() as conn:
            return {row.event_id: row for row in conn.execute(query)}

    def requests(self) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(select(delivery_requests).order_by(delivery_requests.c.id)))

    def stored_connection(self, connection_id: int) -> StoredConnection:
        with self.engine.connect() as conn:
            found = get_connection(conn, connection_id)
        assert found is not None
        return found

    # -- sandbox ---------------------------------------------------------------------------------------
    def sandbox_events(self, pixel_id: str = "111", *, test: bool = False) -> list[dict[str, Any]]:
        answer = self.control.get(f"/_sandbox/pixels/{pixel_id}/events", params={"test": test, "limit": 10_000})
        answer.raise_for_status()
        return answer.json()["data"]

    def sandbox_event_ids(self, pixel_id: str = "111", *, test: bool = False) -> list[str]:
        return [e["event"]["event_id"] for e in self.sandbox_events(pixel_id, test=test)]

    def sandbox_requests(self) -> list[dict[str, Any]]:
        answer = self.control.get("/_sandbox/requests", params={"limit": 10_000})
        answer.raise_for_status()
        return answer.json()["data"]

    def fault(self, **spec: Any) -> None:
        self.control.post("/_sandbox/faults", json=spec).raise_for_status()

    def revoke(self, token: str) -> None:
        self.control.post("/_sandbox/tokens/revoke", json={"token": token}).raise_for_status()


