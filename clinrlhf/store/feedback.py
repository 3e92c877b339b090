"""CDS Hooks feedback: which suggestion of a card a clinician accepted, or that they overrode it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy.orm import Session

from clinrlhf.store.audit import lock_chain
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
        # The fields by hand, not dataclasses.asdict (a deep copy, most of this method's cost); keys
        # already stored must not change, so a test pins the digest of a known entry.
        content = {
            "card": self.card,
            "outcome": self.outcome,
            "accepted_suggestions": list(self.accepted_suggestions),
            "override_reason_system": self.override_reason_system,
            "override_reason_code": self.override_reason_code,
            "has_comment": self.has_comment,
            "outcome_timestamp": self.outcome_timestamp.isoformat() if self.outcome_timestamp else None,
            "clinician": clinician,
        }
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def accepted_suggestion(entry: FeedbackEntry, suggestions: Collection[str]) -> str | None:
    """The suggestion an entry accepts, given the ids of its card's suggestions; None if overridden.

    Raises InvalidInputError when the accepted suggestions do not fit the card (cards allow at most
    one selection, so an accepted entry names exactly one)."""
    if entry.outcome == "accepted":
        if len(entry.accepted_suggestions) != 1:
            raise InvalidInputError("an accepted outcome must name exactly one suggestion of the card")
        if entry.accepted_suggestions[0] not in suggestions:
            raise InvalidInputError("the accepted suggestion does not belong to the card")
        return entry.accepted_suggestions[0]
    if entry.accepted_suggestions:
        raise InvalidInputError("an overridden outcome cannot accept suggestions")
    return None


def record_feedback(session: Session, entry: FeedbackEntry, *, clinician: str) -> tuple[Feedback, bool]:
    """Store one entry (at most once) and return (row, created).

    Raises NotFoundError for an unknown card and InvalidInputError (see `accepted_suggestion`). The
    service writes feedback in batches instead (`feedback_batch.py`), with the same checks and keys.
    """
    card = get_card(session, entry.card)
    accepted = accepted_suggestion(entry, {s.id for s in card.suggestions})
    lock_chain(session)  # before the insert, as batch writers do: see feedback_batch.py
    key = entry.idempotency_key(clinician)
    row = Feedback(
        card_id=card.id,
        clinician=clinician,
        outcome=entry.outcome,
        accepted_suggestion_id=accepted,
        override_reason_system=entry.override_reason_system,
        override_reason_code=entry.override_reason_code,
        has_comment=entry.has_comment,
        outcome_timestamp=entry.outcome_timestamp,
        idempotency_key=key,
    )
    return insert_once(session, row, Feedback, key)
