"""Helpers for the Custom Audience sandbox tests: a thin Graph client over the ``sandbox`` fixture."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import httpx
import orjson

from metabridge.sandbox.control import SandboxControl

TOKEN = "EAAB-sandbox-audience-token"
ACCOUNT = "1234567890"
VERSION = "v26.0"


def sha(text: str) -> str:
    """Lowercase SHA-256 hex of ``text``."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def as_set(members: Iterable[dict[str, Any]]) -> set[frozenset[tuple[str, str]]]:
    """Members (``{schema key: value}``) as a set, for exact membership comparisons."""
    return {frozenset((k, orjson.dumps(v).decode()) for k, v in m.items()) for m in members}


def graph_error(answer: httpx.Response, code: int, subcode: int | None = None) -> dict[str, Any]:
    """Assert ``answer`` is a Graph error with ``code``/``subcode``; returns the error object."""
    assert answer.status_code >= 400, answer.text
    error: dict[str, Any] = answer.json()["error"]
    assert error["code"] == code, error
    assert error.get("error_subcode") == subcode, error
    assert error["fbtrace_id"]
    return error


class Graph:
    """Raw Graph calls to the sandbox's audience endpoints (token in the query, like RudderStack)."""

    def __init__(self, sandbox: SandboxControl, token: str = TOKEN) -> None:
        self.sandbox = sandbox
        self.http = sandbox.http
        self.token = token

    def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        token: str | None = None,
        **kw: Any,
    ) -> httpx.Response:
        query = {"access_token": token or self.token, **(params or {})}
        return self.http.request(method, f"/{VERSION}/{path.lstrip('/')}", params=query, **kw)

    def create_raw(self, account: str = ACCOUNT, **params: Any) -> httpx.Response:
        return self.call("POST", f"act_{account}/customaudiences", data=params)

    def create(self, name: str = "Customers", account: str = ACCOUNT, **params: Any) -> str:
        base = {"name": name, "subtype": "CUSTOM", "customer_file_source": "USER_PROVIDED_ONLY"}
        answer = self.create_raw(account, **{**base, **params})
        assert answer.status_code == 200, answer.text
        audience_id: str = answer.json()["id"]
        return audience_id

    def read(self, audience_id: str, fields: str) -> dict[str, Any]:
        answer = self.call("GET", audience_id, params={"fields": fields})
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    def users(
        self,
        audience_id: str,
        schema: Any,
        data: list[Any],
        *,
        method: str = "POST",
        session: dict[str, Any] | None = None,
        edge: str = "users",
        encoding: str = "json",
        params: dict[str, Any] | None = None,
    ) -> httpx.Response:
        """One /users (or /usersreplace) call; ``encoding`` json body, form fields, or query string."""
        payload = {"schema": schema, "data": data}
        body: dict[str, Any] = {"payload": payload}
        if session is not None:
            body["session"] = session
        path = f"{audience_id}/{edge}"
        if encoding == "json":
            return self.call(method, path, params=params, json=body)
        encoded = {k: orjson.dumps(v).decode() for k, v in body.items()}
        if encoding == "form":
            return self.call(method, path, params=params, data={**encoded, **(params or {})})
        assert encoding == "query"
        return self.call(method, path, params={**encoded, **(params or {})})

    def add(self, audience_id: str, schema: Any, data: list[Any], **kw: Any) -> dict[str, Any]:
        answer = self.users(audience_id, schema, data, **kw)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    def remove(self, audience_id: str, schema: Any, data: list[Any], **kw: Any) -> dict[str, Any]:
        return self.add(audience_id, schema, data, method="DELETE", **kw)

    def replace(
        self, audience_id: str, schema: Any, data: list[Any], session: dict[str, Any], **kw: Any
    ) -> httpx.Response:
        return self.users(audience_id, schema, data, session=session, edge="usersreplace", **kw)
