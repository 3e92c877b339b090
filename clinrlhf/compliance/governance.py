"""Who may govern the model registry and the quarantine, and what each decision records.

Every governance action (approve, promote, rollback, quarantine add and release) is taken by a
compliance officer: a verified bearer token, or the dashboard's session, whose role is the
compliance role (or, for an identity provider's token without a `role` claim, whose scopes are
all of the compliance role's). Approving or promoting a version that fails the acceptance criteria
needs an explicit override with a written reason.

What a decision rests on (the criteria used, which of them differ from the defaults, the override
reason, the officer's display name) is a *governance record*: canonical JSON kept beside the trail
in ``$CLINRLHF_HOME/governance/records.ndjson`` and on the MLflow model version, whose SHA-256 an
audit event (`GovernanceRecord`, or `GovernanceOverride` when an override was used) pins in the
hash-chained trail. A record edited later no longer matches its event. The audit actor column keeps
only `<role>:<pseudonym>`; display names live in the record and in MLflow tags.

These are library functions so that the CLI and the compliance dashboard apply one set of rules.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from clinrlhf.compliance.criteria import AcceptanceCriteria
from clinrlhf.identity import ROLE_SCOPES, Principal, actor_pseudonym
from clinrlhf.store.audit import record_audit
from clinrlhf.store.quarantine import Decision
from clinrlhf.store.quarantine import quarantine as quarantine_clinician
from clinrlhf.store.quarantine import release as release_clinician

COMPLIANCE_ROLE = "compliance"
RECORD = "GovernanceRecord"  # audit entity types of the records
OVERRIDE = "GovernanceOverride"
RECORDS_FILE = Path("governance") / "records.ndjson"  # under $CLINRLHF_HOME
MAX_REASON_LENGTH = 2000


class GovernanceRefused(Exception):
    """The action is not allowed; the message is one line for the user."""


@dataclass(frozen=True)
class Officer:
    """A verified compliance identity: `actor` is what the audit trail's actor column holds."""

    actor: str  # "compliance:<pseudonym>"
    name: str  # display name: the token's `name` claim, else the pseudonym
    role: str

    @property
    def display(self) -> str:
        return f"{self.name} ({self.role})"


def is_compliance(principal: Principal) -> bool:
    """The compliance role, or no role claim and every scope the compliance role is granted. A
    token naming another role never qualifies, whatever scopes it lists."""
    if principal.role is not None:
        return principal.role == COMPLIANCE_ROLE
    return set(ROLE_SCOPES[COMPLIANCE_ROLE].split()) <= principal.scopes


def compliance_officer(principal: Principal, key: bytes, action: str) -> Officer:
    """The officer behind `principal`, or GovernanceRefused naming the action."""
    if not is_compliance(principal):
        raise GovernanceRefused(
            f"{action} needs the {COMPLIANCE_ROLE} role, not {principal.role or 'a token without it'}"
        )
    alias = actor_pseudonym(principal, key)
    return Officer(f"{COMPLIANCE_ROLE}:{alias}", principal.name or alias, COMPLIANCE_ROLE)


def override_reason(failed: str | None, reason: str | None, what: str) -> str | None:
    """None for a passing version. A failing one needs a non-empty written reason, returned
    stripped; without one GovernanceRefused names the failed criteria in one line."""
    text = " ".join((reason or "").split())
    if failed is None:
        return None
    if not text:
        raise GovernanceRefused(
            f"acceptance criteria not met: {failed}; to {what} anyway, give a written reason "
            "(--override-reason)"
        )
    if len(text) > MAX_REASON_LENGTH:
        raise GovernanceRefused(f"the override reason is longer than {MAX_REASON_LENGTH} characters")
    return text


def custom_criteria(criteria: AcceptanceCriteria) -> dict[str, float]:
    """The criteria that differ from the defaults, by name."""
    defaults = AcceptanceCriteria().to_dict()
    return {k: v for k, v in criteria.to_dict().items() if defaults[k] != v}


def describe_custom(custom: dict[str, float]) -> str:
    defaults = AcceptanceCriteria().to_dict()
    return ", ".join(f"{k} {v:g} (default {defaults[k]:g})" for k, v in sorted(custom.items()))


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def record_sha256(record: dict[str, Any]) -> str:
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def governance_record(
    officer: Officer,
    action: str,
    *,
    event_id: str | None,
    criteria: AcceptanceCriteria | None = None,
    failed: str | None = None,
    override: str | None = None,
    outcome: str = "0",
) -> dict[str, Any]:
    """What one decision rests on, as recorded beside the trail."""
    record: dict[str, Any] = {
        "action": action,
        "event": event_id,
        "actor": officer.actor,
        "name": officer.name,
        "role": officer.role,
        "time": now(),
        "outcome": outcome,
    }
    if criteria is not None:
        record["criteria"] = criteria.to_dict()
        record["custom_criteria"] = custom_criteria(criteria)
    if failed:
        record["failed"] = failed
    if override:
        record["override_reason"] = override
    return record


def record_governance(session: Session, record: dict[str, Any], entity_id: str, records: Path | None) -> str:
    """Pin `record` in the trail (in the caller's transaction) and append it to `records`; returns
    the pinning event's id."""
    event = record_audit(
        session,
        actor=str(record["actor"]),
        action="E",
        entity_type=OVERRIDE if record.get("override_reason") else RECORD,
        entity_id=entity_id,
        outcome="0",
        entity_sha256=record_sha256(record),
    )
    session.flush()
    if records is not None:
        records.parent.mkdir(parents=True, exist_ok=True)
        with open(records, "a", encoding="utf-8") as f:
            f.write(json.dumps({"record_event": event.id, **record}, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
    return event.id


def decide_quarantine(
    session: Session,
    principal: Principal,
    key: bytes,
    clinician: str,
    *,
    release: bool,
    reason: str,
    reasons: Path | None,
) -> Decision:
    """Quarantine or release `clinician` for the compliance officer `principal`, in the caller's
    transaction: the trail's actor is the officer's pseudonym, the reason's `by` their display name."""
    officer = compliance_officer(
        principal, key, "releasing a clinician" if release else "quarantining a clinician"
    )
    decide = release_clinician if release else quarantine_clinician
    return decide(session, clinician, reason=reason, actor=officer.actor, reasons=reasons, by=officer.display)
