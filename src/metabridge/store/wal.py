"""SQLite WAL checkpoints in a background thread, so that no API call's commit pays for one.

In WAL mode SQLite copies the log back into the database file (a *checkpoint*, with an fsync) inside
whichever commit pushes the log past ``wal_autocheckpoint`` pages. Under steady ingest that was an API
call every half second: 11-17 ms spent in its COMMIT while holding the engine's writer lock, and every
request queued behind it waited as long (measured as most of the p99 accept latency).

Here a daemon thread runs ``PRAGMA wal_checkpoint(PASSIVE)`` on its own connection a few times a second.
A passive checkpoint never waits for (nor blocks) readers or writers, and it releases the GIL while it
copies pages. The engine's connections keep a much higher ``wal_autocheckpoint`` as a safety net, so the
log stays bounded even if this thread were stopped.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import weakref
from pathlib import Path

__all__ = ["JOURNAL_SIZE_LIMIT", "SAFETY_NET_PAGES", "WalCheckpointer", "checkpoint_in_background"]

log = logging.getLogger(__name__)

#: ``wal_autocheckpoint`` of the engine's connections: a commit checkpoints only past ~32 MB of log.
SAFETY_NET_PAGES = 8_000
#: How often the background thread checkpoints. At 10,000 events/s that is ~3 MB of log per pass.
INTERVAL_S = 0.25
#: After a checkpoint the log is reused from its start; a larger file is cut back to this size by the next
#: writer (a per-connection setting: the engine's connections set it, see ``store.db``).
JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024


class WalCheckpointer:
    """Checkpoints the WAL of the SQLite file at ``path`` every ``interval_s`` until :meth:`stop`."""

    def __init__(self, path: Path, interval_s: float = INTERVAL_S) -> None:
        self.path = path
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="metabridge-wal-checkpoints", daemon=True)

    def start(self) -> WalCheckpointer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while not self._stop.wait(self.interval_s):
                if conn is None:
                    if not self.path.exists():  # the engine creates the file on its first connection
                        continue
                    conn = sqlite3.connect(self.path, timeout=5, isolation_level=None, check_same_thread=False)
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # e.g. the file was deleted (a test's temporary folder)
                    log.debug("WAL checkpoint of %s failed: %s", self.path, exc)
        finally:
            if conn is not None:
                conn.close()


def checkpoint_in_background(owner: object, path: Path) -> WalCheckpointer:
    """Start a checkpointer for ``path`` that stops when ``owner`` (the engine) is garbage-collected."""
    checkpointer = WalCheckpointer(path).start()
    weakref.finalize(owner, checkpointer.stop)
    return checkpointer
