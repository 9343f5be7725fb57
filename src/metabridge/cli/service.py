"""``metabridge serve | worker | db | apikey``: run and administer the service."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.panel import Panel

from metabridge import __version__
from metabridge.cli.errors import fail
from metabridge.config import ConfigError, Settings, load_settings
from metabridge.credentials import SecretKeyError
from metabridge.service import SANDBOX_MOUNT, Service
from metabridge.store.apikeys import count_keys, create_api_key

console = Console()
ConfigOption = Annotated[Path | None, typer.Option("--config", help="TOML configuration file (see README).")]


def settings_or_exit(config: Path | None, **overrides: object) -> Settings:
    try:
        return load_settings(config, **overrides)
    except ConfigError as exc:
        fail(str(exc))


def open_service(settings: Settings, **kwargs: object) -> Service:
    try:
        return Service.open(settings, **kwargs)  # type: ignore[arg-type]
    except SecretKeyError as exc:
        fail(str(exc))
    except Exception as exc:  # database unreachable, bad URL: one clear line, not a trace
        fail(f"cannot open the database {_safe_url(settings)}: {exc.__class__.__name__}: {str(exc).splitlines()[0]}")


def _safe_url(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    from metabridge.store.db import normalize_url

    return make_url(normalize_url(settings.resolved_database_url)).render_as_string(hide_password=True)


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )
    if level.lower() != "debug":  # one line per request/migration step is noise at info level
        for chatty in ("httpx", "alembic"):
            logging.getLogger(chatty).setLevel(logging.WARNING)


def ensure_api_key(service: Service) -> str | None:
    """A first start with no key anywhere generates one (printed once)."""
    if service.settings.api_key:
        return None
    with service.engine.begin() as conn:
        if count_keys(conn):
            return None
        return create_api_key(conn, "generated on first start").key


def serve_command(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    no_worker: Annotated[bool, typer.Option("--no-worker", help="API only; run `metabridge worker` separately.")] = False,
    demo: Annotated[bool, typer.Option("--demo", help="Create a demo connection and send examples/events.ndjson.")] = False,
    config: ConfigOption = None,
) -> None:
    """Run the HTTP API and the delivery worker (SQLite + the Graph API sandbox by default)."""
    import uvicorn

    from metabridge.api.app import create_app
    from metabridge.serving import bind_socket
    from metabridge.sandbox.state import SandboxState

    settings = settings_or_exit(config, host=host, port=port)
    configure_logging(settings.log_level)
    service = open_service(settings)
    new_key = ensure_api_key(service)
    sock = bind_socket(settings.host, settings.port)
    bound_port = sock.getsockname()[1]
    sandbox = SandboxState() if settings.uses_sandbox else None
    if sandbox is not None:
        local = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
        service.graph_base_url = f"http://{local}:{bound_port}{SANDBOX_MOUNT}"
    app = create_app(service, run_worker=not no_worker, sandbox=sandbox)
    base = f"http://{settings.host}:{bound_port}"
    lines = [
        f"[bold]metabridge {__version__}[/]  API {base}/v1   docs {base}/docs",
        f"database   {_safe_url(settings)}",
        f"worker     {'off (run `metabridge worker`)' if no_worker else 'on, in this process'}",
    ]
    if sandbox is not None:
        lines.append(f"Graph API  [bold yellow]SANDBOX[/] at {base}{SANDBOX_MOUNT}: nothing leaves this machine")
    else:
        lines.append(f"Graph API  [bold red]LIVE[/] {settings.graph_url} ({settings.graph_version})")
    if new_key:
        lines.append(f"API key    [bold green]{new_key}[/]  (generated now, shown once; `metabridge apikey create` makes more)")
    console.print(Panel("\n".join(lines), expand=False))
    if demo:
        from metabridge.cli.demo import start_demo

        threading.Thread(target=start_demo, args=(base, new_key or settings.api_key, service), daemon=True).start()
    server = uvicorn.Server(uvicorn.Config(app, log_level=settings.log_level, access_log=False))
    server.run(sockets=[sock])


def worker_command(config: ConfigOption = None) -> None:
    """Run a delivery worker (several may run, on several machines, against one PostgreSQL)."""
    from metabridge.delivery.runner import run_worker

    settings = settings_or_exit(config)
    configure_logging(settings.log_level)
    if settings.uses_sandbox:
        fail("a standalone worker needs METABRIDGE_GRAPH_URL: the URL of a running `metabridge serve` "
             f"sandbox (http://host:port{SANDBOX_MOUNT}), a `metabridge sandbox`, or https://graph.facebook.com")
    service = open_service(settings)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    console.print(f"metabridge worker: {_safe_url(settings)} -> {settings.graph_url}")
    run_worker(service, stop)


db_app = typer.Typer(help="Database schema.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None) -> None:
    """Apply schema migrations (also done on every start)."""
    from metabridge.store import migrate

    settings = settings_or_exit(config)
    service = open_service(settings, migrate_schema=False)
    migrate.upgrade(service.engine)
    console.print(f"database {_safe_url(settings)} at revision {migrate.current_revision(service.engine)}")


apikey_app = typer.Typer(help="API keys.", no_args_is_help=True)


@apikey_app.command("create")
def apikey_create(
    name: Annotated[str, typer.Option(help="What the key is for.")] = "cli",
    config: ConfigOption = None,
) -> None:
    """Create an API key and print it (it is stored hashed and cannot be shown again)."""
    service = open_service(settings_or_exit(config))
    with service.engine.begin() as conn:
        created = create_api_key(conn, name)
    typer.echo(created.key)


def config_command(markdown: Annotated[bool, typer.Option("--markdown", help="Print the README table.")] = False,
                   config: ConfigOption = None) -> None:
    """Show the effective configuration (secrets hidden)."""
    from dataclasses import asdict

    from metabridge.config import settings_table_markdown

    if markdown:
        typer.echo(settings_table_markdown())
        return
    for key, value in asdict(settings_or_exit(config)).items():
        shown = "(set)" if key in ("secret_key", "api_key") and value else value
        typer.echo(f"{key} = {shown}")
