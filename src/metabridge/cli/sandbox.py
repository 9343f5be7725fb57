"""``metabridge sandbox``: the local Graph API on its own port."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from metabridge.cli.errors import fail

console = Console()


def sandbox_command(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
    app_secret: Annotated[str | None, typer.Option(help="Require appsecret_proof for this app secret.")] = None,
) -> None:
    """Run the Graph API sandbox alone (point METABRIDGE_GRAPH_URL of workers at it)."""
    from metabridge.config import DEFAULT_GRAPH_VERSION
    from metabridge.sandbox import SandboxState, create_sandbox_app

    base = f"http://{host}:{port}"
    console.print(
        f"Graph API sandbox at [bold]{base}[/] (e.g. POST {base}/{DEFAULT_GRAPH_VERSION}/<pixel_id>/events); "
        f"what it received: {base}/_sandbox/requests; docs {base}/_sandbox/docs. Nothing leaves this machine."
    )
    from metabridge.serving import serve

    try:
        serve(create_sandbox_app(SandboxState(app_secret=app_secret)), host=host, port=port, log_level="warning")
    except OSError as exc:
        fail(str(exc))
