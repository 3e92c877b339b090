"""Replay protection in the database: a token id is accepted once, by whichever worker sees it first.

The in-process `MemoryJtiCache` cannot protect `clinrlhf serve --workers N` or several replicas: a
replayed token would be new to every other process. Here the first use is an INSERT that the
primary key (issuer, jti) lets only one writer win, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import itertools
import time

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from clinrlhf.store.db import transaction
from clinrlhf.store.models import UsedTokenId

_TABLE = UsedTokenId.__table__
# INSERT ... ON CONFLICT DO NOTHING RETURNING: a row comes back only to the one writer that won.
_INSERT = {
    dialect.__name__.rsplit(".", 1)[-1]: dialect.insert(_TABLE)
    .on_conflict_do_nothing()
    .returning(_TABLE.c.jti)
    for dialect in (sqlite, postgresql)
}


class DatabaseJtiCache:
    """A `JtiCache` (clinrlhf.identity.replay) kept in the store's `used_token_ids` table."""

    def __init__(self, sessions: sessionmaker[Session], purge_every: int = 1000) -> None:
        self._sessions = sessions
        self._calls = itertools.count(1)
        self._purge_every = purge_every

    def first_use(self, issuer: str, jti: str, expires_at: float) -> bool:
        with transaction(self._sessions) as session:
            insert = _INSERT[session.get_bind().dialect.name]
            row = {"issuer": issuer, "jti": jti, "expires_at": expires_at}
            created = session.execute(insert, row).first() is not None
            if next(self._calls) % self._purge_every == 0:
                # An expired token is refused before its id is looked up, so its id can go.
                session.execute(delete(UsedTokenId).where(UsedTokenId.expires_at < time.time()))
        return created

    def seen(self, issuer: str, jti: str) -> bool:
        with self._sessions() as session:
            expires = session.scalar(
                select(UsedTokenId.expires_at).where(UsedTokenId.issuer == issuer, UsedTokenId.jti == jti)
            )
        return expires is not None and expires > time.time()
