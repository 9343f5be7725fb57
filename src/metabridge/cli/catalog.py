"""``metabridge catalog ...``: import a product file into a catalog, sync a catalog now."""

from __future__ import annotations

import time
from itertools import islice
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from metabridge.cli.errors import fail
from metabridge.records import RecordFileError, read_records

app = typer.Typer(help="Import products and sync Meta catalogs.", no_args_is_help=True)
console = Console()
ConfigOption = Annotated[Path | None, typer.Option("--config", help="TOML configuration file.")]


def _catalog(service: object, name: str) -> object:
    from metabridge.store.catalogs import find_catalog

    with service.engine.connect() as conn:  # type: ignore[attr-defined]
        found = find_catalog(conn, name)
    if found is None:
        fail(f"no catalog named or numbered '{name}' (see GET /v1/catalogs)")
    return found


@app.command("import")
def import_command(
    file: Annotated[str, typer.Argument(help="CSV, JSON or NDJSON file of products; - for standard input.")],
    catalog: Annotated[str, typer.Option("--catalog", help="Catalog name or id.")],
    chunk: Annotated[int, typer.Option(help="Products validated and committed per transaction.")] = 5000,
    config: ConfigOption = None,
) -> None:
    """Validate and store a file's products, like PUT /v1/catalogs/{id}/products, with a progress bar.

    CSV columns are the product fields (``id, title, description, availability, condition, price, link,
    image_link, brand, ...``); dotted names nest (``price.amount``, ``price.currency``). The next sync sends
    what changed to Meta.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from metabridge.catalog_ingest import ProductsOutcome, store_products
    from metabridge.cli.service import open_service, settings_or_exit

    service = open_service(settings_or_exit(config))
    target = _catalog(service, catalog)
    total = ProductsOutcome()
    try:
        records = read_records(file, list_key="products")
        with Progress(TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console, transient=False) as progress:
            task = progress.add_task("products", total=None)
            index = 0
            while batch := list(islice(records, max(1, chunk))):
                total.add(store_products(service.engine, target, batch, start_index=index))  # type: ignore[arg-type]
                index += len(batch)
                progress.update(task, completed=index)
    except RecordFileError as exc:
        fail(str(exc))
    finally:
        service.close()
    console.print(
        f"[green]{total.created + total.updated + total.unchanged} stored[/] ({total.created} new, {total.updated} "
        f"changed, {total.unchanged} unchanged), [red]{len(total.rejected)} rejected[/], "
        f"{total.product_count} products in catalog '{target.name}'"  # type: ignore[attr-defined]
    )
    if total.warnings_total:
        console.print(f"[yellow]{total.warnings_total} products have fields Meta does not know (sent, ignored by Meta)[/]")
    if total.rejected:
        table = Table(title="Rejected products (first 50)")
        for column in ("#", "id", "field", "rule"):
            table.add_column(column, overflow="fold")
        for item in total.rejected[:50]:
            for error in item["errors"]:
                table.add_row(str(item["index"]), str(item.get("id") or ""), error["field"], error["message"])
        console.print(table)
        raise typer.Exit(1)


@app.command("sync")
def sync_command(
    catalog: Annotated[str, typer.Argument(help="Catalog name or id.")],
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for a running worker to finish the job.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait with --wait.")] = 600.0,
    config: ConfigOption = None,
) -> None:
    """Queue a sync of the catalog now (like POST /v1/catalogs/{id}/sync); a worker runs it."""
    from metabridge.cli.service import open_service, settings_or_exit
    from metabridge.store import catalog_jobs
    from metabridge.store.catalogs import set_catalog
    from metabridge.timeutil import now_ms

    service = open_service(settings_or_exit(config))
    try:
        target = _catalog(service, catalog)
        with service.engine.begin() as conn:
            set_catalog(conn, target.id, status="ok", paused_reason=None)  # type: ignore[attr-defined]
            job_id, created = catalog_jobs.request_sync(conn, target.id, trigger="manual", now=now_ms())  # type: ignore[attr-defined]
        console.print(f"sync job catalog-{job_id} {'queued' if created else 'already queued'} "
                      f"(GET /v1/jobs/catalog-{job_id})")
        if not wait:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with service.engine.connect() as conn:
                job = catalog_jobs.get_job(conn, job_id)
            if job is None or job["status"] in ("done", "failed"):
                break
            time.sleep(0.5)
        else:
            fail(f"job catalog-{job_id} is not finished after {timeout:g} s (is a worker running?)", code=1)
        if job is None:
            fail(f"job catalog-{job_id} is gone (the catalog was deleted)", code=1)
        console.print(f"{job['status']}: {job['items_created']} created, {job['items_updated']} updated, "
                      f"{job['items_deleted']} deleted, {job['items_rejected']} rejected by Meta")
        if job["status"] == "failed":
            fail(str((job["error"] or {}).get("message", job["error"])), code=1)
    finally:
        service.close()
