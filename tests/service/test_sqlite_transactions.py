"""SQLite transactions of one process (store.db): writers queue on the engine's lock, readers never wait."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from metabridge.store.db import make_engine, read_only


@pytest.fixture
def engine(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    yield engine
    engine.dispose()


def _in_thread(target) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def test_a_writer_waits_for_the_one_in_progress_then_goes_on(engine: Engine) -> None:
    order: list[str] = []
    holding = threading.Event()

    def first() -> None:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (1)"))
            holding.set()
            time.sleep(0.3)
            order.append("first commits")

    def second() -> None:
        with engine.begin() as conn:
            order.append("second begins")
            conn.execute(text("INSERT INTO t VALUES (2)"))

    one = _in_thread(first)
    holding.wait(5)
    two = _in_thread(second)
    one.join(10)
    two.join(10)
    assert order == ["first commits", "second begins"]
    with read_only(engine) as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 2


def test_a_reader_does_not_wait_for_a_writer_and_sees_committed_rows_only(engine: Engine) -> None:
    holding, done = threading.Event(), threading.Event()

    def writer() -> None:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (1)"))
            holding.set()
            done.wait(10)

    thread = _in_thread(writer)
    holding.wait(5)
    started = time.monotonic()
    with read_only(engine) as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 0
    waited = time.monotonic() - started
    done.set()
    thread.join(10)
    assert waited < 5  # the writer holds its transaction until told: a waiting reader would hang here


@pytest.mark.parametrize("ending", ["exception", "close without commit"])
def test_the_writer_lock_is_released_however_a_transaction_ends(engine: Engine, ending: str) -> None:
    if ending == "exception":
        with pytest.raises(RuntimeError):
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO t VALUES (1)"))
                raise RuntimeError("boom")
    else:
        conn = engine.connect()
        conn.execute(text("INSERT INTO t VALUES (1)"))  # autobegin: a write transaction
        conn.close()  # rolled back by the pool
    finished = threading.Event()

    def writer() -> None:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (2)"))
        finished.set()

    _in_thread(writer)
    assert finished.wait(5), "the next writer is still waiting for the lock"
    with read_only(engine) as conn:
        assert conn.execute(text("SELECT x FROM t")).scalars().all() == [2]


def _main_file_pages(path: Path) -> int:
    return path.stat().st_size // 4096


def test_commits_leave_checkpoints_to_the_background_thread(tmp_path: Path) -> None:
    """5 MB of commits (past SQLite's default 1,000-page autocheckpoint): none of them copies the log into
    the database file; the checkpoint thread does, soon after."""
    path = tmp_path / "db.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE blobs (b BLOB)"))
        time.sleep(0.5)  # let the thread checkpoint the table's creation, then stop it to watch commits alone
        engine.dispose()  # stops the checkpointer (engine_disposed); the engine still works
        before = _main_file_pages(path)
        for _ in range(4):
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO blobs VALUES (:b)"), [{"b": b"x" * 3000} for _ in range(400)])
        time.sleep(0.5)
        assert _main_file_pages(path) - before < 10, "a commit checkpointed the WAL itself"
    finally:
        engine.dispose()

    engine = make_engine(f"sqlite:///{path}")  # a new engine, with its checkpointer running
    before = _main_file_pages(path)  # closing the last connection checkpointed the first part
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO blobs VALUES (:b)"), [{"b": b"y" * 3000} for _ in range(150)])
        deadline = time.monotonic() + 5
        while _main_file_pages(path) - before < 100 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _main_file_pages(path) - before >= 100  # 150 rows of 3 KB (113 pages) now in the database file
    finally:
        engine.dispose()


def test_the_writers_cut_the_log_back_after_a_checkpoint(engine: Engine) -> None:
    """The WAL size limit is per connection and applied by the connection that writes next: the engine's."""
    from metabridge.store.wal import JOURNAL_SIZE_LIMIT

    with engine.begin() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_size_limit").scalar() == JOURNAL_SIZE_LIMIT
