"""SQLite transactions for many threads: WAL, immediate write transactions, and a queue for writers.

SQLite has one writer at a time. A thread that finds the write lock taken waits in SQLite's busy
handler, which sleeps in steps of up to 100 ms before trying again: under concurrent requests most of
the time went to those sleeps (p99 near 1 s at 16 concurrent feedback posts). Writers therefore queue
first, on a Python lock within a process and on an flock(2) of a file beside the database between
processes (uvicorn workers, a CLI beside the service), and are woken the moment the previous writer
commits. The kernel drops a dead process's flock, so a crash cannot wedge the queue; SQLite's busy
handler remains the last word.

SQLAlchemy, not the driver, begins and ends transactions here: the driver is in autocommit mode, the
`begin` event issues BEGIN IMMEDIATE (or a deferred BEGIN for a read-only snapshot), and the `commit`
and `rollback` events issue COMMIT and ROLLBACK themselves, so that the queue moves on only after the
transaction has ended. The driver's own commit() and rollback() that follow are then no-ops.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import weakref
from contextlib import suppress
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # not POSIX: writers of different processes fall back to SQLite's busy handler
    fcntl = None  # type: ignore[assignment]

from sqlalchemy import Engine, event
from sqlalchemy.exc import OperationalError

BUSY_TIMEOUT_MS = 30_000
READ_ONLY = "clinrlhf_read_only"  # execution option: begin a deferred (lock-free) transaction
_HOLDS_LOCK = "clinrlhf_write_lock"


class WriterQueueTimeout(Exception):
    """No turn in the writer queue within BUSY_TIMEOUT_MS: another writer holds the database."""


def _pragmas(dbapi_connection: Any, in_memory: bool) -> None:
    dbapi_connection.isolation_level = None  # autocommit: transactions are ours to begin and end
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    if not in_memory:
        _enable_wal(cursor)  # readers never block the writer
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; no fsync per commit
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _enable_wal(cursor: Any) -> None:
    """Switch a new database file to WAL, waiting out other connections doing the same.

    The switch needs an exclusive lock. When two connections open a new file at once, both hold a
    shared lock and want it exclusive; SQLite answers one of them "database is locked" at once, without
    its busy handler (waiting could deadlock). Once the file is in WAL mode the switch is a no-op, so
    this retries only while a store is being created.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    pause = 0.001
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


class WriterQueue:
    """Mutual exclusion of writers: a thread lock, then (for a database file) a file lock."""

    def __init__(self, database: str | None) -> None:
        self._threads = threading.Lock()
        self._file: Any = None
        if database and fcntl is not None:
            self._file = Path(f"{database}.writers").open("a+b")  # noqa: SIM115 -- held for the engine's life

    def acquire(self) -> bool:
        """False after BUSY_TIMEOUT_MS without the lock (never a wait forever: a thread that already
        writes through another engine on the same file would otherwise wait for itself)."""
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        if not self._threads.acquire(timeout=BUSY_TIMEOUT_MS / 1000):
            return False
        try:
            if self._file is None or self._lock_file(deadline):
                return True
        except BaseException:
            self._threads.release()
            raise
        self._threads.release()
        return False

    def _lock_file(self, deadline: float) -> bool:
        # flock has no timeout: poll, but in steps of at most 2 ms (SQLite's own steps reach 100 ms).
        pause = 0.0002
        while True:
            try:
                fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return False
                time.sleep(pause)
                pause = min(pause * 2, 0.002)

    def close_with(self, engine: Engine) -> None:
        """Close the lock file when the engine is garbage-collected."""
        if self._file is not None:
            weakref.finalize(engine, self._file.close)

    def release(self) -> None:
        if self._file is not None:
            with suppress(OSError):
                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
        self._threads.release()


def install(engine: Engine, database: str | None) -> None:
    """Configure `engine` for SQLite; `database` is its file, or None in memory."""
    in_memory = database is None
    writers = WriterQueue(database)
    writers.close_with(engine)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        _pragmas(dbapi_connection, in_memory)

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # BEGIN IMMEDIATE takes the write lock up front. With a deferred BEGIN, two writers that both
        # read first (the audit chain head, an idempotency key) deadlock on the lock upgrade, and
        # SQLite fails one at once instead of waiting out busy_timeout.
        if connection.get_execution_options().get(READ_ONLY):
            connection.exec_driver_sql("BEGIN")
            return
        if not writers.acquire():
            raise OperationalError(
                "BEGIN IMMEDIATE", {}, WriterQueueTimeout("timed out waiting for the writer queue")
            )
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            writers.release()
            raise
        connection.info[_HOLDS_LOCK] = True

    def _end(connection: Any, statement: str) -> None:
        try:
            connection.exec_driver_sql(statement)
        finally:
            if connection.info.pop(_HOLDS_LOCK, False):
                writers.release()

    @event.listens_for(engine, "commit")
    def _on_commit(connection: Any) -> None:
        _end(connection, "COMMIT")

    @event.listens_for(engine, "rollback")
    def _on_rollback(connection: Any) -> None:
        try:
            open_transaction = connection.connection.dbapi_connection.in_transaction
        except Exception:  # noqa: BLE001 -- an invalidated connection: try, and free the queue anyway
            open_transaction = True
        if open_transaction:
            _end(connection, "ROLLBACK")
        elif connection.info.pop(_HOLDS_LOCK, False):  # the transaction ended already (a failed COMMIT)
            writers.release()
