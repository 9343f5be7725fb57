"""Bearer API keys on every ``/v1`` route.

Keys are stored as SHA-256 hashes (:mod:`metabridge.store.apikeys`). A key found valid is remembered
for :data:`KEY_CACHE_SECONDS`, so a busy client (a CDP posting many batches a second) does not cost a
database read per call; a revoked key therefore stops working within that time. Unknown or wrong keys
are never remembered: each such call is checked against the database.
"""

from __future__ import annotations

import time

from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from metabridge.api.errors import ApiError
from metabridge.credentials import hash_api_key, same_key
from metabridge.service import Service
from metabridge.store.apikeys import is_valid_key_hash
from metabridge.store.db import read_only

#: How long a key found valid is accepted without asking the database again (revocation delay).
KEY_CACHE_SECONDS = 5.0
_CACHE_LIMIT = 1_000  # distinct valid keys remembered per process; more simply means more look-ups


class VerifiedKeys:
    """Hashes of keys found valid, with when they were checked (used on the app's event loop only)."""

    def __init__(self) -> None:
        self._checked: dict[str, float] = {}

    def fresh(self, key_hash: str) -> bool:
        checked = self._checked.get(key_hash)
        return checked is not None and time.monotonic() - checked < KEY_CACHE_SECONDS

    def remember(self, key_hash: str) -> None:
        if len(self._checked) >= _CACHE_LIMIT:
            self._checked.clear()
        self._checked[key_hash] = time.monotonic()


def _stored_key_is_valid(service: Service, key_hash: str) -> bool:
    with read_only(service.engine) as conn:
        return is_valid_key_hash(conn, key_hash)


async def require_api_key(request: Request) -> None:
    """FastAPI dependency: 401 with a JSON error unless a valid key is presented.

    Async, so that the usual case (a key verified in the last seconds) costs no thread hop.
    """
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise ApiError(401, "missing API key: send 'Authorization: Bearer <key>'")
    service: Service = request.app.state.service
    configured = service.settings.api_key
    if configured and same_key(key, configured):
        return
    state = request.app.state
    verified: VerifiedKeys | None = getattr(state, "verified_keys", None)
    if verified is None:
        verified = state.verified_keys = VerifiedKeys()
    key_hash = hash_api_key(key)
    if verified.fresh(key_hash):
        return
    if await run_in_threadpool(_stored_key_is_valid, service, key_hash):
        verified.remember(key_hash)
        return
    raise ApiError(401, "invalid API key")
