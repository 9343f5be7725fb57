"""The ``metabridge`` command."""

from __future__ import annotations

import typer

from metabridge.cli import catalog, events, sandbox, service

app = typer.Typer(
    name="metabridge",
    help="Keep Meta's Conversions API, Custom Audiences and Catalog in sync with your first-party data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("serve")(service.serve_command)
app.command("worker")(service.worker_command)
app.command("config")(service.config_command)
app.add_typer(service.db_app, name="db")
app.add_typer(service.apikey_app, name="apikey")
app.add_typer(events.app, name="events")
app.add_typer(catalog.app, name="catalog")
app.command("sandbox")(sandbox.sandbox_command)

if __name__ == "__main__":
    app()
