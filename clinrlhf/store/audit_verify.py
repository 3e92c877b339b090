"""Verify the audit trail end to end: the hash chain itself, the rows its create events vouch for,
and (given a witness) that nothing was cut from its end.

The chain alone detects an edited or removed event anywhere but at the end. Create events carry the
digest of the row they wrote, so an edit or deletion of a feedback row is detected too, and so is a
row that no event vouches for. Cutting events off the end leaves a shorter, valid chain; only a head
remembered outside the database (the witness, as in RFC 6962's signed tree heads) reveals that.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import cast

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from clinrlhf.store.audit import GENESIS, event_hash
from clinrlhf.store.digest import RECORDED, Recorded, recorded_type, row_sha256
from clinrlhf.store.models import AuditEvent, Card

_BATCH = 1000


@dataclass(frozen=True)
class Head:
    """One event of the chain, by position and hash."""

    seq: int
    hash: str


@dataclass
class AuditReport:
    events: int = 0
    rows: int = 0  # recorded rows whose digest was checked
    first: Head | None = None  # names the chain: a witness is kept per first event
    head: Head | None = None
    problem: str | None = None  # one line naming the first bad entry

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclass
class _Walk:
    """What the chain walk learns: every create not later deleted, as (type, id) -> (seq, digest)."""

    created: dict[tuple[str, str], tuple[int, str | None]] = field(default_factory=dict)
    witness_seen: bool = False


def _walk_chain(session: Session, report: AuditReport, witness: Head | None) -> _Walk:
    walk, prev = _Walk(), GENESIS
    events = session.scalars(select(AuditEvent).order_by(AuditEvent.seq).execution_options(yield_per=_BATCH))
    for event in events:
        if event_hash(event) != event.hash:
            report.problem = f"audit event seq {event.seq} was changed: its hash does not match its content"
            return walk
        if event.prev_hash != prev:
            report.problem = (
                f"audit event seq {event.seq} does not follow the event before it: "
                "an earlier event was deleted or rewritten"
            )
            return walk
        report.events += 1
        report.first = report.first or Head(event.seq, event.hash)
        report.head, prev = Head(event.seq, event.hash), event.hash
        walk.witness_seen |= witness == report.head
        name = recorded_type(event.entity_type)
        if name and event.action == "C":
            walk.created[(name, event.entity_id)] = (event.seq, event.entity_sha256)
        elif name and event.action == "D":
            walk.created.pop((name, event.entity_id), None)
    return walk


def _check_rows(session: Session, report: AuditReport, walk: _Walk) -> None:
    """Compare every recorded table with the create events; keep the problem of the earliest event."""
    problems: list[tuple[float, str]] = []
    for name, model in RECORDED.items():
        query = select(model).execution_options(yield_per=_BATCH)
        if model is Card:
            query = query.options(selectinload(Card.suggestions))
        rows = cast("Iterable[Recorded]", session.scalars(query))
        for row in rows:
            vouched = walk.created.pop((name, row.id), None)
            if vouched is None:
                problems.append(
                    (math.inf, f"{name} {row.id} has no audit event: it was written around the service")
                )
                continue
            report.rows += 1
            seq, digest = vouched
            if digest is not None and digest != row_sha256(row):
                problems.append((seq, f"{name} {row.id} (created by audit event seq {seq}) was changed"))
    for (name, entity_id), (seq, _) in walk.created.items():
        problems.append((seq, f"{name} {entity_id} (created by audit event seq {seq}) was deleted"))
    if problems:
        report.problem = min(problems)[1]


def verify_audit(session: Session, witness: Head | None = None) -> AuditReport:
    """Check the whole trail. `witness` is a head seen by an earlier verification; it must still be
    in the chain. Read it in one snapshot (`read_snapshot`), or concurrent writes look like tampering."""
    report = AuditReport()
    walk = _walk_chain(session, report, witness)
    if report.problem is None and witness is not None and not walk.witness_seen:
        report.problem = (
            f"audit event seq {witness.seq}, the head at the last verification, is missing or changed: "
            "events were cut from the end of the trail"
        )
    if report.problem is None:
        _check_rows(session, report, walk)
    return report
