"""Bring a store's schema to the newest Alembic revision: the only way tables are created or changed.

Concurrent openers (uvicorn workers, a CLI beside the service) are safe: the upgrade runs in one
transaction that holds the write lock on SQLite (BEGIN IMMEDIATE, see `db.py`) or an advisory lock
on PostgreSQL, and whoever comes second finds the schema already at head.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

MIGRATIONS = Path(__file__).with_name("migrations")
# Stores made by `create_all` before migrations existed hold exactly this revision's schema.
LEGACY_REVISION = "0001"
_PG_MIGRATION_LOCK = 7_142_026  # arbitrary constant naming the advisory lock that serialises upgrades


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration built in code (no alembic.ini), running on `connection` if given."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


@cache
def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _is_legacy(connection: Connection) -> bool:
    tables = set(inspect(connection).get_table_names())
    return "audit_events" in tables and "alembic_version" not in tables


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Upgrade the store behind `engine` to `revision` in one transaction."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        if revision == "head" and current_revision(connection) == head_revision():
            return  # the common case, without loading every revision script
        config = alembic_config(connection)
        if _is_legacy(connection):
            command.stamp(config, LEGACY_REVISION)
        command.upgrade(config, revision)
