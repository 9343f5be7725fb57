"""``/v1/connections``: one connection per Meta pixel or dataset."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from metabridge.api.deps import connection_or_404, service_of, unique_name
from metabridge.api.errors import ApiError
from metabridge.api.schemas import ConnectionCreate, ConnectionOut, ConnectionUpdate
from metabridge.events import ConnectionSettings
from metabridge.store import connections as store
from metabridge.store.connections import SETTINGS_FIELDS, StoredConnection
from metabridge.store.outbox import count_pending

router = APIRouter(prefix="/v1/connections", tags=["connections"])


def to_out(c: StoredConnection) -> ConnectionOut:
    s = c.settings
    return ConnectionOut(
        id=c.id, name=c.name, pixel_id=c.pixel_id, has_app_secret=c.has_app_secret,
        test_event_code=s.test_event_code, consent_category=s.consent_category, matching=s.matching,
        default_country=s.default_country, date_order=s.date_order, event_names=s.event_names,
        external_id_hashing=s.external_id_hashing, health="paused" if c.status == "paused" else "ok",
        paused_reason=c.paused_reason, created_at=c.created_at, updated_at=c.updated_at,
    )


def _settings(values: dict) -> ConnectionSettings:
    try:
        return ConnectionSettings(**values)
    except ValidationError as exc:
        errors = [{"field": ".".join(str(p) for p in e["loc"]), "message": str(e["msg"]).removeprefix("Value error, ")}
                  for e in exc.errors()]
        raise ApiError(422, "the connection settings are invalid", errors) from None


@router.post("", status_code=201, response_model=ConnectionOut)
def create(body: ConnectionCreate, request: Request) -> ConnectionOut:
    service = service_of(request)
    settings = _settings(body.model_dump(include={"pixel_id", *SETTINGS_FIELDS}))
    with unique_name("a connection", body.name), service.engine.begin() as conn:
        created = store.create_connection(
            conn, service.box, name=body.name, settings=settings,
            access_token=body.access_token, app_secret=body.app_secret,
        )
    return to_out(created)


@router.get("", response_model=list[ConnectionOut])
def list_all(request: Request) -> list[ConnectionOut]:
    with service_of(request).engine.connect() as conn:
        return [to_out(c) for c in store.list_connections(conn)]


@router.get("/{connection_id}", response_model=ConnectionOut)
def get_one(connection_id: int, request: Request) -> ConnectionOut:
    return to_out(connection_or_404(service_of(request), connection_id))


@router.patch("/{connection_id}", response_model=ConnectionOut)
def patch(connection_id: int, body: ConnectionUpdate, request: Request) -> ConnectionOut:
    service = service_of(request)
    current = connection_or_404(service, connection_id)
    changes = body.model_dump(exclude_unset=True)
    setting_changes = {k: v for k, v in changes.items() if k == "pixel_id" or k in SETTINGS_FIELDS}
    settings = _settings({**current.settings.model_dump(), **setting_changes}) if setting_changes else None
    with unique_name("a connection", str(changes.get("name"))), service.engine.begin() as conn:
        updated = store.update_connection(
            conn, service.box, connection_id, name=changes.get("name"), settings=settings,
            access_token=changes.get("access_token"), app_secret=changes.get("app_secret") or None,
            clear_app_secret="app_secret" in changes and not changes["app_secret"],
        )
    if updated is None:
        service.forget(connection_id)
        raise ApiError(404, f"connection {connection_id} does not exist")
    service.remember(updated)  # the new version replaces the old pipeline (and its customer cache) now
    return to_out(updated)


@router.delete("/{connection_id}", status_code=204)
def remove(connection_id: int, request: Request, force: bool = False) -> Response:
    """Delete a connection. Refused while events are still pending delivery, unless ``force=true``."""
    service = service_of(request)
    with service.engine.begin() as conn:
        pending = count_pending(conn, connection_id)
        if pending and not force:
            raise ApiError(
                409, f"connection {connection_id} still has {pending} events pending delivery; wait for them "
                "to be delivered, or delete with force=true to discard them", pending=pending,
            )
        if not store.delete_connection(conn, connection_id):
            raise ApiError(404, f"connection {connection_id} does not exist")
    service.forget(connection_id)  # its pipeline and customer cache are of no more use
    return Response(status_code=204)
