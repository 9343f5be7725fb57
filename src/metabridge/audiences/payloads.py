"""Request bodies for ``/{audience_id}/users`` (add, remove) and ``/{audience_id}/usersreplace``. Pure.

Bodies are JSON (audiences-and-catalog.md §2.1): removes go in the body of the DELETE, never in the URL
(the SDKs' query-string removes break above ~1-2k rows). At most 10,000 rows per request (§2.1, §2.5).
``is_raw: true`` says the rows hold one value per key, not combined keys (§2.2).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["MAX_ROWS", "users_body", "replace_body"]

MAX_ROWS = 10_000


def _payload(schema: Sequence[str], rows: Sequence[Sequence[str]]) -> dict[str, Any]:
    """The ``payload``; rows are used as given (tuples encode as JSON arrays), not copied."""
    if not rows:
        raise ValueError("a request needs at least one row")
    if len(rows) > MAX_ROWS:
        raise ValueError(f"at most {MAX_ROWS} rows per request, got {len(rows)}")
    width = len(schema)
    if any(len(row) != width for row in rows):
        bad = next(row for row in rows if len(row) != width)
        raise ValueError(f"every row needs {width} cells (schema {list(schema)}), got {len(bad)}")
    return {"schema": list(schema), "is_raw": True, "data": rows if isinstance(rows, list) else list(rows)}


def users_body(schema: Sequence[str], rows: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Body of an add (POST) or remove (DELETE) on ``/{audience_id}/users``."""
    return {"payload": _payload(schema, rows)}


def replace_body(
    schema: Sequence[str], rows: Sequence[Sequence[str]], *, session_id: int, batch_seq: int,
    last_batch: bool, estimated_total: int | None = None,
) -> dict[str, Any]:
    """Body of one ``usersreplace`` batch: the session starts at ``batch_seq`` 1 (§2.5)."""
    if session_id <= 0 or session_id >= 2**63:
        raise ValueError("session_id must be a positive 64-bit integer")
    if batch_seq < 1:
        raise ValueError("batch_seq starts at 1")
    session: dict[str, Any] = {"session_id": session_id, "batch_seq": batch_seq, "last_batch_flag": last_batch}
    if estimated_total is not None:
        session["estimated_num_total"] = estimated_total
    return {"payload": _payload(schema, rows), "session": session}
