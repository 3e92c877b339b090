"""Which clinicians' feedback is held out of training until a person has looked at it.

The state lives in the hash-chained audit trail itself: quarantining a clinician, and releasing
them, are audit events (entity type `Quarantine` or `QuarantineRelease`, entity id the clinician's
pseudonym), and who is quarantined now is the replay of those events in order. No table can then
disagree with the trail, and `clinrlhf audit verify` covers every decision with the rest of it.

A decision's reason (who decided and why) is free text and kept beside the trail, in a JSON-lines
file under $CLINRLHF_HOME, one line per event; the event records the SHA-256 of that line
(`entity_sha256`), so a reason that was edited later no longer matches the trail and is shown as
such. Reasons are about clinicians' feedback, never about patients: do not write patient details.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from clinrlhf.store.audit import record_audit
from clinrlhf.store.models import AuditEvent

QUARANTINE = "Quarantine"
RELEASE = "QuarantineRelease"
REASONS_FILE = Path("quarantine") / "reasons.ndjson"  # under $CLINRLHF_HOME


class QuarantineError(ValueError):
    """A decision that makes no sense in the current state (e.g. releasing someone not quarantined)."""


@dataclass(frozen=True)
class Decision:
    seq: int
    event_id: str
    recorded: datetime
    actor: str
    clinician: str
    action: str  # "quarantine" | "release"
    sha256: str | None


@dataclass(frozen=True)
class Reason:
    text: str
    by: str
    verified: bool  # the line's digest matches the one its audit event recorded


def decision_record(clinician: str, action: str, reason: str, by: str) -> dict[str, str]:
    return {"clinician": clinician, "action": action, "reason": reason, "by": by}


def record_sha256(record: dict[str, str]) -> str:
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def decisions(session: Session) -> list[Decision]:
    """Every quarantine and release, oldest first."""
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.entity_type.in_((QUARANTINE, RELEASE))).order_by(AuditEvent.seq)
    )
    return [
        Decision(
            e.seq,
            e.id,
            e.recorded,
            e.actor,
            e.entity_id,
            "quarantine" if e.entity_type == QUARANTINE else "release",
            e.entity_sha256,
        )
        for e in events
    ]


def replay(history: list[Decision]) -> dict[str, Decision]:
    """Who is quarantined after these decisions, with the decision that put them there."""
    state: dict[str, Decision] = {}
    for d in history:
        if d.action == "quarantine":
            state.setdefault(d.clinician, d)
        else:
            state.pop(d.clinician, None)
    return state


def quarantined(session: Session) -> dict[str, Decision]:
    return replay(decisions(session))


def _decide(
    session: Session,
    clinician: str,
    action: str,
    *,
    reason: str,
    actor: str,
    reasons: Path | None,
    by: str | None = None,
) -> Decision:
    if not clinician or not reason.strip():
        raise QuarantineError("a decision needs a clinician pseudonym and a reason")
    current = quarantined(session)
    if action == "quarantine" and clinician in current:
        raise QuarantineError(f"clinician {clinician} is already quarantined")
    if action == "release" and clinician not in current:
        raise QuarantineError(f"clinician {clinician} is not quarantined")
    # `by` is whom people read as the decider (a display name); the trail's actor stays a pseudonym.
    record = decision_record(clinician, action, reason.strip(), by or actor)
    digest = record_sha256(record)
    event = record_audit(
        session,
        actor=actor,
        action="U",
        entity_type=QUARANTINE if action == "quarantine" else RELEASE,
        entity_id=clinician,
        entity_sha256=digest,
    )
    session.flush()
    if reasons is not None:
        _append_reason(reasons, event.id, record)
    return Decision(event.seq, event.id, event.recorded, actor, clinician, action, digest)


def quarantine(
    session: Session,
    clinician: str,
    *,
    reason: str,
    actor: str,
    reasons: Path | None = None,
    by: str | None = None,
) -> Decision:
    """Hold `clinician`'s feedback out of training from now on, in the caller's transaction."""
    return _decide(session, clinician, "quarantine", reason=reason, actor=actor, reasons=reasons, by=by)


def release(
    session: Session,
    clinician: str,
    *,
    reason: str,
    actor: str,
    reasons: Path | None = None,
    by: str | None = None,
) -> Decision:
    """Let a reviewed clinician's feedback back into training, in the caller's transaction."""
    return _decide(session, clinician, "release", reason=reason, actor=actor, reasons=reasons, by=by)


def _append_reason(path: Path, event_id: str, record: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"event": event_id, **record}, sort_keys=True) + "\n"
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def read_reasons(path: Path, history: list[Decision]) -> dict[str, Reason]:
    """event id -> its reason, marked verified when the line matches the digest in the trail."""
    if not path.exists():
        return {}
    expected = {d.event_id: d.sha256 for d in history}
    out: dict[str, Reason] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            raw = json.loads(line)
            event = str(raw.pop("event"))
            record = {k: str(raw[k]) for k in ("clinician", "action", "reason", "by")}
        except (ValueError, KeyError, AttributeError):
            continue
        if event in expected:
            ok = expected[event] == record_sha256(record)
            out[event] = Reason(record["reason"], record["by"], ok)
    return out
