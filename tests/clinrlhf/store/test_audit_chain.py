"""The audit trail is a hash chain, append-only in the database itself, and tamper-evident."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError
from sqlalchemy.orm import Session, sessionmaker

from clinrlhf.store import record_audit, transaction, verify_chain
from clinrlhf.store.audit import GENESIS, event_hash
from clinrlhf.store.models import AuditEvent


def append(sessions: sessionmaker[Session], n: int) -> list[AuditEvent]:
    with transaction(sessions) as session:
        return [
            record_audit(session, actor="clinician:abc", action="C", entity_type="Review", entity_id=str(i))
            for i in range(n)
        ]


def test_each_event_links_to_the_previous_one(sessions) -> None:
    events = append(sessions, 3)
    assert events[0].prev_hash == GENESIS
    assert [e.prev_hash for e in events[1:]] == [e.hash for e in events[:-1]]
    assert all(event_hash(e) == e.hash for e in events)
    with sessions() as session:
        assert verify_chain(session) is None


@pytest.mark.parametrize(
    "statement", ["UPDATE audit_events SET actor = 'someone-else'", "DELETE FROM audit_events"]
)
def test_the_database_refuses_to_rewrite_history(sessions, statement: str) -> None:
    append(sessions, 2)
    with pytest.raises(DatabaseError), transaction(sessions) as session:
        session.execute(text(statement))
    with sessions() as session:
        assert verify_chain(session) is None


def test_tampering_below_the_triggers_is_detected(sessions, engine) -> None:
    events = append(sessions, 3)
    if engine.dialect.name != "sqlite":
        pytest.skip("dropping triggers is shown on SQLite")
    with engine.begin() as conn:  # an attacker with file access drops the trigger and edits a row
        conn.execute(text("DROP TRIGGER audit_events_no_update"))
        conn.execute(
            text("UPDATE audit_events SET entity_id = 'forged' WHERE seq = :s"), {"s": events[1].seq}
        )
    with sessions() as session:
        assert verify_chain(session) == events[1].seq


def test_the_chain_cannot_fork(sessions) -> None:
    (first,) = append(sessions, 1)
    with pytest.raises(DatabaseError), transaction(sessions) as session:
        forged = AuditEvent(
            actor="x",
            action="C",
            entity_type="Case",
            entity_id="1",
            outcome="0",
            prev_hash=first.prev_hash,
            hash="f" * 64,
        )
        session.add(forged)
        session.flush()
