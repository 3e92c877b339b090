"""Counts of what the store holds (`clinrlhf stats`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clinrlhf.store.models import AuditEvent, Card, Case, Feedback, Review, Suggestion


def _count(session: Session, model: type[Any], *where: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def counts(session: Session) -> dict[str, int]:
    """Row counts: cases, cards, feedback and reviews first, then finer breakdowns."""
    return {
        "cases": _count(session, Case),
        "cards": _count(session, Card),
        "feedback": _count(session, Feedback),
        "reviews": _count(session, Review),
        "suggestions": _count(session, Suggestion),
        "cases_cds": _count(session, Case, Case.source == "cds"),
        "cases_ingest": _count(session, Case, Case.source == "ingest"),
        "feedback_accepted": _count(session, Feedback, Feedback.outcome == "accepted"),
        "feedback_overridden": _count(session, Feedback, Feedback.outcome == "overridden"),
        "audit_events": _count(session, AuditEvent),
    }
