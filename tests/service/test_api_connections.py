"""Connections CRUD and API-key auth, over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from metabridge.store.schema import connections


def test_missing_or_wrong_key_gets_401_json(api) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        answer = httpx.get(f"{api.url}/v1/connections", headers=headers)
        assert answer.status_code == 401
        assert "API key" in answer.json()["error"]["message"]


def test_create_read_update_delete(api) -> None:
    created = api.connection(app_secret="s3cret", consent_category="marketing", default_country="FR")
    assert created["has_app_secret"] is True
    assert created["default_country"] == "fr"
    assert "access_token" not in created and "app_secret" not in created
    cid = created["id"]
    assert api.http.get(f"/v1/connections/{cid}").json()["name"] == "shop"
    assert [c["id"] for c in api.http.get("/v1/connections").json()] == [cid]
    patched = api.http.patch(f"/v1/connections/{cid}", json={"matching": "strict", "name": "shop-eu"}).json()
    assert (patched["matching"], patched["name"], patched["consent_category"]) == ("strict", "shop-eu", "marketing")
    assert api.http.delete(f"/v1/connections/{cid}").status_code == 204
    assert api.http.get(f"/v1/connections/{cid}").status_code == 404


def test_tokens_are_stored_encrypted(api) -> None:
    created = api.connection(access_token="EAAB-very-secret", app_secret="app-secret-value")
    with api.service.engine.connect() as conn:
        row = conn.execute(select(connections).where(connections.c.id == created["id"])).one()
    assert "EAAB-very-secret" not in row.access_token
    assert "app-secret-value" not in row.app_secret


def test_duplicate_name_is_409_naming_the_field(api) -> None:
    api.connection()
    answer = api.http.post("/v1/connections", json={"name": "shop", "pixel_id": "99", "access_token": "t"})
    assert answer.status_code == 409
    assert answer.json()["error"]["errors"] == [{"field": "name", "message": "must be unique"}]


def test_invalid_settings_name_the_field(api) -> None:
    answer = api.http.post(
        "/v1/connections",
        json={"name": "x", "pixel_id": "pixel!", "access_token": "t", "matching": "loose", "default_country": "France"},
    )
    assert answer.status_code == 422
    fields = {e["field"] for e in answer.json()["error"]["errors"]}
    assert {"pixel_id", "matching"} <= fields
    answer = api.http.post("/v1/connections", json={"name": "x", "pixel_id": "1", "access_token": "t", "default_country": "France"})
    assert answer.status_code == 422
    assert answer.json()["error"]["errors"][0]["field"] == "default_country"


def test_a_body_that_is_not_json_is_400_saying_what_is_wrong(api) -> None:
    """As the ingest route answers it: not a list of fields (FastAPI alone names a character offset "1")."""
    for path, method in (("/v1/connections", "POST"), ("/v1/audiences/a1", "PUT"), ("/v1/catalogs", "POST")):
        answer = api.http.request(method, path, content=b'{"name": "x",', headers={"Content-Type": "application/json"})
        assert answer.status_code == 400, (path, answer.text)
        message = answer.json()["error"]["message"]
        assert message.startswith("the request body is not valid JSON: "), message
        assert "(at character 13)" in message, message
