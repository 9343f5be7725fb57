"""``metabridge serve --demo``: what a new user sees on first start.

Creates a ``demo`` connection against the sandbox, sends ``examples/events.ndjson`` through the public
API exactly as a shop would, then shows the answer, the delivery stats, and where to look next.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import orjson
from rich.console import Console
from rich.json import JSON

from metabridge.service import SANDBOX_MOUNT, Service

console = Console()
EXAMPLES = Path("examples/events.ndjson")
DEMO_CONNECTION = {
    "name": "demo",
    "pixel_id": "1234567890",
    "access_token": "sandbox-token",
    "consent_category": "marketing",
    "default_country": "us",
    "event_names": {"Newsletter Joined": "Subscribe"},
}


def start_demo(base: str, api_key: str | None, service: Service) -> None:
    """Runs in a thread beside the server; prints, never raises into it."""
    try:
        _demo(base, api_key, service)
    except Exception as exc:  # the demo is a convenience: report and let the server run on
        console.print(f"[red]demo stopped:[/] {exc}")


def _demo(base: str, api_key: str | None, service: Service) -> None:
    if not api_key:
        from metabridge.store.apikeys import create_api_key

        with service.engine.begin() as conn:
            api_key = create_api_key(conn, "demo").key
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        for _ in range(100):
            try:
                if client.get("/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        existing = {c["name"]: c for c in client.get("/v1/connections").json()}
        connection = existing.get("demo") or client.post("/v1/connections", json=DEMO_CONNECTION).json()
        cid = connection["id"]
        console.rule("[bold]demo: a shop sends its events")
        console.print(f"POST {base}/v1/connections/{cid}/events  (body: {EXAMPLES}, NDJSON)")
        answer = client.post(
            f"/v1/connections/{cid}/events", content=EXAMPLES.read_bytes(),
            headers={"Content-Type": "application/x-ndjson"},
        )
        console.print(f"HTTP {answer.status_code}")
        console.print(JSON(answer.text))
        time.sleep(service.settings.batch_linger_ms / 1000 + 1.5)
        console.rule("[bold]demo: delivery stats")
        console.print(JSON(client.get(f"/v1/connections/{cid}/stats").text))
        requests = client.get(f"{SANDBOX_MOUNT}/_sandbox/requests").json()["data"]
        received = client.get(
            f"{SANDBOX_MOUNT}/_sandbox/pixels/{DEMO_CONNECTION['pixel_id']}/events", params={"limit": 1}
        ).json()["data"]
        console.rule("[bold]demo: what the Graph API sandbox received")
        for item in requests:
            console.print(
                f"{item['method']} {item['path']} -> HTTP {item['status']}, {item['events_count']} events, "
                f"fbtrace_id {item['fbtrace_id']}"
            )
        if received:
            console.print("the first event, as Meta gets it (customer data normalized and SHA-256 hashed):")
            console.print(JSON(orjson.dumps(received[0]["event"]).decode()))
    console.print(
        "\n[bold]Next:[/] open the API docs at "
        f"{base}/docs; send events with curl -H 'Authorization: Bearer {api_key}' "
        f"-H 'Content-Type: application/x-ndjson' --data-binary @examples/events.ndjson "
        f"{base}/v1/connections/{cid}/events; "
        f"see one event: {base}/v1/connections/{cid}/events/ord-1001. Ctrl-C stops the server."
    )
