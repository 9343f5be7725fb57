"""Bulk writes for tables written thousands of rows at a time, and the planner statistics they invalidate.

- :func:`upsert`: dict rows and SQL update expressions (catalog products, confirmations, counts).
  ``INSERT ... ON CONFLICT (keys) DO UPDATE`` on both stores, through ``executemany``. SQLite runs it in
  process (already fast). On PostgreSQL a plain ``executemany`` is one statement per row on the server; with
  a ``RETURNING`` clause SQLAlchemy's "insertmanyvalues" sends the rows as multi-row ``VALUES`` pages of one
  cached statement instead, several times faster for 100,000 rows.
- :func:`bulk_upsert`: tuple rows, replacing columns (audience members, rows Meta holds): the fastest path,
  ``COPY`` on PostgreSQL.
- :func:`refresh_stale_statistics`: ``ANALYZE`` once bulk writes, large or many small ones, made a table's
  planner statistics stale.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Table, bindparam, select
from sqlalchemy import column as sql_column
from sqlalchemy import table as sql_table
from sqlalchemy.dialects import postgresql, sqlite

if TYPE_CHECKING:
    from psycopg import sql as pgsql

__all__ = ["bulk_upsert", "refresh_stale_statistics", "upsert", "upsert_statement"]

_CHUNK = 5_000  # rows per executemany


def upsert(conn: Connection, table: Table, rows: Sequence[dict[str, Any]], keys: Sequence[str],
           update: Callable[[Any], dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys); on a conflict on ``keys`` apply ``update(excluded)``,
    a dict of column -> SQL expression built from the statement's ``excluded`` row. The expressions must
    not hold bound values (use ``null()``, not ``None``): SQLAlchemy sends a statement with parameters
    outside ``VALUES`` one row at a time."""
    if not rows:
        return
    index = [table.c[k] for k in keys]
    if conn.dialect.name == "postgresql":
        statement = postgresql.insert(table)
        statement = statement.on_conflict_do_update(index_elements=index, set_=update(statement.excluded))
        returning = statement.returning(index[0])
        for start in range(0, len(rows), _CHUNK):
            conn.execute(returning, list(rows[start:start + _CHUNK])).all()
        return
    statement = sqlite.insert(table)
    statement = statement.on_conflict_do_update(index_elements=index, set_=update(statement.excluded))
    for start in range(0, len(rows), _CHUNK):
        conn.execute(statement, list(rows[start:start + _CHUNK]))


def upsert_statement(conn: Connection, table: Table, keys: Sequence[str], updated: Sequence[str],
                     values: dict[str, Any] | None = None) -> Any:
    """``INSERT ... ON CONFLICT (keys) DO UPDATE SET updated = excluded.updated`` in the connection's dialect."""
    statement = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)
    if values is not None:
        statement = statement.values(values)
    return statement.on_conflict_do_update(index_elements=[table.c[k] for k in keys],
                                           set_={c: statement.excluded[c] for c in updated})


@dataclass(frozen=True, slots=True)
class _CopyUpsert:
    """PostgreSQL's bulk upsert of one table and column set: the rows are copied into a staging table."""

    create: pgsql.Composed  # the session's staging table (temporary, emptied at commit), typed like the columns
    copy: pgsql.Composed  # COPY into it
    insert: Any  # INSERT INTO table (columns) SELECT columns FROM staging ON CONFLICT (keys) DO UPDATE ...
    truncate: pgsql.Composed  # emptied after each upsert: the transaction may upsert again


_BULK: dict[tuple[str, str, tuple[str, ...], tuple[str, ...], tuple[str, ...]], Any] = {}


def _values_upsert(conn: Connection, table: Table, keys: Sequence[str], columns: Sequence[str],
                   updated: Sequence[str]) -> str:
    """``INSERT ... VALUES (?, ...) ON CONFLICT ...`` with positional parameters in ``columns`` order."""
    compiled = upsert_statement(conn, table, keys, updated, {c: bindparam(c) for c in columns}).inline().compile(
        dialect=conn.dialect)
    if tuple(compiled.positiontup or ()) != tuple(columns):
        raise RuntimeError(f"unexpected parameter order {compiled.positiontup}")
    return str(compiled)


