"""``metabridge events ...``: look at what metabridge would send."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.json import JSON
from rich.table import Table

from metabridge.cli.errors import fail, load_toml_model
from metabridge.events import ConnectionSettings, Preview, preview_events
from metabridge.records import RecordFileError, read_records

app = typer.Typer(help="Inspect and import events.", no_args_is_help=True)
console = Console()


@app.command("preview")
def preview_command(
    file: Annotated[str, typer.Argument(help="JSON, NDJSON or CSV file of events; - for standard input.")],
    connection_config: Annotated[
        Path | None,
        typer.Option("--connection-config", "-c", help="TOML file with the connection settings."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object for scripts.")] = False,
) -> None:
    """Show, for each event, whether it would be sent and the exact Conversions API requests."""
    settings = load_toml_model(connection_config, ConnectionSettings) if connection_config else ConnectionSettings()
    try:
        preview = preview_events(read_records(file), settings)
    except RecordFileError as exc:
        fail(str(exc))
    if as_json:
        typer.echo(orjson.dumps(preview.as_json(), option=orjson.OPT_INDENT_2).decode())
        return
    print_preview(preview, console)


def print_preview(preview: Preview, out: Console) -> None:
    """A decision table, then every request body as highlighted JSON."""
    table = Table(title="Decisions", show_lines=False)
    for column in ("#", "event", "event_id", "decision", "why"):
        table.add_column(column, overflow="fold")
    for d in preview.decisions:
        why = "; ".join(f"{e.field}: {e.message}" for e in d.errors)
        notes = "; ".join(f"{w.field}: {w.message}" for w in d.warnings)
        if notes:
            why = f"{why}\n[dim]{notes}[/]" if why else f"[dim]{notes}[/]"
        verdict = "[green]send[/]" if d.action == "send" else f"[yellow]skip: {d.reason}[/]"
        table.add_row(str(d.index), d.event_name or "?", d.event_id or "", verdict, why)
    out.print(table)
    skipped = len(preview.decisions) - preview.sent
    out.print(
        f"{preview.sent} to send, {skipped} skipped, in {len(preview.requests)} request(s) "
        "of at most 1,000 events."
    )
    for number, body in enumerate(preview.requests, start=1):
        out.rule(f"request {number}: POST /{{version}}/{{pixel_id}}/events ({len(body['data'])} events)")
        out.print(JSON(orjson.dumps(body).decode()))


@app.command("import")
def import_command(
    file: Annotated[str, typer.Argument(help="JSON, NDJSON or CSV file of events; - for standard input.")],
    connection: Annotated[str, typer.Option("--connection", help="Connection name or id.")],
    chunk: Annotated[int, typer.Option(help="Events committed per transaction.")] = 1000,
    config: Annotated[Path | None, typer.Option("--config", help="TOML configuration file.")] = None,
) -> None:
    """Queue a file's events for delivery, like POST /v1/connections/{id}/events, with a progress bar."""
    from itertools import islice

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from metabridge.cli.service import open_service, settings_or_exit
    from metabridge.ingest import IngestOutcome, ingest
    from metabridge.store.connections import find_connection

    service = open_service(settings_or_exit(config))
    with service.engine.connect() as conn:
        target = find_connection(conn, connection)
    if target is None:
        fail(f"no connection named or numbered '{connection}' (see GET /v1/connections)")
    total = IngestOutcome()
    try:
        records = read_records(file)
        with Progress(TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console, transient=False) as progress:
            task = progress.add_task("events", total=None)
            index = 0
            while batch := list(islice(records, chunk)):
                total.add(ingest(service, target, batch, start_index=index))
                index += len(batch)
                progress.update(task, completed=index)
    except RecordFileError as exc:
        fail(str(exc))
    console.print(
        f"[green]{total.accepted} accepted[/] ({total.pending} queued for delivery, {total.skipped} skipped "
        f"by policy, {total.deduplicated} duplicates), [red]{len(total.rejected)} rejected[/]"
    )
    if total.rejected:
        table = Table(title="Rejected events (first 50)")
        for column in ("#", "event_id", "field", "rule"):
            table.add_column(column, overflow="fold")
        for item in total.rejected[:50]:
            for error in item["errors"]:
                table.add_row(str(item["index"]), str(item.get("event_id") or ""), error["field"], error["message"])
        console.print(table)
        raise typer.Exit(1)
