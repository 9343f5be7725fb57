"""Stored API keys over HTTP: accepted at once, and refused again soon after they are revoked."""

from __future__ import annotations

import time

import httpx
import pytest
from sqlalchemy import update

from metabridge.api import auth
from metabridge.store.apikeys import create_api_key
from metabridge.store.schema import api_keys


def _status(api, key: str) -> int:
    return httpx.get(f"{api.url}/v1/connections", headers={"Authorization": f"Bearer {key}"}).status_code


def test_a_new_key_works_at_once_and_a_revoked_one_stops_within_the_cache_time(api, monkeypatch) -> None:
    monkeypatch.setattr(auth, "KEY_CACHE_SECONDS", 0.5)
    key = "mb_stored_key_for_this_test"
    assert _status(api, key) == 401  # unknown: refusals are not remembered ...
    with api.service.engine.begin() as conn:
        created = create_api_key(conn, "test", key)
    assert _status(api, key) == 200  # ... so the key works as soon as it exists
    with api.service.engine.begin() as conn:
        conn.execute(update(api_keys).where(api_keys.c.id == created.id).values(revoked_at=1))
    deadline = time.monotonic() + 5
    while _status(api, key) == 200:  # remembered as valid for at most KEY_CACHE_SECONDS
        assert time.monotonic() < deadline, "a revoked key was still accepted after the cache time"
        time.sleep(0.1)
    assert _status(api, key) == 401


@pytest.mark.parametrize("header", ["Bearer", "Token mb_x", "mb_x"])
def test_malformed_authorization_headers_are_401(api, header: str) -> None:
    answer = httpx.get(f"{api.url}/v1/connections", headers={"Authorization": header})
    assert answer.status_code == 401
    assert "missing API key" in answer.json()["error"]["message"]
