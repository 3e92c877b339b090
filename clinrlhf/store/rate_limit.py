"""Token buckets in the database: one client's rate is counted once, by every worker and replica.

An in-process limiter cannot hold a client to its rate under `clinrlhf serve --workers N` or several
replicas: each process counts alone, so the client gets N times the rate. Here each request is one
short write transaction on the client's row of `rate_buckets`: the row is locked (SELECT ... FOR
UPDATE on PostgreSQL; on SQLite every write transaction holds the database's write lock, queued by
`sqlite_tx`), refilled for the time since it was last counted, and spent.

Times are wall-clock Unix seconds (`time.time`), the one clock that separate processes and hosts
share; a clock that steps back refills nothing rather than draining the bucket. Clients are named by
a keyed hash (`privacy.deid.pseudonym`), never by an address, a session id or a token. A bucket idle
for `burst / per_second` seconds is full again, the same as no row at all, so such rows are deleted
now and then: the table holds only the clients seen lately.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from clinrlhf.store.db import transaction
from clinrlhf.store.models import RateBucket
from privacy.deid import pseudonym

_TABLE = RateBucket.__table__
# INSERT ... ON CONFLICT DO NOTHING RETURNING: a row comes back only to the one writer that created it.
_INSERT = {
    dialect.__name__.rsplit(".", 1)[-1]: dialect.insert(_TABLE)
    .on_conflict_do_nothing()
    .returning(_TABLE.c.client_key)
    for dialect in (sqlite, postgresql)
}
_NAMESPACE = "rate-limit"


class DatabaseRateLimiter:
    """Token buckets keyed by client, kept in the store's `rate_buckets` table. `wait` blocks on the
    database: call it from a thread, not the event loop. Thread-safe; one instance per process, and
    any number of processes on one database share each client's bucket.

    A database error propagates (`clinrlhf.store.outage` tells an outage from a bug): what to do
    without the database is the caller's choice."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        per_second: float,
        burst: int,
        *,
        key: bytes,
        purge_every: int = 1000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not per_second > 0 or burst < 1:
            raise ValueError("per_second must be positive and burst at least 1")
        self.per_second, self.burst = per_second, burst
        self._sessions, self._key, self._clock = sessions, key, clock
        self._calls = itertools.count(1)
        self._purge_every = purge_every

    def client_key(self, client: str) -> str:
        """How `client` is named in the table: HMAC-SHA256 under the service's key, hex."""
        return pseudonym(self._key, client, namespace=_NAMESPACE)

    def wait(self, client: str) -> float:
        """0 if `client` may go ahead now (and counts the request); else the seconds until it may."""
        key = self.client_key(client)
        with transaction(self._sessions) as session:
            now = self._clock()
            wait = self._spend(session, key, now)
            if next(self._calls) % self._purge_every == 0:
                self._purge(session, now)
        return wait

    def _spend(self, session: Session, key: str, now: float) -> float:
        locked = select(RateBucket.tokens, RateBucket.updated).where(RateBucket.client_key == key)
        locked = locked.with_for_update()  # PostgreSQL; SQLite's write transaction is lock enough
        row = session.execute(locked).first()
        if row is None:
            # A new client (or one idle long enough to be deleted): a full bucket, less this request.
            insert = _INSERT[session.get_bind().dialect.name]
            created = {"client_key": key, "tokens": float(self.burst - 1), "updated": now}
            if session.execute(insert, created).first() is not None:
                return 0.0
            # Another worker's first request for this client won the insert (PostgreSQL only: it
            # waited for that one to commit), so the row is there now: lock it.
            row = session.execute(locked).first()
            if row is None:  # deleted meanwhile as idle, which a bucket just made cannot be
                return 0.0
        tokens = min(float(self.burst), row.tokens + max(0.0, now - row.updated) * self.per_second)
        if tokens < 1:
            # Refused: nothing to write, the row as stored refills to the same level.
            return (1 - tokens) / self.per_second
        stamp = max(row.updated, now)
        session.execute(
            update(RateBucket).where(RateBucket.client_key == key).values(tokens=tokens - 1, updated=stamp)
        )
        return 0.0

    def _purge(self, session: Session, now: float) -> None:
        """Delete buckets idle long enough to be full again. SKIP LOCKED (PostgreSQL): a bucket that
        another request holds is in use, and waiting for it could deadlock with that request's purge."""
        idle = (
            select(RateBucket.client_key)
            .where(RateBucket.updated < now - self.burst / self.per_second)
            .with_for_update(skip_locked=True)
        )
        session.execute(delete(RateBucket).where(RateBucket.client_key.in_(idle)))
