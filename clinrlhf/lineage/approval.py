"""A compliance officer's approval of one model version, recorded twice: as tags on the MLflow
model version (what people browsing MLflow see) and as an event in the hash-chained audit trail
(what cannot be edited quietly). Promotion trusts an approval only when both agree, so an approval
tag typed into the MLflow UI by hand does not count."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from mlflow.tracking import MlflowClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from clinrlhf.identity import Principal
from clinrlhf.lineage.registry import MODEL_NAME, POLICY_SHA256, get_version
from clinrlhf.store import record_audit, transaction
from clinrlhf.store.models import AuditEvent
from privacy.deid import pseudonym

APPROVER_ROLE = "compliance"
APPROVAL = "ModelApproval"  # audit entity types, one per kind of registry change
PROMOTION = "ModelPromotion"
ROLLBACK = "ModelRollback"
ACTOR_TAG = "clinrlhf.approval.actor"
TIME_TAG = "clinrlhf.approval.time"
EVENT_TAG = "clinrlhf.approval.audit_event_id"


class ApprovalError(Exception):
    """The approval cannot be recorded; the message is one line for the user."""


@dataclass(frozen=True)
class Approval:
    version: str
    actor: str
    time: str
    event_id: str


def actor_name(principal: Principal, key: bytes) -> str:
    """`<role>:<pseudonym>`, exactly as services.api.deps.actor names an API caller, so one person
    has one name across the audit trail; the raw subject is never stored."""
    return f"{principal.role or 'external'}:{pseudonym(key, f'{principal.issuer}|{principal.sub}', namespace='actor')}"


def entity_id(version: str, name: str = MODEL_NAME) -> str:
    return f"{name}/{version}"


def approve(
    client: MlflowClient,
    sessions: sessionmaker[Session],
    version: str,
    principal: Principal,
    key: bytes,
    name: str = MODEL_NAME,
) -> Approval:
    if principal.role != APPROVER_ROLE:
        raise ApprovalError(
            f"approving a model needs the {APPROVER_ROLE} role, not {principal.role or 'none'}"
        )
    mv = get_version(client, version, name)
    actor = actor_name(principal, key)
    with transaction(sessions) as session:
        done = find_approval(client, session, mv.version, name)
        if done is not None:
            raise ApprovalError(f"version {mv.version} is already approved by {done.actor} at {done.time}")
        # The event pins the weights approved. The tags are set before it commits: if the commit
        # fails, they name an event that does not exist, and find_approval ignores them.
        event = record_audit(
            session,
            actor=actor,
            action="E",
            entity_type=APPROVAL,
            entity_id=entity_id(mv.version, name),
            entity_sha256=mv.tags.get(POLICY_SHA256),
        )
        when = datetime.now(UTC).isoformat(timespec="seconds")
        for tag, value in ((ACTOR_TAG, actor), (TIME_TAG, when), (EVENT_TAG, event.id)):
            client.set_model_version_tag(name, mv.version, tag, value)
    return Approval(str(mv.version), actor, when, event.id)


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
        Approval(str(mv.version), event.actor, mv.tags.get(TIME_TAG, ""), event.id)
        if agrees and event
        else None
    )
