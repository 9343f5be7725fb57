"""A PostgreSQL server for the tests: the one already running, or a throwaway one started here.

CI and developer machines usually run PostgreSQL on 127.0.0.1:5432 (trust auth). Where none answers, a
temporary cluster is created with the installed server binaries (``./dev.sh test`` installs Debian's
``postgresql`` package when they are missing) and removed at the end. The PostgreSQL tests never skip:
a store that is not tested does not ship.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

DEFAULT_URL = os.environ.get("METABRIDGE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def _server_binaries() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return os.path.dirname(found[-1])
    initdb = shutil.which("initdb")
    if initdb:
        return os.path.dirname(initdb)
    raise RuntimeError(
        "no PostgreSQL server answers at 127.0.0.1:5432 and no server binaries are installed; "
        "run ./dev.sh test (it installs Debian's postgresql package) or set METABRIDGE_TEST_POSTGRES_URL"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def throwaway_server() -> Iterator[str]:
    """initdb + pg_ctl start in a temporary folder; yields a URL to its ``postgres`` database."""
    bindir = _server_binaries()
    workdir = tempfile.mkdtemp(prefix="metabridge-pg-")
    datadir = os.path.join(workdir, "data")
    port = _free_port()
    run_as: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(workdir, "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*run_as, f"{bindir}/initdb", "-D", datadir, "-U", "postgres", "-A", "trust", "--no-sync"],
                   check=True, capture_output=True)
    subprocess.run(
        [*run_as, f"{bindir}/pg_ctl", "-D", datadir, "-w", "-l", os.path.join(workdir, "log"),
         "-o", f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200", "start"],
        check=True, capture_output=True,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*run_as, f"{bindir}/pg_ctl", "-D", datadir, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def postgres_server() -> Iterator[str]:
    """The running server if one answers, else a throwaway one."""
    if _answers(DEFAULT_URL):
        yield DEFAULT_URL
        return
    with throwaway_server() as url:
        deadline = time.monotonic() + 30
        while not _answers(url):
            if time.monotonic() > deadline:
                raise RuntimeError("the throwaway PostgreSQL server did not start")
            time.sleep(0.2)
        yield url


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new empty database on the server for one test; dropped afterwards."""
    name = f"mbtest_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = server_url.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
