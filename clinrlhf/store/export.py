"""A versioned, de-identified snapshot of every stored judgment, recorded in the audit trail."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from clinrlhf.feedback.canonical import canonical_judgments
from clinrlhf.feedback.judgment import snapshot_sha256, to_ndjson
from clinrlhf.store.audit import record_audit
from clinrlhf.store.models import utcnow
from clinrlhf.store.snapshot import export_judgments
from clinrlhf.world.world import World

SNAPSHOT_FORMAT = "clinrlhf.judgments.v1"  # one Judgment.to_dict() per line, sorted keys


@dataclass(frozen=True)
class Snapshot:
    version: str  # "<UTC time>-<sha256 prefix>": when it was taken, and what it holds
    created: datetime  # naive UTC
    ndjson: bytes
    sha256: str
    kinds: dict[str, int] = field(default_factory=dict)  # judgment kind -> count

    @property
    def judgments(self) -> int:
        return sum(self.kinds.values())


def export_snapshot(
    session: Session, *, actor: str, world: World | None = None, now: datetime | None = None
) -> Snapshot:
    """Export every judgment and append the export to the audit trail, in the caller's transaction:
    the snapshot exists for the caller only if its audit event commits. The snapshot is canonical
    (clinrlhf.feedback.canonical): its bytes depend on what was judged, not on the order the panel's
    threads recorded it or the random ids the store gave the cards."""
    judgments = canonical_judgments(export_judgments(session, world))
    sha = snapshot_sha256(judgments)
    created = now or utcnow()
    snapshot = Snapshot(
        version=f"{created:%Y%m%dT%H%M%SZ}-{sha[:12]}",
        created=created,
        ndjson=to_ndjson(judgments),
        sha256=sha,
        kinds=dict(sorted(Counter(j.kind for j in judgments).items())),
    )
    record_audit(
        session,
        actor=actor,
        action="E",
        entity_type="Snapshot",
        entity_id=snapshot.version,
        entity_sha256=sha,
    )
    return snapshot
