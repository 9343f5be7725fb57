"""Bearer API keys on every ``/v1`` route."""

from __future__ import annotations

from fastapi import Request

from metabridge.api.errors import ApiError
from metabridge.credentials import same_key
from metabridge.store.apikeys import is_valid_key


def require_api_key(request: Request) -> None:
    """FastAPI dependency: 401 with a JSON error unless a valid key is presented."""
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError(401, "missing API key: send 'Authorization: Bearer <key>'")
    key = key.strip()
    service = request.app.state.service
    configured = service.settings.api_key
    if configured and same_key(key, configured):
        return
    with service.engine.connect() as conn:
        if is_valid_key(conn, key):
            return
    raise ApiError(401, "invalid API key")
