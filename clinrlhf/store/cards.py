"""Cards and their suggestions, as shown to a clinician by the CDS service."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session, joinedload

from clinrlhf.store.errors import NotFoundError
from clinrlhf.store.models import Card, Suggestion


def add_card(
    session: Session,
    *,
    case_id: str,
    target: str,
    prompt: str,
    model_version: str,
    suggestions: Sequence[tuple[str | None, str]],
    clinician: str | None = None,
    client: str | None = None,
    device_id: str | None = None,
) -> Card:
    """Store a card with its suggestions, given as (drug, text) in rank order (0 is recommended).
    `client` is the pseudonym of the CDS client that asserted `clinician` (the card's user);
    `device_id` the model that drafted it (clinrlhf.store.devices)."""
    card = Card(
        case_id=case_id,
        target=target,
        prompt=prompt,
        model_version=model_version,
        clinician=clinician,
        client=client,
        device_id=device_id,
    )
    card.suggestions = [
        Suggestion(rank=i, drug=drug, text=text) for i, (drug, text) in enumerate(suggestions)
    ]
    session.add(card)
    session.flush()
    return card


def get_card(session: Session, card_id: str) -> Card:
    # One query for the card and its suggestions: feedback and reviews check one against the other.
    card = session.get(Card, card_id, options=[joinedload(Card.suggestions)])
    if card is None:
        raise NotFoundError("no such card")
    return card
