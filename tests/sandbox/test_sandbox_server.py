"""run_in_thread and mounting the sandbox inside another app (how the service will embed it)."""

from __future__ import annotations

import socket
import statistics
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from metabridge.graph import GraphClient, GraphInvalidRequestError
from metabridge.sandbox import SandboxState, create_sandbox_app
from metabridge.serving import run_in_thread


def _port_is_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_run_in_thread_serves_then_stops() -> None:
    with run_in_thread(create_sandbox_app()) as url:
        assert url.startswith("http://127.0.0.1:")
        port = int(url.rsplit(":", 1)[1])
        assert httpx.get(f"{url}/_sandbox/health").json() == {"status": "ok"}
    assert not _port_is_open(port)


def test_small_requests_are_fast() -> None:
    """Guards against Nagle/delayed-ACK stalls (~40 ms per answer) on the thread-served socket."""
    with run_in_thread(create_sandbox_app()) as url, httpx.Client(base_url=url) as http:
        http.get("/_sandbox/health")
        timings = []
        for _ in range(21):
            started = time.perf_counter()
            http.get("/_sandbox/health")
            timings.append(time.perf_counter() - started)
        assert statistics.median(timings) < 0.03  # a Nagle stall costs >= 40 ms per answer


def test_sandbox_mounted_in_another_app(make_event: Callable[..., dict[str, Any]]) -> None:
    state = SandboxState()
    service = FastAPI()
    service.mount("/graph", create_sandbox_app(state))

    @service.get("/health")
    def health() -> dict[str, str]:
        return {"service": "up"}

    with run_in_thread(service) as url:
        assert httpx.get(f"{url}/health").json() == {"service": "up"}
        with GraphClient(f"{url}/graph") as graph:
            answer = graph.post_events("555", "token", {"data": [make_event()]})
            assert answer.body["events_received"] == 1
            with pytest.raises(GraphInvalidRequestError):
                graph.post_events("555", "token", {"data": [make_event(event_time=0)]})
        log = httpx.get(f"{url}/graph/_sandbox/requests").json()["data"]
    assert [r["status"] for r in log] == [200, 400]
    assert log[0]["path"] == "/graph/v26.0/555/events"
    assert state.event_count("555") == 1


@pytest.mark.parametrize("path", ["/_sandbox/1/events", "/_sandbox/1/items_batch", "/_sandbox/act_1/customaudiences"])
def test_a_mistyped_control_path_is_a_plain_404_not_a_graph_error(sandbox, path: str) -> None:
    """``/_sandbox/...`` also matches the Graph routes' ``/{version}/...`` patterns; none answers as Graph."""
    answer = sandbox.http.post(path, json={})
    assert answer.status_code == 404
    assert answer.json() == {"detail": "Not Found"}
