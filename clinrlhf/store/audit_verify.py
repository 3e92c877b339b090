"""Verify the audit trail end to end: the keyed hash chain itself, the rows its create events vouch
for, and (given anchors) that nothing was cut from its end.

The chain alone detects an edited or removed event anywhere but at the end, and because its links
are keyed, a chain recomputed by someone without the audit key fails too. Create events carry the
digest of the row they wrote, so an edit or deletion of a feedback row is detected, and so is a
row that no event vouches for. Cutting events off the end leaves a shorter, valid chain; only heads
remembered outside the database reveal that (as RFC 6962's signed tree heads do): the witness file
that `clinrlhf audit verify` keeps, and the head every pipeline run records in MLflow.
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import cast

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from clinrlhf.store.audit import GENESIS, audit_key, event_hash
from clinrlhf.store.digest import RECORDED, Recorded, recorded_type, row_sha256
from clinrlhf.store.models import AuditEvent, Card

_BATCH = 1000


@dataclass(frozen=True)
class Head:
    """One event of the chain, by position and hash."""

    seq: int
    hash: str


@dataclass(frozen=True)
class Anchor:
    """A head remembered outside the database, and where (for the message that names it)."""

    head: Head
    source: str


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
    heads: dict[int, str] = field(default_factory=dict)  # seq -> hash, for the anchored seqs only


def _walk_chain(session: Session, report: AuditReport, anchored: set[int]) -> _Walk:
    walk, prev, key = _Walk(), GENESIS, audit_key(session)
    events = session.scalars(select(AuditEvent).order_by(AuditEvent.seq).execution_options(yield_per=_BATCH))
    for event in events:
        if not hmac.compare_digest(event_hash(event, key), event.hash):
            report.problem = (
                f"audit event seq {event.seq} was changed: its hash does not match its content"
                + (" under this deployment's audit key" if key is not None else "")
            )
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
        if event.seq in anchored:
            walk.heads[event.seq] = event.hash
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


def _check_anchors(report: AuditReport, walk: _Walk, anchors: Sequence[Anchor]) -> None:
    """Every remembered head must still be in the chain, at its place and with its hash."""
    for anchor in sorted(anchors, key=lambda a: a.head.seq):
        if walk.heads.get(anchor.head.seq) != anchor.head.hash:
            report.problem = (
                f"audit event seq {anchor.head.seq}, the head recorded by {anchor.source}, is missing or "
                "changed: events were cut from the end of the trail or the trail was rewritten"
            )
            return


def verify_audit(
    session: Session, witness: Head | None = None, anchors: Sequence[Anchor] = ()
) -> AuditReport:
    """Check the whole trail. `witness` is a head seen by an earlier verification and `anchors` are
    heads recorded elsewhere (MLflow runs, reports); each must still be in the chain. Read it in one
    snapshot (`consistent_read`), or concurrent writes look like tampering."""
    report = AuditReport()
    remembered = [*anchors, *([Anchor(witness, "the last verification")] if witness else [])]
    walk = _walk_chain(session, report, {a.head.seq for a in remembered})
    if report.problem is None:
        _check_anchors(report, walk, remembered)
    if report.problem is None:
        _check_rows(session, report, walk)
    return report
