"""Shared route helpers: the service, and a connection looked up by id with a clear 404."""

from __future__ import annotations

import threading
import weakref

from fastapi import Request
from sqlalchemy import Engine, bindparam, select

from metabridge.api.errors import ApiError
from metabridge.service import Service
from metabridge.store.connections import StoredConnection, get_connection
from metabridge.store.db import read_only
from metabridge.store.schema import connections


def service_of(request: Request) -> Service:
    return request.app.state.service


def connection_or_404(service: Service, connection_id: int) -> StoredConnection:
    with read_only(service.engine) as conn:
        found = get_connection(conn, connection_id)
    if found is None:
        raise ApiError(404, f"connection {connection_id} does not exist")
    return found


_UPDATED_AT = select(connections.c.updated_at).where(connections.c.id == bindparam("id"))
#: engine -> connection id -> the connection as last read (StoredConnection is immutable).
_settings_cache: weakref.WeakKeyDictionary[Engine, dict[int, StoredConnection]] = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()


def connection_settings_or_404(service: Service, connection_id: int) -> StoredConnection:
    """The connection for ingest: its id and current settings, read in full only when they changed.

    Every change of settings bumps ``updated_at``, so one indexed look-up of that column tells whether
    the copy read before is still current. Building a connection (its settings model) for each call was
    a fifth of the CPU of a small ingest call. Status and throttling may be older than the database
    (they do not bump ``updated_at``): ingest does not use them, other routes use :func:`connection_or_404`.
    """
    with _cache_lock:
        known = _settings_cache.setdefault(service.engine, {})
    with read_only(service.engine) as conn:
        updated_at = conn.execute(_UPDATED_AT, {"id": connection_id}).scalar_one_or_none()
        if updated_at is None:
            raise ApiError(404, f"connection {connection_id} does not exist")
        cached = known.get(connection_id)
        if cached is not None and cached.updated_at == updated_at:
            return cached
        found = get_connection(conn, connection_id)
    if found is None:
        raise ApiError(404, f"connection {connection_id} does not exist")
    known[connection_id] = found
    return found
