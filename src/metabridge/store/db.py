"""Engines for the two supported stores.

SQLite is the embedded default: one file, WAL mode so the API and the in-process worker read while the
other writes, and a busy timeout instead of "database is locked" errors. PostgreSQL is the production
store where many API and worker processes share one queue (claims use ``FOR UPDATE SKIP LOCKED``).

SQLite transactions of one process:

- a write transaction (``engine.begin()``, or any transaction not marked read-only) starts with
  ``BEGIN IMMEDIATE``, so a reader that later writes cannot deadlock with another writer. Before it, the
  thread waits on the engine's writer lock, and is woken the moment the previous writer commits. Left to
  SQLite alone, a waiting writer polls with sleeps of 1, 2, 5, 10 ... 100 ms, which adds tens of
  milliseconds to an API call that arrives while the worker commits a batch;
- :func:`read_only` connections start a plain (deferred) ``BEGIN``: in WAL mode they read a consistent
  snapshot and never wait for writers. They must not write.

Other processes on the same file (``metabridge events import``) still meet at SQLite's busy timeout.
WAL checkpoints run in a background thread (:mod:`metabridge.store.wal`), not inside commits.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

from metabridge.store.wal import JOURNAL_SIZE_LIMIT, SAFETY_NET_PAGES, checkpoint_in_background

#: Execution option marking a connection read-only (see :func:`read_only`).
READ_ONLY = "metabridge_read_only"
#: A writer waits this long for the engine's writer lock, then falls back to SQLite's busy timeout.
_WRITER_LOCK_TIMEOUT_S = 30.0


def normalize_url(url: str) -> str:
    """Accept the URLs people paste (``postgresql://``, ``postgres://``) and pick the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def read_only(engine: Engine) -> Connection:
    """A connection for reads only: on SQLite its transactions never wait for (or block) writers.

    ``with read_only(engine) as conn: ...``; on PostgreSQL it is an ordinary connection.
    """
    return engine.connect().execution_options(**{READ_ONLY: True})


class _SQLiteConnection(sqlite3.Connection):
    """The DB-API connection: releases the engine's writer lock once COMMIT / ROLLBACK is done.

    SQLAlchemy's ``commit`` / ``rollback`` events fire *before* the DB-API call, too early to let the
    next writer in; the pool's reset on check-in also ends up here, so a lock is never left held.
    """

    writer_lock: threading.Lock | None = None

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._release()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._release()

    def close(self) -> None:  # an invalidated connection is closed without a rollback
        try:
            super().close()
        finally:
            self._release()

    def _release(self) -> None:
        lock, self.writer_lock = self.writer_lock, None
        if lock is not None:
            lock.release()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # autocommit off at the driver level; SQLAlchemy issues BEGIN itself (see below).
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute(f"PRAGMA wal_autocheckpoint={SAFETY_NET_PAGES}")  # checkpoints: see store.wal
    cursor.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
    cursor.close()


def _sqlite_begin(writer_lock: threading.Lock) -> Any:
    def begin(conn: Connection) -> None:
        if conn.get_execution_options().get(READ_ONLY):
            conn.exec_driver_sql("BEGIN")
            return
        raw = conn.connection.dbapi_connection
        if writer_lock.acquire(timeout=_WRITER_LOCK_TIMEOUT_S):
            raw.writer_lock = writer_lock  # type: ignore[union-attr]
        # Take the write lock at BEGIN: a reader that later writes cannot deadlock with the worker.
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            raw._release()  # type: ignore[union-attr]
            raise

    return begin


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; creates the SQLite file's folder when needed."""
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30, "isolation_level": None,
                          "factory": _SQLiteConnection},
            pool_size=kwargs.pop("pool_size", 8),
            **kwargs,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin(threading.Lock()))
        if parsed.database and parsed.database != ":memory:":
            checkpointer = checkpoint_in_background(engine, Path(parsed.database).expanduser())
            event.listen(engine, "engine_disposed", lambda _engine: checkpointer.stop())
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=kwargs.pop("pool_size", 10), **kwargs)
