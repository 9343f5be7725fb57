"""store.bulk.bulk_upsert on both stores: which rows are inserted, which columns a conflict replaces.

On PostgreSQL the rows go through COPY into a staging table and one ``INSERT ... SELECT ... ON CONFLICT``;
on SQLite through one ``INSERT ... VALUES ... ON CONFLICT`` executemany. The same cases run on both.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import orjson
import pytest
from _postgres import fresh_database
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Engine,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    select,
)
from sqlalchemy.dialects import postgresql

from metabridge.store.bulk import bulk_upsert
from metabridge.store.db import make_engine

metadata = MetaData()
items = Table(
    "bulk_items", metadata,
    Column("k1", String(50), nullable=False),
    Column("k2", Integer, nullable=False),
    Column("label", String(100)),
    Column("amount", Numeric(10, 2)),
    Column("payload", JSON, nullable=False),
    Column("first_seen", BigInteger, nullable=False),
    PrimaryKeyConstraint("k1", "k2"),
)
KEYS = ("k1", "k2")
COLUMNS = ("k1", "k2", "label", "amount", "payload", "first_seen")
UPDATED = ("label", "amount", "payload")  # first_seen is kept from the first insert


def row(k1: str, k2: int, label: str | None, amount: str | None, payload: Any, first_seen: int) -> tuple[Any, ...]:
    """A row as bulk_upsert takes it: JSON already encoded."""
    return (k1, k2, label, amount, orjson.dumps(payload).decode(), first_seen)


def stored(k1: str, k2: int, label: str | None, amount: str | None, payload: Any, first_seen: int) -> tuple[Any, ...]:
    """The same row as read back."""
    return (k1, k2, label, None if amount is None else Decimal(amount), payload, first_seen)


ODD_TEXT = "tab\there, new\nline, back\\slash, 'quotes' \"too\", ) VALUES (, ünïcödé, 🎉, %s %(x)s"

CASES: list[tuple[str, list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]] = [
    # (case, rows already there, rows upserted, every row after, by key)
    ("into an empty table", [], [
        ("a", 1, "one", "1.50", {"x": 1}, 10),
        ("b", 1, "two", None, [1, 2], 10),
    ], [
        ("a", 1, "one", "1.50", {"x": 1}, 10),
        ("b", 1, "two", None, [1, 2], 10),
    ]),
    ("a conflict replaces the updated columns only", [
        ("a", 1, "one", "1.50", {"x": 1}, 10),
    ], [
        ("a", 1, "uno", "2.25", {"x": 2}, 99),
    ], [
        ("a", 1, "uno", "2.25", {"x": 2}, 10),
    ]),
    ("the key is both columns", [
        ("a", 1, "one", "1.00", {}, 10),
    ], [
        ("a", 2, "a-two", "3.00", {}, 20),
        ("b", 1, "b-one", "4.00", {}, 20),
    ], [
        ("a", 1, "one", "1.00", {}, 10),
        ("a", 2, "a-two", "3.00", {}, 20),
        ("b", 1, "b-one", "4.00", {}, 20),
    ]),
    ("None clears an updated column", [
        ("a", 1, "one", "1.00", {"x": 1}, 10),
    ], [
        ("a", 1, None, None, {"x": 1}, 20),
    ], [
        ("a", 1, None, None, {"x": 1}, 10),
    ]),
    ("new and conflicting rows together", [
        ("a", 1, "one", "1.00", {}, 10),
        ("c", 1, "three", "3.00", {}, 10),
    ], [
        ("b", 1, "two", "2.00", {"new": True}, 20),
        ("c", 1, "drei", "33.00", {"changed": True}, 20),
    ], [
        ("a", 1, "one", "1.00", {}, 10),
        ("b", 1, "two", "2.00", {"new": True}, 20),
        ("c", 1, "drei", "33.00", {"changed": True}, 10),
    ]),
    ("text and JSON that need escaping", [
        ("a", 1, "one", "1.00", {}, 10),
    ], [
        ("a", 1, ODD_TEXT, "1.00", {"text": ODD_TEXT, "nested": [None, {"\\": "\t"}]}, 20),
        (ODD_TEXT[:50], 7, ODD_TEXT[:100], "0.01", ODD_TEXT, 20),
    ], [
        ("a", 1, ODD_TEXT, "1.00", {"text": ODD_TEXT, "nested": [None, {"\\": "\t"}]}, 10),
        (ODD_TEXT[:50], 7, ODD_TEXT[:100], "0.01", ODD_TEXT, 20),
    ]),
]


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def _all(engine: Engine, table: Table = items) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(table).order_by(*table.primary_key.columns))]


@pytest.mark.parametrize(("before", "upserted", "after"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bulk_upsert_inserts_new_rows_and_replaces_the_updated_columns(
    engine: Engine, before: list[tuple[Any, ...]], upserted: list[tuple[Any, ...]], after: list[tuple[Any, ...]],
) -> None:
    with engine.begin() as conn:
        bulk_upsert(conn, items, KEYS, COLUMNS, UPDATED, [row(*r) for r in before])
    with engine.begin() as conn:
        bulk_upsert(conn, items, KEYS, COLUMNS, UPDATED, [row(*r) for r in upserted])
    assert _all(engine) == sorted(stored(*r) for r in after)


def test_several_upserts_in_one_transaction_and_a_rollback(engine: Engine) -> None:
    with engine.begin() as conn:
        bulk_upsert(conn, items, KEYS, COLUMNS, UPDATED, [row("a", 1, "one", "1.00", {}, 10)])
        bulk_upsert(conn, items, KEYS, COLUMNS, UPDATED, (row("b", 1, "two", "2.00", {}, 10),))  # a tuple
        bulk_upsert(conn, items, KEYS, COLUMNS, UPDATED, [])
        bulk_upsert(conn, items, KEYS, COLUMNS, UPDATED, [row("a", 1, "uno", "1.00", {}, 20)])
    with engine.connect() as conn, conn.begin() as transaction:
        bulk_upsert(conn, items, KEYS, COLUMNS, UPDATED, [row("c", 1, "never", "3.00", {}, 30)])
        transaction.rollback()
    with engine.begin() as conn:  # the staging table (PostgreSQL) is reused by the session: empty again
        bulk_upsert(conn, items, KEYS, COLUMNS, UPDATED, [row("d", 1, "four", "4.00", {}, 40)])
    assert _all(engine) == [stored("a", 1, "uno", "1.00", {}, 10), stored("b", 1, "two", "2.00", {}, 10),
                            stored("d", 1, "four", "4.00", {}, 40)]


# -- PostgreSQL: types cast with parentheses, names that need quoting ----------------------------------------
odd_metadata = MetaData()
casts = Table(
    "bulk_casts", odd_metadata,
    Column("id", Integer, primary_key=True),
    Column("label", Text),
    Column("span", postgresql.INTERVAL(precision=2)),  # a bound value is cast as %s::INTERVAL (2)
    Column("flags", postgresql.BIT(3)),  # and %s::BIT(3)
    Column("note", Text),
)
names = Table(
    "Bulk Odd", odd_metadata,
    Column("Id", Integer, primary_key=True),
    Column("select", Text),  # a reserved word
    Column("Span", postgresql.INTERVAL),
    Column("flags)", postgresql.BIT(3)),
    Column("note (kept)", Text),
)


@pytest.fixture
def pg_engine(postgres_url: str) -> Iterator[Engine]:
    with fresh_database(postgres_url) as url:
        engine = make_engine(url)
        odd_metadata.create_all(engine)
        yield engine
        engine.dispose()


@pytest.mark.parametrize("table", [casts, names], ids=lambda t: t.name)
def test_postgresql_types_cast_with_parentheses_and_names_that_need_quoting(pg_engine: Engine, table: Table) -> None:
    columns = tuple(c.name for c in table.c)
    keys, updated = columns[:1], columns[1:4]  # the last column is kept from the first insert
    day = dt.timedelta(days=1, hours=2, minutes=3, seconds=4)
    with pg_engine.begin() as conn:
        bulk_upsert(conn, table, keys, columns, updated, [(1, "a", day, "101", "first"), (2, "b", None, "000", "x")])
    with pg_engine.begin() as conn:
        bulk_upsert(conn, table, keys, columns, updated, [(1, "A", dt.timedelta(seconds=1.5), "111", "second"),
                                                          (3, "c", day, None, "third")])
    assert _all(pg_engine, table) == [
        (1, "A", dt.timedelta(seconds=1.5), "111", "first"),
        (2, "b", None, "000", "x"),
        (3, "c", day, None, "third"),
    ]
