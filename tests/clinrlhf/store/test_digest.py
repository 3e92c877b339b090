"""The digest a create event vouches for: one function, whether a writer digests the values it
inserts (the feedback write path, without the ORM) or the verifier digests the row as loaded."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from clinrlhf.store import FeedbackEntry, transaction
from clinrlhf.store.digest import row_sha256, values_sha256
from clinrlhf.store.feedback import FeedbackJob, feedback_writer
from clinrlhf.store.models import AuditEvent, Feedback

EHR = "e" * 64
REASON = "https://clinrlhf.dev/fhir/CodeSystem/override-reason"


def test_columns_added_later_are_left_out_only_while_unset() -> None:
    """Rows vouched for before `client` and `seat` existed keep their digest; a set value counts."""
    row = {"id": "f-1", "recorded": datetime(2026, 3, 1, 12, 0, 0, 250), "has_comment": False}
    assert values_sha256({**row, "client": None, "seat": None}) == values_sha256(row)
    assert values_sha256({**row, "client": "x" * 64}) != values_sha256(row)
    assert values_sha256({**row, "has_comment": None}) != values_sha256(row)  # only the later columns


def test_a_written_row_digests_the_same_from_its_values_and_as_loaded(engine, sessions, cards) -> None:
    card, (_, s1) = cards()
    entries = (
        FeedbackEntry(
            card=card,
            outcome="accepted",
            accepted_suggestions=(s1,),
            override_reason_system=REASON,
            override_reason_code="other",
            has_comment=True,
            outcome_timestamp=datetime(2026, 3, 1, 12, 0, 0, 123456),
        ),
        FeedbackEntry(card=card, outcome="overridden"),
    )
    writer = feedback_writer(engine)
    writer.write_batch([FeedbackJob(entries[:1], actor="cds-client:a", clinician=EHR, client="c" * 64)])
    writer.write_batch([FeedbackJob(entries[1:], actor="cds-client:b", clinician=EHR)])  # no client
    vouched = event_digests(sessions)
    with sessions() as session:
        rows = session.scalars(select(Feedback)).all()
        assert len(rows) == 2 and {row.client for row in rows} == {"c" * 64, None}
        for row in rows:
            assert vouched[row.id] == row_sha256(row)


def event_digests(sessions: sessionmaker[Session]) -> dict[str, str | None]:
    with transaction(sessions) as session:
        query = select(AuditEvent).where(AuditEvent.entity_type == "Feedback", AuditEvent.action == "C")
        return {e.entity_id: e.entity_sha256 for e in session.scalars(query)}
