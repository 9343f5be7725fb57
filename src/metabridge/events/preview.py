"""What metabridge would send for a set of events: decisions and exact request bodies, without sending.

The library form of ``metabridge events preview``; it runs the same :class:`EventPipeline` the delivery
worker runs.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from metabridge.events.batching import batched_bodies
from metabridge.events.errors import FieldError
from metabridge.events.pipeline import Decision, EventPipeline
from metabridge.events.settings import ConnectionSettings
from metabridge.records import UnreadableRecord


@dataclass(slots=True)
class Preview:
    decisions: list[Decision] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return sum(1 for d in self.decisions if d.action == "send")

    def as_json(self) -> dict[str, Any]:
        """``{"decisions": [...], "requests": [...]}`` (each request body with ``data`` as an array)."""
        return {"decisions": [d.summary() for d in self.decisions], "requests": self.requests}


def preview_events(
    raw_events: Iterable[Any],
    settings: ConnectionSettings,
    *,
    now_ms: int | None = None,
) -> Preview:
    """Decide every event and batch the ones to send, as the service would at ``now_ms``.

    A repeated (event_name, event_id) pair within the input is skipped as ``deduplicated``, as the
    service does for pairs it already took within 48 hours.
    """
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    pipeline = EventPipeline(settings)
    preview = Preview()
    seen: set[tuple[str, str]] = set()
    to_send: list[dict[str, Any]] = []
    for index, raw in enumerate(raw_events):
        if isinstance(raw, UnreadableRecord):
            decision = Decision(index, None, None, "skip", "invalid", [FieldError("event", raw.message)])
        else:
            decision = pipeline.process(raw, index=index, now_ms=now)
        if decision.action == "send" and decision.server_event is not None:
            key = (decision.event_name or "", decision.event_id or "")
            if key in seen:
                decision.action, decision.reason, decision.server_event = "skip", "deduplicated", None
            else:
                seen.add(key)
                to_send.append(decision.server_event)
        preview.decisions.append(decision)
    preview.requests = list(batched_bodies(to_send, test_event_code=settings.test_event_code))
    return preview
