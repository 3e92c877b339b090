"""CDS Hooks feedback: which suggestion of a card a clinician accepted, or that they overrode it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy.orm import Session

from clinrlhf.store.cards import get_card
from clinrlhf.store.errors import InvalidInputError
from clinrlhf.store.models import Feedback
from clinrlhf.store.once import insert_once


@dataclass(frozen=True)
class FeedbackEntry:
    """One feedback entry, already parsed; the free-text user comment is reduced to a flag."""

    card: str
    outcome: Literal["accepted", "overridden"]
    accepted_suggestions: tuple[str, ...] = ()
    override_reason_system: str | None = None
    override_reason_code: str | None = None
    has_comment: bool = False
    outcome_timestamp: datetime | None = None  # naive UTC

    def idempotency_key(self, clinician: str) -> str:
        """SHA-256 of the canonical entry: a client that re-sends the same entry stores it once.
        Only parsed fields go in, so no digest of free text is ever kept."""
        content = asdict(self) | {"clinician": clinician}
        content["outcome_timestamp"] = self.outcome_timestamp.isoformat() if self.outcome_timestamp else None
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def record_feedback(session: Session, entry: FeedbackEntry, *, clinician: str) -> tuple[Feedback, bool]:
    """Store one entry (at most once) and return (row, created).

    Raises NotFoundError for an unknown card and InvalidInputError when the accepted suggestions do
    not fit the card (cards allow at most one selection, so an accepted entry names exactly one).
    """
    card = get_card(session, entry.card)
    accepted = None
    if entry.outcome == "accepted":
        if len(entry.accepted_suggestions) != 1:
            raise InvalidInputError("an accepted outcome must name exactly one suggestion of the card")
        accepted = next((s for s in card.suggestions if s.id == entry.accepted_suggestions[0]), None)
        if accepted is None:
            raise InvalidInputError("the accepted suggestion does not belong to the card")
    elif entry.accepted_suggestions:
        raise InvalidInputError("an overridden outcome cannot accept suggestions")
    key = entry.idempotency_key(clinician)
    row = Feedback(
        card_id=card.id,
        clinician=clinician,
        outcome=entry.outcome,
        accepted_suggestion_id=accepted.id if accepted else None,
        override_reason_system=entry.override_reason_system,
        override_reason_code=entry.override_reason_code,
        has_comment=entry.has_comment,
        outcome_timestamp=entry.outcome_timestamp,
        idempotency_key=key,
    )
    return insert_once(session, row, Feedback, key)
