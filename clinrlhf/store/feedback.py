"""Feedback's one write path: many requests in one transaction, without the ORM.

An ORM write cost about 2 ms of CPU per entry (a unit of work, an identity map and six statements).
Here a batch of requests takes four statements whatever its size: the cards and their suggestions,
the audit lock, an `INSERT ... ON CONFLICT (idempotency_key) DO NOTHING RETURNING id` of every new
entry, and one insert of their audit events. The service's `group_commit.py` gathers the batches;
`record_feedback` writes one entry in the caller's ORM transaction, through the same core.

The same entry is stored once however it arrives (its idempotency key), and each stored row gets a
create event that vouches for its digest (`digest.values_sha256`), as `verify_audit` expects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from clinrlhf.store.audit import append_events, lock_chain
from clinrlhf.store.digest import values_sha256
from clinrlhf.store.errors import NotFoundError, StoreError
from clinrlhf.store.feedback_entry import (
    FeedbackEntry,
    accepted_suggestion,
    check_client,
    check_override_reason,
)
from clinrlhf.store.group_commit import GroupCommit
from clinrlhf.store.models import Card, Feedback, Suggestion, new_id, utcnow

_CARDS = (
    select(Card.id, Card.clinician, Card.client, Suggestion.id)
    .outerjoin(Suggestion, Suggestion.card_id == Card.id)
    .where(Card.id.in_(bindparam("ids", expanding=True)))
)
_FEEDBACK = Feedback.__table__
_INSERT = {
    dialect.__name__.rsplit(".", 1)[-1]: dialect.insert(_FEEDBACK)
    .on_conflict_do_nothing(index_elements=[_FEEDBACK.c.idempotency_key])
    .returning(_FEEDBACK.c.id)
    for dialect in (sqlite, postgresql)
}


@dataclass(frozen=True)
class FeedbackJob:
    """One request's entries, stored all or none."""

    entries: tuple[FeedbackEntry, ...]
    actor: str  # how the audit trail names the caller
    clinician: str  # the pseudonym to credit when a card does not name the user it was shown to
    client: str | None = None  # pseudonym of the reporting CDS client; must be the card's own


@dataclass(frozen=True)
class FeedbackCounts:
    stored: int  # entries this job stored
    duplicates: int  # entries already stored, by an earlier request or earlier in this batch


@dataclass(frozen=True)
class _CardInfo:
    clinician: str | None
    client: str | None
    suggestions: frozenset[str]


def _cards(connection: Connection, ids: Iterable[str]) -> dict[str, _CardInfo]:
    found: dict[str, tuple[str | None, str | None, set[str]]] = {}
    for card, clinician, client, suggestion in connection.execute(_CARDS, {"ids": sorted(set(ids))}):
        entry = found.setdefault(card, (clinician, client, set()))
        if suggestion is not None:
            entry[2].add(suggestion)
    return {card: _CardInfo(clin, client, frozenset(s)) for card, (clin, client, s) in found.items()}


def _row(entry: FeedbackEntry, cards: Mapping[str, _CardInfo], job: FeedbackJob) -> dict[str, Any]:
    card = cards.get(entry.card)
    if card is None:
        raise NotFoundError("no such card")
    check_client(card.client, job.client)
    check_override_reason(entry)
    clinician = card.clinician or job.clinician
    return {
        "id": new_id(),
        "card_id": entry.card,
        "clinician": clinician,
        "outcome": entry.outcome,
        "accepted_suggestion_id": accepted_suggestion(entry, card.suggestions),
        "override_reason_system": entry.override_reason_system,
        "override_reason_code": entry.override_reason_code,
        "has_comment": entry.has_comment,
        "outcome_timestamp": entry.outcome_timestamp,
        "idempotency_key": entry.idempotency_key(clinician),
        "created_at": utcnow(),
        "client": job.client,
    }


def write_feedback(connection: Connection, jobs: Sequence[FeedbackJob]) -> list[FeedbackCounts | Exception]:
    """Write `jobs` in the caller's transaction; the result holds each job's counts, in order.

    A job naming an unknown card (NotFoundError) or a suggestion that does not fit its card
    (InvalidInputError) writes nothing and gets that error in its place; the other jobs go on.
    Nothing is durable, and so nothing may be acknowledged, before the caller commits.
    """
    results: list[FeedbackCounts | Exception] = []
    for plan in _write(connection, jobs):
        if isinstance(plan, StoreError):
            results.append(plan)
        else:
            stored = sum(created for _, created in plan)
            results.append(FeedbackCounts(stored, len(plan) - stored))
    return results


def record_feedback(
    session: Session, entry: FeedbackEntry, *, clinician: str, actor: str, client: str | None = None
) -> tuple[Feedback, bool]:
    """Write one entry in the session's transaction, as `write_feedback` writes a job of one entry
    (audited as `actor`), and return (the stored row, created).

    Raises NotFoundError for an unknown card, WrongClientError when `client` is not the client the
    card was issued to, and InvalidInputError for an entry that does not fit its card.
    """
    session.flush()  # the session's pending rows and audit events first: the core reads both
    [plan] = _write(
        session.connection(), [FeedbackJob((entry,), actor=actor, clinician=clinician, client=client)]
    )
    if isinstance(plan, StoreError):
        raise plan
    [(row, created)] = plan
    key = Feedback.idempotency_key == row["idempotency_key"]
    return session.scalars(select(Feedback).where(key)).one(), created


def _write(
    connection: Connection, jobs: Sequence[FeedbackJob]
) -> list[list[tuple[dict[str, Any], bool]] | StoreError]:
    """Each job's rows, each with whether this write stored it (False: it was stored before), or
    the job's error."""
    # The audit lock comes first, before any feedback row: a writer holding a new row's key while it
    # waited for the lock could deadlock with one holding the lock and inserting the same key.
    lock_chain(connection)
    cards = _cards(connection, (e.card for job in jobs for e in job.entries))
    planned: list[list[dict[str, Any]] | StoreError] = []
    fresh: dict[str, dict[str, Any]] = {}  # idempotency key -> the first row of the batch with it
    for job in jobs:
        try:
            rows = [_row(entry, cards, job) for entry in job.entries]
        except StoreError as err:
            planned.append(err)
            continue
        planned.append(rows)
        for row in rows:
            fresh.setdefault(row["idempotency_key"], row)
    inserted = (
        set(connection.scalars(_INSERT[connection.dialect.name], list(fresh.values()))) if fresh else set()
    )
    results: list[list[tuple[dict[str, Any], bool]] | StoreError] = []
    events: list[dict[str, Any]] = []
    for job, plan in zip(jobs, planned, strict=True):
        if isinstance(plan, StoreError):
            results.append(plan)
            continue
        results.append([(row, row["id"] in inserted) for row in plan])
        events += [_created(job.actor, row) for row in plan if row["id"] in inserted]
    append_events(connection, events)
    return results


def _created(actor: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """The create event of a stored row, vouching for its digest."""
    return {
        "actor": actor,
        "action": "C",
        "entity_type": "Feedback",
        "entity_id": row["id"],
        "entity_sha256": values_sha256(row),
    }


def feedback_writer(engine: Engine) -> GroupCommit[FeedbackJob, FeedbackCounts]:
    """The group committer of feedback on `engine`; a batch holds at most 1000 entries, which keeps
    its card lookup and inserts within SQLite's and PostgreSQL's limits on bound parameters."""
    return GroupCommit(engine, write_feedback, size=lambda job: len(job.entries), max_size=1000)
