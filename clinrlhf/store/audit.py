"""A keyed, hash-chained audit trail: each event's hash covers its content and the previous event's
hash, so editing or removing any past event breaks every hash after it (a Merkle-Damgard style
chain, as in RFC 6962 logs, kept linear rather than as a tree).

The chain is keyed: each link is an HMAC-SHA256 under the deployment's audit key, which lives
outside the database (CLINRLHF_AUDIT_KEY in production). Someone who can write the database can
edit an event and recompute every later link only if they also hold the key; without it, a
recomputed chain no longer verifies. The key travels with the engine (`bind_audit_key`), so every
writer of the store, ORM sessions and the feedback write path alike, links with the same key.
Cutting events off the end leaves a valid shorter chain whatever the key; anchors kept outside the
database catch that (`clinrlhf.store.audit_verify`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine, insert, select, text
from sqlalchemy.orm import Session

from clinrlhf.store.digest import created_row_sha256
from clinrlhf.store.models import AuditEvent, new_id, utcnow

GENESIS = "0" * 64
Action = Literal["C", "R", "U", "D", "E"]  # FHIR AuditEvent.action: create read update delete execute
Outcome = Literal["0", "4", "8", "12"]  # FHIR AuditEvent.outcome: success .. major failure
_PG_AUDIT_LOCK = 7_142_025  # arbitrary constant naming the advisory lock that serialises appends
_LOCK = text("SELECT pg_advisory_xact_lock(:k)")
_LAST = select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
_INSERT = insert(AuditEvent)
_HASHED = ("id", "recorded", "actor", "action", "entity_type", "entity_id", "outcome", "prev_hash")
_KEYS: WeakKeyDictionary[Engine, bytes] = WeakKeyDictionary()


def bind_audit_key(engine: Engine, key: bytes) -> None:
    """Link every audit event written through `engine` with HMAC-SHA256 under `key`, and verify with
    it. A store opened without a key (library use, tests) links with plain SHA-256."""
    if len(key) < 16:
        raise ValueError("the audit key must be at least 16 bytes")
    _KEYS[engine] = key


def audit_key(bind: Connection | Session | Engine) -> bytes | None:
    """The audit key bound to the engine behind `bind`, or None for an unkeyed store."""
    if isinstance(bind, Session):
        bind = bind.get_bind()
    if isinstance(bind, Connection):
        bind = bind.engine
    return _KEYS.get(bind)


def event_hash(event: AuditEvent, key: bytes | None = None) -> str:
    """The link of `event`: a MAC of the canonical JSON of its content and its predecessor's hash."""
    return values_hash({name: getattr(event, name) for name in (*_HASHED, "entity_sha256")}, key)


def values_hash(values: Mapping[str, Any], key: bytes | None = None) -> str:
    """`event_hash` of an event given as its column values, for writers that bypass the ORM: both
    kinds of writer produce the one format that `verify_audit` checks. HMAC-SHA256 under `key`, or
    plain SHA-256 for an unkeyed store."""
    content = {name: values[name] for name in _HASHED}
    content["recorded"] = values["recorded"].isoformat()
    if values.get("entity_sha256") is not None:  # absent from events written before the column existed
        content["entity_sha256"] = values["entity_sha256"]
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
    if key is None:
        return hashlib.sha256(canonical).hexdigest()
    return hmac.new(key, canonical, hashlib.sha256).hexdigest()


def lock_chain(connection: Connection | Session) -> None:
    """Serialise appends to the chain until the transaction ends. On PostgreSQL that is a
    transaction-scoped advisory lock; SQLite write transactions (BEGIN IMMEDIATE) already are."""
    bind = connection.get_bind() if isinstance(connection, Session) else connection
    if bind.dialect.name == "postgresql":
        connection.execute(_LOCK, {"k": _PG_AUDIT_LOCK})


def last_link(connection: Connection | Session) -> tuple[int, str] | None:
    """(seq, hash) of the last event, or None for an empty trail: the one query for the chain's head."""
    row = connection.execute(_LAST).first()
    return None if row is None else (row.seq, row.hash)


def chain_head(connection: Connection | Session) -> str:
    """The hash of the last event, or GENESIS; call `lock_chain` first in the same transaction."""
    last = last_link(connection)
    return GENESIS if last is None else last[1]


def append_events(connection: Connection, events: Sequence[Mapping[str, Any]]) -> None:
    """Append events, in order, in the caller's transaction, without the ORM: one executemany for a
    whole batch. Each mapping gives actor, action, entity_type, entity_id and, for a create,
    entity_sha256. Call `lock_chain` first in the same transaction."""
    prev, rows, key = chain_head(connection), [], audit_key(connection)
    for event in events:
        row = {"id": new_id(), "recorded": utcnow(), "outcome": "0", "entity_sha256": None, **event}
        row["prev_hash"] = prev
        row["hash"] = prev = values_hash(row, key)
        rows.append(row)
    if rows:
        connection.execute(_INSERT, rows)


def _head(session: Session) -> str:
    lock_chain(session)
    return chain_head(session)


def record_audit(
    session: Session,
    *,
    actor: str,
    action: Action,
    entity_type: str,
    entity_id: str,
    outcome: Outcome = "0",
    entity_sha256: str | None = None,
) -> AuditEvent:
    """Append one event in the caller's transaction, so it commits (or not) with what it records.

    A create event of a stored row (Case, Card, Feedback, QuestionnaireResponse) records that row's
    digest, taken from the session, so that a later edit of the row itself is detectable too.
    """
    if entity_sha256 is None and action == "C":
        entity_sha256 = created_row_sha256(session, entity_type, entity_id)
    event = AuditEvent(
        id=new_id(),
        recorded=utcnow(),
        actor=actor,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        outcome=outcome,
        entity_sha256=entity_sha256,
        prev_hash=_head(session),
    )
    event.hash = event_hash(event, audit_key(session))
    # No flush of its own: the next event's head query autoflushes this one, and so does the commit
    # (one flush for the row and its event is measurably cheaper than two).
    session.add(event)
    return event


def verify_chain(session: Session) -> int | None:
    """The `seq` of the first event whose link or hash does not hold, or None if the chain is intact."""
    prev, key = GENESIS, audit_key(session)
    for event in session.scalars(select(AuditEvent).order_by(AuditEvent.seq)):
        if event.prev_hash != prev or not hmac.compare_digest(event_hash(event, key), event.hash):
            return event.seq
        prev = event.hash
    return None
