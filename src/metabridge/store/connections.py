"""Connections (one per Meta pixel or dataset): stored settings, encrypted credentials, health."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, case, delete, insert, select, update

from metabridge.credentials import SecretBox
from metabridge.events import ConnectionSettings
from metabridge.store.credentialed import Credentialed, credential_changes, encrypted_credentials, find_by_id_or_name
from metabridge.store.schema import connections
from metabridge.timeutil import now_ms

#: ConnectionSettings fields kept in the ``settings`` JSON column (pixel_id has its own column).
SETTINGS_FIELDS = tuple(name for name in ConnectionSettings.model_fields if name != "pixel_id")


@dataclass(frozen=True, slots=True)
class StoredConnection(Credentialed):
    """A connection as workers and the API use it; credentials decrypted only when asked for."""

    id: int
    name: str
    pixel_id: str
    settings: ConnectionSettings
    status: str
    paused_reason: str | None
    paused_at: int | None
    throttled_until: int | None
    created_at: int
    updated_at: int
    _access_token: str
    _app_secret: str | None

    def __repr__(self) -> str:  # never show credentials, even encrypted
        return f"StoredConnection(id={self.id}, name={self.name!r}, pixel_id={self.pixel_id!r}, status={self.status!r})"


def _from_row(row: Any) -> StoredConnection:
    settings = ConnectionSettings(pixel_id=row.pixel_id, **(row.settings or {}))
    return StoredConnection(
        id=row.id, name=row.name, pixel_id=row.pixel_id, settings=settings, status=row.status,
        paused_reason=row.paused_reason, paused_at=row.paused_at, throttled_until=row.throttled_until,
        created_at=row.created_at, updated_at=row.updated_at,
        _access_token=row.access_token, _app_secret=row.app_secret,
    )


def create_connection(
    conn: Connection, box: SecretBox, *, name: str, settings: ConnectionSettings,
    access_token: str, app_secret: str | None = None,
) -> StoredConnection:
    now = now_ms()
    new_id = conn.execute(
        insert(connections).values(
            name=name, pixel_id=settings.pixel_id, **encrypted_credentials(box, access_token, app_secret),
            settings=settings.model_dump(include=set(SETTINGS_FIELDS)), status="ok",
            created_at=now, updated_at=now,
        ).returning(connections.c.id)
    ).scalar_one()
    found = get_connection(conn, new_id)
    assert found is not None
    return found


def get_connection(conn: Connection, connection_id: int) -> StoredConnection | None:
    row = conn.execute(select(connections).where(connections.c.id == connection_id)).first()
    return _from_row(row) if row else None


def find_connection(conn: Connection, id_or_name: str) -> StoredConnection | None:
    """By numeric id or by name (CLI users type names)."""
    return find_by_id_or_name(conn, connections, id_or_name, _from_row)


def list_connections(conn: Connection) -> list[StoredConnection]:
    return [_from_row(row) for row in conn.execute(select(connections).order_by(connections.c.id))]


def update_connection(
    conn: Connection, box: SecretBox, connection_id: int, *, name: str | None = None,
    settings: ConnectionSettings | None = None, access_token: str | None = None,
    app_secret: str | None = None, clear_app_secret: bool = False,
) -> StoredConnection | None:
    """Apply changes. New credentials resume a paused connection: the pause was about them.

    ``updated_at`` is the connection's version (ingest and the pipeline cache compare it): it always moves
    forward, by at least 1 ms, so two changes within one millisecond are still two versions.
    """
    now = now_ms()
    current = connections.c.updated_at
    values: dict[str, Any] = {"updated_at": case((current + 1 > now, current + 1), else_=now)}
    if name is not None:
        values["name"] = name
    if settings is not None:
        values["pixel_id"] = settings.pixel_id
        values["settings"] = settings.model_dump(include=set(SETTINGS_FIELDS))
    values.update(credential_changes(box, access_token=access_token, app_secret=app_secret,
                                     clear_app_secret=clear_app_secret))
    if access_token is not None or app_secret is not None or settings is not None:
        values.update(status="ok", paused_reason=None, paused_at=None)
    result = conn.execute(update(connections).where(connections.c.id == connection_id).values(**values))
    return get_connection(conn, connection_id) if result.rowcount else None


def delete_connection(conn: Connection, connection_id: int) -> bool:
    return bool(conn.execute(delete(connections).where(connections.c.id == connection_id)).rowcount)


def pause_connection(conn: Connection, connection_id: int, reason: str) -> None:
    """A token or permission problem: stop sending until a person fixes the connection."""
    conn.execute(
        update(connections).where(connections.c.id == connection_id)
        .values(status="paused", paused_reason=reason, paused_at=now_ms())
    )


def throttle_connection(conn: Connection, connection_id: int, until_ms: int) -> None:
    conn.execute(update(connections).where(connections.c.id == connection_id).values(throttled_until=until_ms))
