"""Engines and sessions for the store: SQLite by default, PostgreSQL (psycopg 3) in production."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from clinrlhf.store import sqlite_tx
from clinrlhf.store.audit import bind_audit_key
from clinrlhf.store.migrate import upgrade

if TYPE_CHECKING:
    from clinrlhf.settings import Settings

SQLITE_BUSY_TIMEOUT_MS = sqlite_tx.BUSY_TIMEOUT_MS
READ_ONLY = sqlite_tx.READ_ONLY


def strict_json(value: Any) -> str:
    """JSON columns hold RFC 8259 JSON only: NaN or Infinity raise instead of being written."""
    return json.dumps(value, allow_nan=False)


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys, a busy timeout and immediate transactions."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, json_serializer=strict_json)
    in_memory = parsed.database in (None, "", ":memory:")
    if not in_memory and parsed.database:
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False}, "json_serializer": strict_json}
    if in_memory:
        kwargs["poolclass"] = StaticPool  # one shared connection, or each would see its own empty DB
    engine = create_engine(url, **kwargs)
    sqlite_tx.install(engine, None if in_memory else str(Path(parsed.database or "").resolve()))
    return engine


def init_db(engine: Engine) -> None:
    """Migrate the store to the newest schema (`alembic upgrade head`); an empty database gets every
    table, and the audit trail's append-only triggers."""
    upgrade(engine)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def make_session(engine: Engine) -> Session:
    """One session on `engine` (a context manager), for scripts that read the store once."""
    return Session(engine, expire_on_commit=False)


def open_store(url: str, *, audit_key: bytes | None = None) -> sessionmaker[Session]:
    """Engine, tables and a session factory in one call: what the CLI and the service need.

    `audit_key` keys the audit trail's chain (see clinrlhf.store.audit); every command and the
    service pass the deployment's key (`Settings.audit_secret`), so all of them link and verify the
    same chain. Without one the chain is plain SHA-256, for library use and tests only.
    """
    engine = make_engine(url)
    if audit_key is not None:
        bind_audit_key(engine, audit_key)
    init_db(engine)
    return make_session_factory(engine)


def deployment_store(settings: Settings) -> sessionmaker[Session]:
    """The deployment's store: its database, with the audit chain keyed by its audit key."""
    return open_store(settings.resolved_database_url, audit_key=settings.audit_secret)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work commits on success and rolls back on any exception."""
    with factory() as session, session.begin():
        yield session


@contextmanager
def consistent_read(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose reads all see the store as of one moment and never block writers: a deferred
    BEGIN on SQLite (in WAL mode the first read fixes what it sees), REPEATABLE READ on PostgreSQL.
    Nothing it does is committed. (Not to be confused with the feedback snapshot, the NDJSON export
    of judgments: `clinrlhf.store.export`.)"""
    with factory() as session:
        postgres = session.get_bind().dialect.name == "postgresql"
        session.connection(
            execution_options={"isolation_level": "REPEATABLE READ"} if postgres else {READ_ONLY: True}
        )
        try:
            yield session
        finally:
            session.rollback()
