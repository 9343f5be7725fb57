"""Successful Graph answers and the rate-limit usage headers that come with them.

Meta reports throttling state in JSON headers on every answer (Marketing API Rate Limiting page; facts
file ``audiences-and-catalog.md`` §rate limits):

- ``X-Business-Use-Case-Usage``: ``{"<business id>": [{"type", "call_count", "total_cputime",
  "total_time", "estimated_time_to_regain_access"}]}`` — the last one in **minutes**;
- ``X-App-Usage``: ``{"call_count", "total_cputime", "total_time"}`` (percentages);
- ``X-Ad-Account-Usage``: ``{"acc_id_util_pct", "reset_time_duration", "ads_api_access_tier"}``.

A delivery loop reads :meth:`GraphUsage.retry_after_seconds` after a RATE_LIMITED error to size its pause.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = ["USAGE_HEADERS", "GraphResponse", "GraphUsage", "parse_usage_headers"]

#: lower-cased header name → attribute of :class:`GraphUsage`
USAGE_HEADERS: Mapping[str, str] = {
    "x-business-use-case-usage": "business_use_case",
    "x-app-usage": "app",
    "x-ad-account-usage": "ad_account",
}


@dataclass(frozen=True, slots=True)
class GraphUsage:
    """Parsed usage headers; each is ``None`` when absent or not valid JSON."""

    business_use_case: dict[str, Any] | None = None
    app: dict[str, Any] | None = None
    ad_account: dict[str, Any] | None = None

    @property
    def present(self) -> bool:
        """True when at least one usage header was sent."""
        return any(v is not None for v in (self.business_use_case, self.app, self.ad_account))

    def max_time_to_regain_access_seconds(self) -> float:
        """Largest ``estimated_time_to_regain_access`` over all business use cases, in seconds (0 if none).

        Meta gives the value in minutes; it is 0 while the caller is not throttled.
        """
        worst = 0.0
        buc = self.business_use_case
        if isinstance(buc, dict):
            for entries in buc.values():
                if isinstance(entries, dict):
                    entries = [entries]
                if not isinstance(entries, list):
                    continue
                for entry in entries:
                    if not isinstance(entry, dict):
                        continue
                    minutes = entry.get("estimated_time_to_regain_access")
                    if isinstance(minutes, (int, float)) and not isinstance(minutes, bool):
                        worst = max(worst, float(minutes) * 60.0)
        return worst

    def retry_after_seconds(self) -> float:
        """Alias of :meth:`max_time_to_regain_access_seconds`, named for what callers do with it."""
        return self.max_time_to_regain_access_seconds()


def parse_usage_headers(headers: Mapping[str, str]) -> GraphUsage:
    """Parse the usage headers out of ``headers`` (any case-insensitive or lower-cased mapping)."""
    values: dict[str, dict[str, Any] | None] = {}
    lowered = {k.lower(): v for k, v in headers.items()}
    for name, attr in USAGE_HEADERS.items():
        raw = lowered.get(name)
        parsed: Any = None
        if raw:
            try:
                parsed = orjson.loads(raw)
            except orjson.JSONDecodeError:
                parsed = None
        values[attr] = parsed if isinstance(parsed, dict) else None
    return GraphUsage(**values)


@dataclass(frozen=True, slots=True)
class GraphResponse:
    """A successful (2xx) Graph answer with a JSON object body."""

    status_code: int
    body: dict[str, Any]
    headers: Mapping[str, str]
    usage: GraphUsage = field(default_factory=GraphUsage)

    @property
    def fbtrace_id(self) -> str | None:
        """Meta's support id for this call: from the body, else the ``x-fb-trace-id`` header."""
        value = self.body.get("fbtrace_id")
        if isinstance(value, str):
            return value
        for key, header_value in self.headers.items():
            if key.lower() == "x-fb-trace-id":
                return header_value
        return None
