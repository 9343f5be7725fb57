"""API keys: every ``/v1`` call presents one as ``Authorization: Bearer <key>``."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, insert, select

from metabridge.credentials import hash_api_key
from metabridge.store.schema import api_keys
from metabridge.timeutil import now_ms

KEY_PREFIX = "mb_"


@dataclass(frozen=True, slots=True)
class NewApiKey:
    id: int
    name: str
    key: str  # shown once, never stored


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def create_api_key(conn: Connection, name: str, key: str | None = None) -> NewApiKey:
    key = key or generate_key()
    new_id = conn.execute(
        insert(api_keys).values(name=name, prefix=key[:10], key_hash=hash_api_key(key), created_at=now_ms())
        .returning(api_keys.c.id)
    ).scalar_one()
    return NewApiKey(new_id, name, key)


def is_valid_key(conn: Connection, key: str) -> bool:
    return is_valid_key_hash(conn, hash_api_key(key))


def is_valid_key_hash(conn: Connection, key_hash: str) -> bool:
    """A stored, not revoked key has this hash."""
    row = conn.execute(
        select(api_keys.c.id).where(api_keys.c.key_hash == key_hash, api_keys.c.revoked_at.is_(None))
    ).first()
    return row is not None


def count_keys(conn: Connection) -> int:
    return len(conn.execute(select(api_keys.c.id).where(api_keys.c.revoked_at.is_(None))).all())
