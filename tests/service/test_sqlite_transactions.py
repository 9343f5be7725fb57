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
