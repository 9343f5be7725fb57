"""The running service's shared parts: settings, database, credentials, Graph API access.

One :class:`Service` per process. The API, the workers and the CLI's import commands all go through it,
so a connection's pipeline, the secret key and the Graph base URL are resolved in one place.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
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

#: Connections whose state (the last-read copy and its pipeline) one process keeps; beyond it the least
#: recently used is dropped. A pipeline's customer cache holds up to 32,768 people (~30 MB when full), so
#: without a bound a long-running API or worker process that has seen many connections would keep them all.
#: A dropped connection only costs its next call one read of the connection and a cold customer cache.
MAX_CACHED_CONNECTIONS = 256


@dataclass(frozen=True, slots=True)
class _CachedConnection:
    """A connection as last read in this process, and the pipeline built from that copy's settings."""

    connection: StoredConnection
    pipeline: EventPipeline


@dataclass
class Service:
    settings: Settings
    engine: Engine
    box: SecretBox
    #: Graph API base URL the workers and the test-event endpoint call. With the in-process sandbox it is
    #: only known once the server is listening, so ``serve`` sets it after binding.
    graph_base_url: str
    #: How many connections :attr:`_connections` keeps (see :data:`MAX_CACHED_CONNECTIONS`); 0 keeps none.
    connection_cache_size: int = MAX_CACHED_CONNECTIONS
    #: connection id -> its last-read copy and pipeline, least recently used first. The API's thread pool
    #: shares it, so every access holds ``_lock``.
    _connections: OrderedDict[int, _CachedConnection] = field(default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

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
        """The pipeline for this copy of a connection's settings; the copy becomes the known one.

        The pipeline (and its customer cache) is kept while the connection's ``updated_at`` (bumped by every
        change of its settings) stays the same, and rebuilt when a copy of another version comes.
        """
        with self._lock:
            cached = self._connections.get(connection.id)
            if cached is not None and cached.connection.updated_at == connection.updated_at:
                pipeline = cached.pipeline
            else:
                pipeline = EventPipeline(connection.settings)
            # same version, same settings; the copy given is kept (ingest, its user, reads only the settings)
            self._connections[connection.id] = _CachedConnection(connection, pipeline)
            self._connections.move_to_end(connection.id)
            while len(self._connections) > max(self.connection_cache_size, 0):
                self._connections.popitem(last=False)
            return pipeline

    def remember(self, connection: StoredConnection) -> None:
        """Keep a copy just read from the database, so the next call for it need not read it again.

        Its pipeline is built now (or kept, for the same version). Whoever uses the copy later must check
        that it is still current (ingest does so in its write transaction) and :meth:`forget` it if not.
        """
        self.pipeline(connection)

    def known_connection(self, connection_id: int) -> StoredConnection | None:
        """The connection as last read in this process (possibly out of date), or None if not kept."""
        with self._lock:
            cached = self._connections.get(connection_id)
            if cached is None:
                return None
            self._connections.move_to_end(connection_id)
            return cached.connection

    def forget(self, connection_id: int) -> None:
        """Drop a connection's copy and pipeline: it was deleted, or changed since it was read."""
        with self._lock:
            self._connections.pop(connection_id, None)

    def cached_connection_ids(self) -> list[int]:
        """Ids of the connections kept, least recently used first (for diagnostics and tests)."""
        with self._lock:
            return list(self._connections)

    def close(self) -> None:
        self.engine.dispose()
