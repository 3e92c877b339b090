"""A hash-chained audit trail: each event's hash covers its content and the previous event's hash,
so editing or removing any past event breaks every hash after it (a Merkle-Damgard style chain,
as in RFC 6962 logs, kept linear rather than as a tree)."""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from clinrlhf.store.models import AuditEvent, new_id, utcnow

GENESIS = "0" * 64
Action = Literal["C", "R", "U", "D", "E"]  # FHIR AuditEvent.action: create read update delete execute
Outcome = Literal["0", "4", "8", "12"]  # FHIR AuditEvent.outcome: success .. major failure
_PG_AUDIT_LOCK = 7_142_025  # arbitrary constant naming the advisory lock that serialises appends


def event_hash(event: AuditEvent) -> str:
    """SHA-256 of the canonical JSON of the event's content and its predecessor's hash."""
    content = {
        "id": event.id,
        "recorded": event.recorded.isoformat(),
        "actor": event.actor,
        "action": event.action,
        "entity_type": event.entity_type,
        "entity_id": event.entity_id,
        "outcome": event.outcome,
        "prev_hash": event.prev_hash,
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _head(session: Session) -> str:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_AUDIT_LOCK})
    last = session.scalars(select(AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)).first()
    return last or GENESIS


def record_audit(
    session: Session, *, actor: str, action: Action, entity_type: str, entity_id: str, outcome: Outcome = "0"
) -> AuditEvent:
    """Append one event in the caller's transaction, so it commits (or not) with what it records."""
    event = AuditEvent(
        id=new_id(),
        recorded=utcnow(),
        actor=actor,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        outcome=outcome,
        prev_hash=_head(session),
    )
    event.hash = event_hash(event)
    session.add(event)
    session.flush()
    return event


def verify_chain(session: Session) -> int | None:
    """The `seq` of the first event whose link or hash does not hold, or None if the chain is intact."""
    prev = GENESIS
    for event in session.scalars(select(AuditEvent).order_by(AuditEvent.seq)):
        if event.prev_hash != prev or event_hash(event) != event.hash:
            return event.seq
        prev = event.hash
    return None
