"""Which database errors mean "the store cannot take writes right now", as opposed to a bug.

A caller that gets one of these can try again: the transaction was rolled back (or never began), so
nothing of it was stored, unless its commit landed and only the reply was lost, which idempotent
writes absorb. The service answers them with 503 (or 507 for a full disk) instead of a 500.
"""

from __future__ import annotations

import enum
import sqlite3

from sqlalchemy import exc

from clinrlhf.store.sqlite_tx import WriterQueueTimeout

# PostgreSQL SQLSTATE 53100 disk_full; class 53 is "insufficient resources" (out of memory, too many
# connections), which, unlike a full disk, passes by itself.
_PG_DISK_FULL = "53100"


class Outage(enum.Enum):
    """Why the store refused a transaction."""

    UNAVAILABLE = "unavailable"  # down, restarting, unreachable, or out of connections
    LOCKED = "locked"  # another writer holds the lock past the busy timeout (SQLite)
    FULL = "full"  # no room to write: a full disk, or SQLite's max_page_count


def outage_of(error: BaseException) -> Outage | None:
    """The outage `error` reports, or None if it is not one (a constraint, a bad statement: a bug)."""
    if isinstance(error, exc.TimeoutError | exc.DisconnectionError):  # pool exhausted, or a dead link
        return Outage.UNAVAILABLE
    if not isinstance(error, exc.DBAPIError):
        return None
    if _disk_full(error.orig):
        return Outage.FULL
    if _sqlite_code(error.orig) == sqlite3.SQLITE_BUSY or isinstance(error.orig, WriterQueueTimeout):
        return Outage.LOCKED
    if error.connection_invalidated or isinstance(error, exc.OperationalError):
        # OperationalError is what both drivers raise for the server going away, refused connections,
        # a restart terminating sessions, serialization failures and lock timeouts: all transient.
        return Outage.UNAVAILABLE
    return None


def _sqlite_code(orig: BaseException | None) -> int | None:
    """The primary SQLite result code of a sqlite3 error (extended codes keep it in the low byte)."""
    code = getattr(orig, "sqlite_errorcode", None) if isinstance(orig, sqlite3.Error) else None
    return code & 0xFF if isinstance(code, int) else None


def _disk_full(orig: BaseException | None) -> bool:
    if _sqlite_code(orig) == sqlite3.SQLITE_FULL:
        return True
    return getattr(orig, "sqlstate", None) == _PG_DISK_FULL
