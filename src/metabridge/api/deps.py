"""Shared route helpers: the service, a row looked up by id with a clear 404, unique names as a clear 409.

Every resource route (connections, ad accounts, audiences, catalogs) answers a missing id and a taken
name the same way; these helpers keep the status codes and message shapes in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from fastapi import Request
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from metabridge.api.errors import ApiError
from metabridge.service import Service
from metabridge.store.connections import StoredConnection, get_connection
from metabridge.store.db import read_only

__all__ = ["connection_or_404", "lookup_or_404", "service_of", "unique_name"]

T = TypeVar("T")


def service_of(request: Request) -> Service:
    return request.app.state.service


def lookup_or_404(service: Service, lookup: Callable[[Connection], T | None], missing: str) -> T:
    """What ``lookup`` finds, read in a short read-only connection of its own, or a 404 saying ``missing``.

    Routes call it before their real work so that a wrong id answers 404 before anything is sent to
    Meta or written. The read never waits for the SQLite writer lock (:func:`~metabridge.store.db.read_only`).
    """
    with read_only(service.engine) as conn:
        found = lookup(conn)
    if found is None:
        raise ApiError(404, missing)
    return found


def connection_or_404(service: Service, connection_id: int) -> StoredConnection:
    return lookup_or_404(service, lambda conn: get_connection(conn, connection_id),
                         f"connection {connection_id} does not exist")


@contextmanager
def unique_name(kind: str, name: str) -> Iterator[None]:
    """Answer 409 when a create or rename inside the block breaks the unique-name constraint.

    The database, not a read before the write, decides, so two concurrent creates cannot both pass.
    ``kind`` comes with its article ("a catalog", "an ad account").
    """
    try:
        yield
    except IntegrityError:
        raise ApiError(409, f"{kind} named '{name}' already exists",
                       [{"field": "name", "message": "must be unique"}]) from None
