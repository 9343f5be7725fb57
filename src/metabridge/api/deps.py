"""Shared route helpers: the service, and a connection looked up by id with a clear 404."""

from __future__ import annotations

from fastapi import Request

from metabridge.api.errors import ApiError
from metabridge.service import Service
from metabridge.store.connections import StoredConnection, get_connection
from metabridge.store.db import read_only


def service_of(request: Request) -> Service:
    return request.app.state.service


def connection_or_404(service: Service, connection_id: int) -> StoredConnection:
    with read_only(service.engine) as conn:
        found = get_connection(conn, connection_id)
    if found is None:
        raise ApiError(404, f"connection {connection_id} does not exist")
    return found
