"""The running service's shared parts: settings, database, credentials, Graph API access.

One :class:`Service` per process. The API, the workers and the CLI's import commands all go through it,
so a connection's pipeline, the secret key and the Graph base URL are resolved in one place.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from sqlalchemy import Engine

from metabridge.config import Settings
from metabridge.credentials import SecretBox, load_or_create_key
from metabridge.events import EventPipeline
from metabridge.graph import GraphClient
from metabridge.store import migrate
from metabridge.store.connections import StoredConnection
from metabridge.store.db import make_engine

#: Where ``metabridge serve`` mounts the sandbox when no real Graph API URL is configured.
SANDBOX_MOUNT = "/graph"


@dataclass
class Service:
    settings: Settings
    engine: Engine
    box: SecretBox
    #: Graph API base URL the workers and the test-event endpoint call. With the in-process sandbox it is
    #: only known once the server is listening, so ``serve`` sets it after binding.
    graph_base_url: str
    _pipelines: dict[int, tuple[int, EventPipeline]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def open(cls, settings: Settings, *, migrate_schema: bool = True, graph_base_url: str | None = None) -> Service:
        engine = make_engine(settings.resolved_database_url)
        if migrate_schema:
            migrate.upgrade(engine)
        box = SecretBox(load_or_create_key(settings.secret_key, settings.data_dir))
        base = graph_base_url or ("" if settings.uses_sandbox else settings.graph_url)
        return cls(settings=settings, engine=engine, box=box, graph_base_url=base)

    def graph_client(self) -> GraphClient:
        if not self.graph_base_url:
            raise RuntimeError("the Graph API URL is not known yet (the sandbox is not mounted)")
        return GraphClient(
            base_url=self.graph_base_url, version=self.settings.graph_version,
            timeout=self.settings.graph_timeout_seconds,
        )

    def pipeline(self, connection: StoredConnection) -> EventPipeline:
        """The pipeline for a connection's current settings (rebuilt when the connection changes)."""
        with self._lock:
            cached = self._pipelines.get(connection.id)
            if cached is None or cached[0] != connection.updated_at:
                cached = self._pipelines[connection.id] = (connection.updated_at, EventPipeline(connection.settings))
            return cached[1]

    def close(self) -> None:
        self.engine.dispose()
