"""Alembic migrations build the store: on an empty database, `upgrade head` yields exactly the
models' schema, on SQLite and on PostgreSQL, and older stores are brought forward."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from clinrlhf.store import init_db, make_engine
from clinrlhf.store.migrate import LEGACY_REVISION, alembic_config, current_revision, head_revision
from clinrlhf.store.models import Base


def schema_diff(engine: Engine) -> list:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)


def test_upgrade_head_on_an_empty_database_yields_exactly_the_models(engine: Engine) -> None:
    assert schema_diff(engine) == []
    with engine.connect() as connection:
        assert current_revision(connection) == head_revision()


def test_the_audit_trail_triggers_come_with_the_migration(engine: Engine) -> None:
    if engine.dialect.name == "sqlite":
        query = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
        expected = {"audit_events_no_update", "audit_events_no_delete"}
    else:
        query = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
        expected = {"audit_events_append_only"}
    with engine.connect() as connection:
        assert set(connection.scalars(text(query))) >= expected


def test_opening_a_migrated_store_again_changes_nothing(engine: Engine) -> None:
    init_db(engine)
    init_db(engine)
    assert schema_diff(engine) == []


def test_a_store_created_before_migrations_is_stamped_and_upgraded(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'legacy.db'}")
    with engine.begin() as connection:  # the schema `create_all` used to build, with no version table
        command.upgrade(alembic_config(connection), LEGACY_REVISION)
        connection.execute(text("DROP TABLE alembic_version"))
    assert "entity_sha256" not in {c["name"] for c in inspect(engine).get_columns("audit_events")}
    init_db(engine)
    assert schema_diff(engine) == []
    engine.dispose()


def test_every_revision_downgrades_and_upgrades_again(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    init_db(engine)
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "base")
        assert set(inspect(connection).get_table_names()) == {"alembic_version"}
    init_db(engine)
    assert schema_diff(engine) == []
    engine.dispose()


@pytest.mark.parametrize(
    "attempt", range(8)
)  # the race (two connections switching a new file to WAL) is rare
def test_processes_opening_a_new_store_at_once_all_succeed(tmp_path: Path, attempt: int) -> None:
    url = f"sqlite:///{tmp_path / f'race{attempt}.db'}"

    def open_one(_: int) -> None:
        engine = make_engine(url)
        init_db(engine)
        engine.dispose()

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(open_one, range(4)))
    engine = make_engine(url)
    assert schema_diff(engine) == []
    engine.dispose()
