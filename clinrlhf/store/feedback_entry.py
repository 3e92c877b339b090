"""A CDS Hooks feedback entry (which suggestion of a card a clinician accepted, or that they
overrode it) and the checks it must pass against its card before `feedback.py` writes it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from clinrlhf.store.errors import InvalidInputError, WrongClientError
from clinrlhf.store.override_reasons import is_known


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


def check_client(issued_to: str | None, client: str | None) -> None:
    """Raises WrongClientError when a card issued to one CDS client gets feedback from another: the
    card's clinician is the user its own client asserted, so no other client may speak for them."""
    if issued_to is not None and client is not None and issued_to != client:
        raise WrongClientError("the card was issued to another CDS client")


def check_override_reason(entry: FeedbackEntry) -> None:
    """Raises InvalidInputError unless the entry names no reason or one of `override_reasons`: only
    those codes are ever stored, never a string a client made up (it could carry PHI)."""
    given = (entry.override_reason_system, entry.override_reason_code)
    if given != (None, None) and not is_known(*given):
        raise InvalidInputError("the override reason must be one of the reasons the card offered")


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
