"""Engines and sessions for the store: SQLite by default, PostgreSQL (psycopg 3) in production."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import DDL, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from clinrlhf.store.models import AuditEvent, Base

SQLITE_BUSY_TIMEOUT_MS = 30_000

# The audit trail is append-only in the database itself, not only by convention in this code.
_SQLITE_APPEND_ONLY = [
    DDL(
        f"CREATE TRIGGER IF NOT EXISTS audit_events_no_{op.lower()} BEFORE {op} ON audit_events "
        "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"
    )
    for op in ("UPDATE", "DELETE")
]
_POSTGRES_APPEND_ONLY = [
    DDL(
        "CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger AS $$ "
        "BEGIN RAISE EXCEPTION 'audit_events is append-only'; END; $$ LANGUAGE plpgsql"
    ),
    DDL(
        "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
        "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
    ),
]
for _ddl in _SQLITE_APPEND_ONLY:
    event.listen(AuditEvent.__table__, "after_create", _ddl.execute_if(dialect="sqlite"))
for _ddl in _POSTGRES_APPEND_ONLY:
    event.listen(AuditEvent.__table__, "after_create", _ddl.execute_if(dialect="postgresql"))


def _configure_sqlite(engine: Engine, in_memory: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # BEGIN IMMEDIATE takes the write lock up front. With the driver's deferred BEGIN, two
        # writers that both read first (the audit chain head, an idempotency key) deadlock on the
        # lock upgrade, and SQLite fails one at once instead of waiting out busy_timeout.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys, a busy timeout and immediate transactions."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    in_memory = parsed.database in (None, "", ":memory:")
    if not in_memory and parsed.database:
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
    if in_memory:
        kwargs["poolclass"] = StaticPool  # one shared connection, or each would see its own empty DB
    engine = create_engine(url, **kwargs)
    _configure_sqlite(engine, in_memory)
    return engine


def init_db(engine: Engine) -> None:
    """Create missing tables (and the audit trail's append-only triggers)."""
    Base.metadata.create_all(engine)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def make_session(engine: Engine) -> Session:
    """One session on `engine` (a context manager), for scripts that read the store once."""
    return Session(engine, expire_on_commit=False)


def open_store(url: str) -> sessionmaker[Session]:
    """Engine, tables and a session factory in one call: what the CLI and the service need."""
    engine = make_engine(url)
    init_db(engine)
    return make_session_factory(engine)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work commits on success and rolls back on any exception."""
    with factory() as session, session.begin():
        yield session
