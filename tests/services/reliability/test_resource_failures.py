"""A database that cannot take a write: locked by another process, or full. Each is a clean
OperationOutcome (503 with Retry-After when locked, 507 when full) that stores nothing, not even
part of a request, and the service takes writes again as soon as the database can.

The disk is filled by SQLite's `max_page_count` on the service's connections: a real full disk
needs a small filesystem (root, a loop mount), and RLIMIT_FSIZE makes SQLite report an I/O error
rather than a full disk. Both drivers' errors are mapped by `clinrlhf.store.outage`, whose
classification is checked below on the errors PostgreSQL and SQLite raise.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError, OperationalError, TimeoutError

from clinrlhf.store import sqlite_tx
from clinrlhf.store.outage import Outage, outage_of

BATCH = 500  # entries in one request: far more than the free space of any page left


def assert_refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    assert response.headers["retry-after"].isdigit()
    body = response.json()
    assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["code"] == code


def post(url: str, store, body: bytes) -> httpx.Response:
    headers = {"Authorization": f"Bearer {store.token}", "Content-Type": "application/json"}
    return httpx.post(
        f"{url}/cds-services/clinrlhf-treatment/feedback", content=body, headers=headers, timeout=60
    )


def one_request(bodies: list[bytes]) -> bytes:
    """Many entries in one request: they are stored all together or not at all."""
    return json.dumps({"feedback": [json.loads(b)["feedback"][0] for b in bodies]}).encode()


@pytest.fixture
def sqlite_store(make_store):  # noqa: ANN201 -- a Store on SQLite, with cards
    return make_store(None)


@pytest.fixture
def short_busy_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """Give up on a lock after 0.3 s rather than 30, so the test does not wait out the default."""
    monkeypatch.setattr(sqlite_tx, "BUSY_TIMEOUT_MS", 300)


@contextmanager
def exclusive_lock(store) -> Iterator[sqlite3.Connection]:  # noqa: ANN001
    """Another process's connection (as `sqlite3` would open it) holding the database's write lock."""
    holder = sqlite3.connect(
        store.settings.resolved_database_url.removeprefix("sqlite:///"), isolation_level=None
    )
    try:
        holder.execute("BEGIN EXCLUSIVE")
        yield holder
    finally:
        holder.close()


def test_a_locked_database_is_503_and_stores_nothing(sqlite_store, short_busy_timeout, live_server) -> None:
    body = one_request(sqlite_store.bodies(3))
    with live_server(sqlite_store.settings) as live:
        with exclusive_lock(sqlite_store) as holder:
            assert_refused(post(live.url, sqlite_store, body), 503, "lock-error")
            assert httpx.get(f"{live.url}/readyz").status_code == 200  # reads go on: busy, not down
            holder.rollback()
        assert sqlite_store.feedback_rows() == 0
        assert post(live.url, sqlite_store, body).json() == {"stored": 3, "duplicates": 0}
    assert sqlite_store.audit_problem() is None


@pytest.fixture
def full_disk(sqlite_store, live_server) -> Iterator[tuple[Any, Any]]:
    """A running service whose connections may not grow the database file by a single page."""
    with live_server(sqlite_store.settings) as live:
        engine = live.server.config.app.state.clinrlhf.sessions.kw["bind"]

        def no_room(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            pages = cursor.execute("PRAGMA page_count").fetchone()[0]
            cursor.execute(f"PRAGMA max_page_count = {pages}")
            cursor.close()

        event.listen(engine, "connect", no_room)
        engine.dispose()  # every connection from now on is made with the cap
        try:
            yield live, lambda: (event.remove(engine, "connect", no_room), engine.dispose())
        finally:
            if event.contains(engine, "connect", no_room):
                event.remove(engine, "connect", no_room)


def test_a_full_disk_is_507_and_stores_no_part_of_the_request(sqlite_store, full_disk) -> None:
    live, make_room = full_disk
    body = one_request(sqlite_store.bodies(BATCH))
    assert_refused(post(live.url, sqlite_store, body), 507, "no-store")
    assert sqlite_store.feedback_rows() == 0
    assert sqlite_store.audit_problem() is None  # no event without its row, nor a row without its event
    make_room()
    assert post(live.url, sqlite_store, body).json() == {"stored": BATCH, "duplicates": 0}
    assert sqlite_store.feedback_rows() == BATCH


def sqlite_error(code: int) -> sqlite3.OperationalError:
    error = sqlite3.OperationalError("simulated")
    error.sqlite_errorcode = code  # type: ignore[attr-defined]
    return error


@pytest.mark.parametrize(
    ("error", "outage"),
    [
        (OperationalError("INSERT", {}, sqlite_error(sqlite3.SQLITE_FULL)), Outage.FULL),
        (OperationalError("INSERT", {}, psycopg.errors.DiskFull("no space left on device")), Outage.FULL),
        (OperationalError("BEGIN", {}, sqlite_error(sqlite3.SQLITE_BUSY)), Outage.LOCKED),
        (OperationalError("BEGIN", {}, sqlite_error(sqlite3.SQLITE_BUSY | (1 << 8))), Outage.LOCKED),
        (OperationalError("BEGIN", {}, sqlite_tx.WriterQueueTimeout()), Outage.LOCKED),
        (OperationalError("SELECT", {}, psycopg.errors.AdminShutdown("terminating")), Outage.UNAVAILABLE),
        (OperationalError("connect", {}, psycopg.OperationalError("connection refused")), Outage.UNAVAILABLE),
        (TimeoutError("QueuePool limit reached"), Outage.UNAVAILABLE),
        (IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE")), None),
        (ValueError("not a database error"), None),
    ],
    ids=[
        "sqlite-full",
        "postgres-disk-full",
        "sqlite-busy",
        "sqlite-busy-extended",
        "writer-queue",
        "postgres-shutdown",
        "refused",
        "pool-timeout",
        "integrity",
        "other",
    ],
)
def test_outages_are_told_from_bugs(error: Exception, outage: Outage | None) -> None:
    assert outage_of(error) is outage