def _copy_upsert(conn: Connection, table: Table, keys: Sequence[str], columns: Sequence[str],
                 updated: Sequence[str]) -> _CopyUpsert:
    """The statements of a PostgreSQL bulk upsert: the driver's own (staging table, COPY) quoted by psycopg,
    the upsert built by SQLAlchemy."""
    from psycopg import sql as pgsql  # PostgreSQL only

    # one staging table per table and session: each table is upserted with one column set
    staging_name = f"metabridge_bulk_{table.name}"
    staged = pgsql.Identifier(staging_name)
    target = pgsql.Identifier(table.schema, table.name) if table.schema else pgsql.Identifier(table.name)
    names = pgsql.SQL(", ").join(pgsql.Identifier(c) for c in columns)
    staging = sql_table(staging_name, *(sql_column(c) for c in columns))
    statement = postgresql.insert(table).from_select(list(columns), select(*staging.c))
    statement = statement.on_conflict_do_update(index_elements=[table.c[k] for k in keys],
                                                set_={c: statement.excluded[c] for c in updated})
    return _CopyUpsert(
        create=pgsql.SQL("CREATE TEMPORARY TABLE IF NOT EXISTS {} ON COMMIT DELETE ROWS AS "
                         "SELECT {} FROM {} WITH NO DATA").format(staged, names, target),
        copy=pgsql.SQL("COPY {} ({}) FROM STDIN").format(staged, names),
        insert=statement,
        truncate=pgsql.SQL("TRUNCATE {}").format(staged),
    )


def bulk_upsert(conn: Connection, table: Table, keys: Sequence[str], columns: Sequence[str],
                updated: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
    """Upsert ``rows``: tuples in ``columns`` order, JSON columns already encoded (``orjson.dumps``, as text).

    Syncs and member loads write 10,000 to 100,000 rows at a time, and SQLAlchemy's executemany (each
    parameter processed in Python, JSON encoded by the stdlib) was most of their cost. So the statements are
    compiled once by SQLAlchemy (names, quoting and casts follow the table) and the rows go straight to the
    driver: SQLite's executemany of ``INSERT ... VALUES ... ON CONFLICT``; on PostgreSQL ``COPY`` into a
    temporary table, then one ``INSERT ... SELECT ... ON CONFLICT`` (psycopg's executemany spent more client
    time per row than the server spent storing it; COPY about a seventh of it).
    """
    if not rows:
        return
    rows = rows if isinstance(rows, list) else list(rows)
    dialect = conn.dialect
    cache_key = (dialect.name, table.fullname, tuple(keys), tuple(columns), tuple(updated))
    statements = _BULK.get(cache_key)
    if statements is None:
        build = _copy_upsert if dialect.name == "postgresql" else _values_upsert
        statements = _BULK[cache_key] = build(conn, table, keys, columns, updated)
    if dialect.name != "postgresql":
        conn.exec_driver_sql(statements, rows)
        return
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(statements.create)
        with cursor.copy(statements.copy) as copy:
            for row in rows:
                copy.write_row(row)
        conn.execute(statements.insert)
        cursor.execute(statements.truncate)
    finally:
        cursor.close()


#: Rows changed since the last ANALYZE (the open transaction's included) below which statistics are kept.
ANALYZE_AFTER_ROWS = 10_000

#: Rows changed since the last ANALYZE, as a share of the rows it counted, past which statistics are stale.
STALE_FRACTION = 0.5


def refresh_stale_statistics(conn: Connection, table: Table, rows_written: int) -> None:
    """``ANALYZE table`` on PostgreSQL when the rows changed since its last analysis (counting the
    ``rows_written`` by the caller's open transaction, which PostgreSQL counts only once it commits) reach
    :data:`ANALYZE_AFTER_ROWS` and :data:`STALE_FRACTION` of the rows that analysis counted. Called by the
    bulk writes themselves, in their transaction (an ANALYZE there counts the rows it has not committed yet).

    Autovacuum analyzes a table a while after it grew; until then the planner still believes it is as small
    as before the load. A second 50,000-product import and the first sync of a freshly loaded catalog
    scanned the whole table for each keyed lookup (quadratic), and a sync of a 1,000,000-member audience
    hashed a table of 400,000 held rows it believed empty for each page (minutes per page). Tables are
    written ~5,000 to 10,000 rows per transaction (a catalog import's chunk, an items_batch confirmation, a
    member load's page), so it is what changed since the last analysis that counts, not one write's size;
    analyzing after each write would cost more than the writes. Relative to the table's size (each analysis
    of a growing table at about 1.5 times the rows of the previous one), a load of N rows analyzes about
    log(N) times, not N / 10,000. PostgreSQL publishes other transactions' counts up to a second late, which
    only delays an analysis. SQLite needs nothing (its plans use the index).
    """
    if conn.dialect.name != "postgresql":
        return
    changed, counted = conn.exec_driver_sql(
        "SELECT s.n_mod_since_analyze, greatest(c.reltuples, 0) FROM pg_stat_user_tables s "
        "JOIN pg_class c ON c.oid = s.relid WHERE s.relid = %(table)s::regclass",
        {"table": table.name},
    ).one_or_none() or (0, 0)
    changed += rows_written
    if changed >= ANALYZE_AFTER_ROWS and changed >= STALE_FRACTION * counted:
        conn.exec_driver_sql(f"ANALYZE {table.name}")
