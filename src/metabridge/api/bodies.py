"""Reading large JSON list bodies (thousands of products or members per call) with clear errors.

The body is read in chunks up to ``max_body_bytes`` (413 past it) and decoded with orjson; the list is
either the body itself or the value of one key (``{"products": [...]}``).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request

from metabridge.api.errors import ApiError

__all__ = ["read_json_list"]


async def read_json_list(request: Request, key: str, max_items: int, *, allow_empty: bool = False) -> list[Any] | None:
    """The list under ``key`` (or the bare list) of the request body; ``None`` for no body when allowed."""
    limit = request.app.state.service.settings.max_body_bytes
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise ApiError(413, f"request body is larger than {limit} bytes; send fewer {key} per call")
    if not body.strip():
        if allow_empty:
            return None
        raise ApiError(400, f'the request body is empty: send {{"{key}": [...]}}')
    try:
        document = orjson.loads(bytes(body))
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"the request body is not valid JSON: {exc}") from None
    if isinstance(document, dict) and key in document:
        document = document[key]
    if document is None and allow_empty:
        return None
    if not isinstance(document, list):
        raise ApiError(422, f'expected {{"{key}": [...]}}', [{"field": key, "message": "must be a list"}])
    if len(document) > max_items:
        raise ApiError(413, f"at most {max_items:,} {key} per call, got {len(document):,}")
    return document
