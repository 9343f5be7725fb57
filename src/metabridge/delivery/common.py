"""Pieces every worker loop shares (events delivery and audience sync)."""

from __future__ import annotations

import os
import socket
import uuid

from metabridge.graph import GraphClient
from metabridge.timeutil import now_ms as wall_clock_ms


def default_worker_id() -> str:
    """host-pid-random: unique across machines and restarts, readable in the lease columns."""
    host = socket.gethostname()[:32]
    return f"{host}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def send_margin_ms(graph: GraphClient) -> int:
    """Lease that must be left before a request starts: twice the client's HTTP timeout, so a lease can
    never expire while a request made under it is still running (and let a second worker send the same)."""
    return int(2 * graph.timeout * 1000)


class Clock:
    """Wall-clock milliseconds, shifted so that the first reading equals ``start_ms`` when given.

    ``run_once(now_ms=...)`` lets tests and tools act "later" (linger, backoff, throttle) while time
    still advances naturally during the pass, which the lease arithmetic relies on.
    """

    def __init__(self, start_ms: int | None) -> None:
        self._offset = 0 if start_ms is None else start_ms - wall_clock_ms()

    def __call__(self) -> int:
        return wall_clock_ms() + self._offset
