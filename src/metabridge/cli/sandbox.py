"""``metabridge sandbox``: the local Graph API on its own port."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

console = Console()


def sandbox_command(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
) -> None:
    """Run the Graph API sandbox alone (point METABRIDGE_GRAPH_URL of workers at it)."""
    import uvicorn

    from metabridge.config import DEFAULT_GRAPH_VERSION
    from metabridge.sandbox import create_sandbox_app

    base = f"http://{host}:{port}"
    console.print(
        f"Graph API sandbox at [bold]{base}[/] (e.g. POST {base}/{DEFAULT_GRAPH_VERSION}/<pixel_id>/events); "
        f"what it received: {base}/_sandbox/requests; docs {base}/_sandbox/docs. Nothing leaves this machine."
    )
    uvicorn.run(create_sandbox_app(), host=host, port=port, log_level="warning")
