"""A small HTTP client for the sandbox's ``/_sandbox`` control API.

Tests, benchmarks, demos and the CLI steer a running sandbox through it rather than poking at a
:class:`~metabridge.sandbox.state.SandboxState`, so the same code works against a sandbox in another
process.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

import httpx

__all__ = ["SandboxControl"]


class SandboxControl:
    """Inspect and steer the sandbox at ``base_url`` (its root, without ``/_sandbox``)."""

    def __init__(
        self, base_url: str, *, timeout: float = 10.0, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = self.http.request(method, f"/_sandbox{path}", **kwargs)
        answer.raise_for_status()
        return answer.json()

    # -- inspection ------------------------------------------------------------------------------------
    def events(
        self, pixel_id: str, *, test: bool = False, limit: int = 1000, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Received events (``event``, ``fbtrace_id``, ``received_at``, ``test_event_code``…), oldest first."""
        params = {"test": "true" if test else "false", "limit": limit, "offset": offset}
        data: list[dict[str, Any]] = self._json("GET", f"/pixels/{pixel_id}/events", params=params)["data"]
        return data

    def event_total(self, pixel_id: str, *, test: bool = False) -> int:
        """How many events the pixel received in total."""
        params = {"test": "true" if test else "false", "limit": 1}
        return int(self._json("GET", f"/pixels/{pixel_id}/events", params=params)["total"])

    def requests(self, *, limit: int = 10_000, offset: int = 0) -> list[dict[str, Any]]:
        """The Graph request log, oldest first."""
        data: list[dict[str, Any]] = self._json(
            "GET", "/requests", params={"limit": limit, "offset": offset}
        )["data"]
        return data

    def stats(self) -> dict[str, Any]:
        """Totals: requests by status, errors by code, events per pixel, pending faults."""
        stats: dict[str, Any] = self._json("GET", "/stats")
        return stats

    # -- custom audiences ------------------------------------------------------------------------------
    def audiences(self, ad_account_id: str, *, limit: int = 10_000, offset: int = 0) -> list[dict[str, Any]]:
        """An ad account's audiences, oldest first, with ``member_count``, ``counters``, ``replace_session``."""
        account = str(ad_account_id).removeprefix("act_")
        data: list[dict[str, Any]] = self._json(
            "GET", f"/ad-accounts/{account}/audiences", params={"limit": limit, "offset": offset}
        )["data"]
        return data

    def audience(self, audience_id: str) -> dict[str, Any]:
        """Every field of one audience plus the sandbox's extras (raises ``httpx.HTTPStatusError`` 404)."""
        view: dict[str, Any] = self._json("GET", f"/audiences/{audience_id}")
        return view

    def members(self, audience_id: str, *, limit: int = 10_000, offset: int = 0) -> list[dict[str, Any]]:
        """One page of an audience's stored members, each ``{schema key: value}``."""
        data: list[dict[str, Any]] = self._json(
            "GET", f"/audiences/{audience_id}/members", params={"limit": limit, "offset": offset}
        )["data"]
        return data

    def all_members(self, audience_id: str, *, page_size: int = 10_000) -> list[dict[str, Any]]:
        """Every stored member of an audience (pages through :meth:`members`)."""
        members: list[dict[str, Any]] = []
        while True:
            page = self.members(audience_id, limit=page_size, offset=len(members))
            members.extend(page)
            if len(page) < page_size:
                return members

    def member_count(self, audience_id: str) -> int:
        """Exact number of members (Graph only shows a range)."""
        return int(self._json("GET", f"/audiences/{audience_id}/members/count")["count"])

    def create_audience(
        self,
        ad_account_id: str,
        name: str,
        *,
        description: str | None = None,
        customer_file_source: str = "USER_PROVIDED_ONLY",
        is_value_based: bool = False,
        members: list[dict[str, Any]] | None = None,
    ) -> str:
        """Pre-create an audience "made by someone else" (optionally with members); returns its id."""
        spec = {
            "ad_account_id": str(ad_account_id),
            "name": name,
            "description": description,
            "customer_file_source": customer_file_source,
            "is_value_based": is_value_based,
            "members": members or [],
        }
        return str(self._json("POST", "/audiences", json=spec)["id"])

    def set_tos(self, ad_account_id: str, accepted: bool) -> None:
        """Whether the ad account accepted the Custom Audience Terms (not accepted: 200/1870090)."""
        account = str(ad_account_id).removeprefix("act_")
        self._json("POST", f"/ad-accounts/{account}/tos", json={"accepted": accepted})

    # -- catalogs --------------------------------------------------------------------------------------
    def catalog(self, catalog_id: str) -> dict[str, Any]:
        """Counts of a catalog: ``items``, ``product_sets``, ``batch_calls``, ``handles``."""
        summary: dict[str, Any] = self._json("GET", f"/catalogs/{catalog_id}")
        return summary

    def catalog_items(self, catalog_id: str, *, page_size: int = 10_000) -> dict[str, dict[str, Any]]:
        """Every item the catalog holds now: retailer id -> its ``data`` (Meta's field names)."""
        items: dict[str, dict[str, Any]] = {}
        offset = 0
        while True:
            page = self._json(
                "GET", f"/catalogs/{catalog_id}/items", params={"limit": page_size, "offset": offset}
            )["data"]
            items.update((item["id"], item) for item in page)
            offset += len(page)
            if len(page) < page_size:
                return items

    def product_sets(self, catalog_id: str) -> list[dict[str, Any]]:
        """The catalog's product sets, oldest first: ``id``, ``name``, ``filter`` (an object),
        ``retailer_id``, ``product_count`` and ``members`` (sorted retailer ids)."""
        data: list[dict[str, Any]] = self._json("GET", f"/catalogs/{catalog_id}/product_sets")["data"]
        return data

    def batch_calls(self, catalog_id: str) -> int:
        """How many items_batch calls the catalog received (failed ones included)."""
        return int(self.catalog(catalog_id)["batch_calls"])

    def set_batch_in_progress_polls(self, polls: int) -> None:
        """Polls of each later items_batch handle that answer ``started``/``dispatched`` before
        ``finished`` (default 1; 0: finished at the first poll)."""
        self._json("PUT", "/batch-status-polls", json={"in_progress_polls": polls})

    def advance_clock(self, seconds: float) -> float:
        """Move the sandbox clock forward (upload sessions time out after 90 min); returns the offset."""
        return float(self._json("POST", "/clock/advance", json={"seconds": seconds})["offset_seconds"])

    def faults(self) -> list[dict[str, Any]]:
        """Pending faults, in the order they will be used."""
        data: list[dict[str, Any]] = self._json("GET", "/faults")["data"]
        return data

    # -- steering --------------------------------------------------------------------------------------
    def add_fault(
        self,
        *,
        count: int = 1,
        error: dict[str, Any] | None = None,
        delay_ms: int = 0,
        path_contains: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Make the next ``count`` matching Graph requests fail with ``error`` and/or wait ``delay_ms``."""
        spec = {
            "count": count,
            "error": error,
            "delay_ms": delay_ms,
            "path_contains": path_contains,
            "headers": headers or {},
        }
        created: dict[str, Any] = self._json("POST", "/faults", json=spec)
        return created

    def clear_faults(self) -> None:
        self._json("DELETE", "/faults")

    def revoke_token(self, token: str) -> None:
        self._json("POST", "/tokens/revoke", json={"token": token})

    def restore_token(self, token: str) -> None:
        self._json("POST", "/tokens/restore", json={"token": token})

    def set_app_secret(self, app_secret: str | None) -> None:
        """Require ``appsecret_proof`` for this secret (``None``: stop requiring it)."""
        self._json("PUT", "/app-secret", json={"app_secret": app_secret})

    def reset(self) -> None:
        self._json("POST", "/reset")
