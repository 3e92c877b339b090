"""Alembic environment for the store.

`clinrlhf.store.init_db` hands over a connection already inside a transaction (and, on PostgreSQL,
holding the migration lock), so the whole upgrade commits or rolls back as one. Run by the `alembic`
command instead (`alembic -c clinrlhf/store/migrations/alembic.ini ...`), it connects to the store
that the settings name.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from clinrlhf.store.models import Base


def run(connection: Connection) -> None:
    # Batch mode lets one migration alter tables on SQLite too (it copies the table, as SQLite
    # cannot ALTER most things in place); on PostgreSQL it emits plain ALTER statements.
    context.configure(
        connection=connection, target_metadata=Base.metadata, render_as_batch=True, compare_type=True
    )
    with context.begin_transaction():
        context.run_migrations()


def run_from_settings() -> None:
    from clinrlhf.settings import load_settings
    from clinrlhf.store.db import make_engine

    engine = make_engine(load_settings().resolved_database_url)
    try:
        with engine.begin() as connection:
            run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("clinrlhf migrations run online only: they need a database connection")
given = context.config.attributes.get("connection")
if given is not None:
    run(given)
else:
    run_from_settings()
