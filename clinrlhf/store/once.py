"""Insert-once semantics keyed on a UNIQUE idempotency column, safe under concurrent writers."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

T = TypeVar("T")


def insert_once(session: Session, row: T, model: type[T], key: str) -> tuple[T, bool]:
    """Add `row` unless a row of `model` with the same `idempotency_key` exists.

    Returns (the stored row, created). A concurrent writer that wins the race between our lookup and
    our insert trips the UNIQUE constraint; the savepoint confines that failure and we return its row.
    """
    column: Any = model.idempotency_key  # type: ignore[attr-defined]
    query = select(model).where(column == key)
    found = session.scalars(query).first()
    if found is not None:
        return found, False
    if session.get_bind().dialect.name == "sqlite":
        # Our SQLite transactions begin IMMEDIATE: no other writer can insert between the lookup
        # and this insert, so the savepoint (two more statements per row) buys nothing.
        session.add(row)
        session.flush()
        return row, True
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        found = session.scalars(query).first()
        if found is None:
            raise
        return found, False
    return row, True
