"""Export stored feedback as de-identified `Judgment`s: the snapshot reward training reads."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from clinrlhf.feedback.judgment import Judgment
from clinrlhf.store.models import Card, Feedback, Review
from clinrlhf.store.override_reasons import signal_of
from clinrlhf.text.prompt import render_response
from clinrlhf.world.world import World, load_world

_PREFERRED = {"a": 0, "b": 1, "tie": None}


def review_judgments(review: Review, world: World) -> Iterator[Judgment]:
    """A review yields a pairwise judgment (if it has a choice), a rating judgment (if it has any
    rating) and a correction judgment (if it names a drug), all over the same two shown texts."""
    card = review.card
    shown = Judgment(
        kind="pairwise",
        card=card.id,
        patient=card.case.patient,
        clinician=review.clinician,
        prompt=card.prompt,
        responses=(review.suggestion_a.text, review.suggestion_b.text),
    )
    if review.choice is not None:
        yield replace(shown, preferred=_PREFERRED[review.choice])
    if review.rating_a is not None or review.rating_b is not None:
        yield replace(shown, kind="rating", ratings=(review.rating_a, review.rating_b))
    if review.correction_drug is not None:
        yield replace(shown, kind="correction", correction=render_response(world, review.correction_drug))


def feedback_judgment(feedback: Feedback) -> Judgment:
    """CDS feedback over every suggestion of the card, in rank order; accepted=None means overridden,
    with the signal of its stated reason."""
    card = feedback.card
    ranked = list(card.suggestions)
    accepted = next((i for i, s in enumerate(ranked) if s.id == feedback.accepted_suggestion_id), None)
    return Judgment(
        kind="cds",
        card=card.id,
        patient=card.case.patient,
        clinician=feedback.clinician,
        prompt=card.prompt,
        responses=tuple(s.text for s in ranked),
        accepted=accepted,
        override_signal=None
        if accepted is not None
        else signal_of(feedback.override_reason_system, feedback.override_reason_code),
    )


def export_judgments(session: Session, world: World | None = None) -> list[Judgment]:
    """Every stored judgment, ordered by when it was recorded (then by row id), under the store's card
    ids: the same store always exports the same list. The snapshot training reads is its canonical
    form (clinrlhf.store.export.export_snapshot), which no thread timing or card id can change."""
    world = world or load_world()
    card_loads = (selectinload(Card.case), selectinload(Card.suggestions))
    reviews = session.scalars(
        select(Review).options(
            selectinload(Review.card).options(*card_loads),
            selectinload(Review.suggestion_a),
            selectinload(Review.suggestion_b),
        )
    )
    feedback = session.scalars(select(Feedback).options(selectinload(Feedback.card).options(*card_loads)))
    rows: list[tuple[datetime, str, list[Judgment]]] = []
    rows += [(r.created_at, r.id, list(review_judgments(r, world))) for r in reviews]
    rows += [(f.created_at, f.id, [feedback_judgment(f)]) for f in feedback]
    rows.sort(key=lambda row: (row[0], row[1]))
    return [j for _, _, judgments in rows for j in judgments]
