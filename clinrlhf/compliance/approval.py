"""A compliance officer's approval of one model version, recorded twice: as tags on the MLflow
model version (what people browsing MLflow see) and as an event in the hash-chained audit trail
(what cannot be edited quietly). Promotion trusts an approval only when both agree, so an approval
tag typed into the MLflow UI by hand does not count.

Approval checks the acceptance gate too: a version that fails it is approved only with a written
override reason, recorded with the criteria in a governance record (clinrlhf.compliance.governance)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mlflow.tracking import MlflowClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from clinrlhf.compliance.criteria import AcceptanceCriteria, failures
from clinrlhf.compliance.gate import evaluate_version
from clinrlhf.compliance.governance import (
    COMPLIANCE_ROLE,
    GovernanceRefused,
    compliance_officer,
    governance_record,
    override_reason,
    record_governance,
)
from clinrlhf.compliance.registry import MODEL_NAME, POLICY_SHA256, get_version
from clinrlhf.identity import Principal
from clinrlhf.store import record_audit, transaction
from clinrlhf.store.models import AuditEvent

APPROVER_ROLE = COMPLIANCE_ROLE
APPROVAL = "ModelApproval"  # audit entity types, one per kind of registry change
PROMOTION = "ModelPromotion"
ROLLBACK = "ModelRollback"
ACTOR_TAG = "clinrlhf.approval.actor"
TIME_TAG = "clinrlhf.approval.time"
EVENT_TAG = "clinrlhf.approval.audit_event_id"
NAME_TAG = "clinrlhf.approval.name"  # the approver's display name; the actor tag keeps the pseudonym
RECORD_TAG = "clinrlhf.approval.record"  # the governance record (criteria, override), as JSON
OVERRIDE_TAG = "clinrlhf.approval.override_reason"
CRITERIA_TAG = "clinrlhf.approval.custom_criteria"  # criteria that differ from the defaults, as JSON


class ApprovalError(GovernanceRefused):
    """The approval cannot be recorded; the message is one line for the user."""


@dataclass(frozen=True)
class Approval:
    version: str
    actor: str
    time: str
    event_id: str
    name: str = ""
    override_reason: str | None = None


def entity_id(version: str, name: str = MODEL_NAME) -> str:
    return f"{name}/{version}"


def approve(
    client: MlflowClient,
    sessions: sessionmaker[Session],
    version: str,
    principal: Principal,
    key: bytes,
    name: str = MODEL_NAME,
    *,
    criteria: AcceptanceCriteria | None = None,
    override: str | None = None,
    records: Path | None = None,
) -> Approval:
    """Record `principal`'s approval of `version`, which must pass `criteria` (the defaults unless
    given) or carry a written `override` reason."""
    try:
        officer = compliance_officer(principal, key, "approving a model")
    except GovernanceRefused as err:
        raise ApprovalError(str(err)) from None
    criteria = criteria or AcceptanceCriteria()
    mv = get_version(client, version, name)
    failed = failures(evaluate_version(client, mv, criteria))
    try:
        reason = override_reason(failed, override, f"approve version {mv.version}")
    except GovernanceRefused as err:
        raise ApprovalError(str(err)) from None
    with transaction(sessions) as session:
        done = find_approval(client, session, mv.version, name)
        if done is not None:
            raise ApprovalError(f"version {mv.version} is already approved by {done.actor} at {done.time}")
        # The event pins the weights approved. The tags are set before it commits: if the commit
        # fails, they name an event that does not exist, and find_approval ignores them.
        event = record_audit(
            session,
            actor=officer.actor,
            action="E",
            entity_type=APPROVAL,
            entity_id=entity_id(mv.version, name),
            entity_sha256=mv.tags.get(POLICY_SHA256),
        )
        session.flush()
        record = governance_record(
            officer, "approve", event_id=event.id, criteria=criteria, failed=failed, override=reason
        )
        record_governance(session, record, entity_id(mv.version, name), records)
        tags = {
            ACTOR_TAG: officer.actor,
            NAME_TAG: officer.name,
            TIME_TAG: record["time"],
            EVENT_TAG: event.id,
            RECORD_TAG: json.dumps(record, sort_keys=True),
        }
        if reason:
            tags[OVERRIDE_TAG] = reason
        if record["custom_criteria"]:
            tags[CRITERIA_TAG] = json.dumps(record["custom_criteria"], sort_keys=True)
        for tag, value in tags.items():
            client.set_model_version_tag(name, mv.version, tag, value)
    return Approval(str(mv.version), officer.actor, record["time"], event.id, officer.name, reason)


def find_approval(
    client: MlflowClient, session: Session, version: str, name: str = MODEL_NAME
) -> Approval | None:
    """The version's approval if its tags and its audit event agree, else None."""
    mv = get_version(client, version, name)
    event_id = mv.tags.get(EVENT_TAG)
    if not event_id:
        return None
    event = session.scalars(select(AuditEvent).where(AuditEvent.id == event_id)).first()
    agrees = (
        event is not None
        and event.entity_type == APPROVAL
        and event.entity_id == entity_id(mv.version, name)
        and event.actor == mv.tags.get(ACTOR_TAG)
        and event.actor.startswith(f"{APPROVER_ROLE}:")
        and event.outcome == "0"
        and event.entity_sha256 == mv.tags.get(POLICY_SHA256)
    )
    return (
        Approval(
            str(mv.version),
            event.actor,
            mv.tags.get(TIME_TAG, ""),
            event.id,
            mv.tags.get(NAME_TAG, ""),
            mv.tags.get(OVERRIDE_TAG),
        )
        if agrees and event
        else None
    )
