"""What the compliance dashboard shows, read at request time: the registered versions with their
pipeline runs, acceptance criteria, privacy spent, approvals and production status; the deployment's
privacy ledger; the audit trail's verification; the quarantine.

Everything is read through the library functions the CLI uses (the acceptance gate, approvals, the
ledger, `verify_audit`), so the page and `clinrlhf approve|promote|audit verify` cannot disagree.
Plain functions doing I/O: call them from the thread pool (verifying a big trail takes seconds).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from clinrlhf.compliance.approval import find_approval
from clinrlhf.compliance.criteria import AcceptanceCriteria, CriterionResult, failures
from clinrlhf.compliance.gate import evaluate_version
from clinrlhf.compliance.registry import MODEL_NAME, PIPELINE_RUN, production_version
from clinrlhf.lineage.audit_anchors import mlflow_anchors
from clinrlhf.reward.ledger import deployment_ledger
from clinrlhf.settings import Settings
from clinrlhf.store import consistent_read, verify_audit
from clinrlhf.store.quarantine import REASONS_FILE, decisions, quarantined, read_reasons
from privacy.dp.guarantee import PRIVACY_UNITS


@dataclass(frozen=True)
class VersionView:
    version: str
    run_id: str  # the pipeline run that produced it
    production: bool
    criteria: list[CriterionResult]
    failed: str | None  # one line naming the failed criteria; None when all pass
    approved_by: str | None  # display name, as the approval recorded it
    approved_at: str | None
    override_reason: str | None

    @property
    def passes(self) -> bool:
        return self.failed is None

    def measured(self, name: str) -> str:
        return next((c.measured for c in self.criteria if c.name == name), "–")


@dataclass(frozen=True)
class OdometerView:
    unit: str
    spent: float
    budget: float
    runs: int


@dataclass(frozen=True)
class AuditStatus:
    ok: bool
    line: str  # "verified at …, N events" or the failure


@dataclass(frozen=True)
class QuarantineView:
    clinician: str  # a pseudonym
    since: datetime
    reason: str
    by: str


@dataclass
class Dashboard:
    versions: list[VersionView] = field(default_factory=list)
    ledger: list[OdometerView] = field(default_factory=list)
    delta: float | None = None
    audit: AuditStatus | None = None
    quarantine: list[QuarantineView] = field(default_factory=list)


def _version(client: MlflowClient, session: Session, mv: ModelVersion, live: str | None) -> VersionView:
    results = evaluate_version(client, mv, AcceptanceCriteria())
    approval = find_approval(client, session, str(mv.version), mv.name)
    return VersionView(
        version=str(mv.version),
        run_id=mv.tags.get(PIPELINE_RUN, ""),
        production=live == str(mv.version),
        criteria=results,
        failed=failures(results),
        approved_by=(approval.name or approval.actor) if approval else None,
        approved_at=approval.time if approval else None,
        override_reason=approval.override_reason if approval else None,
    )


def versions(client: MlflowClient, sessions: sessionmaker[Session]) -> list[VersionView]:
    """Every registered version, newest first, judged against the default acceptance criteria."""
    found: list[ModelVersion] = []
    with contextlib.suppress(MlflowException):  # no registered model yet
        found = list(client.search_model_versions(f"name = '{MODEL_NAME}'"))
    current = production_version(client)
    live = str(current.version) if current else None
    with consistent_read(sessions) as session:
        return [_version(client, session, mv, live) for mv in sorted(found, key=lambda v: -int(v.version))]


def ledger(settings: Settings) -> tuple[list[OdometerView], float]:
    """The deployment's odometers, one per privacy unit, and its δ."""
    book = deployment_ledger(settings)
    rows = [
        OdometerView(unit, book.spent(unit), book.budget.epsilon, len(book.entries(privacy_unit=unit)))
        for unit in PRIVACY_UNITS
    ]
    return rows, book.delta


def audit_status(client: MlflowClient, sessions: sessionmaker[Session], now: datetime) -> AuditStatus:
    """The whole trail checked as `clinrlhf audit verify` does, against the heads MLflow recorded."""
    try:
        anchors = mlflow_anchors(client)
    except MlflowException:
        anchors = []
    try:
        with consistent_read(sessions) as session:
            report = verify_audit(session, None, anchors)
    except SQLAlchemyError as err:
        return AuditStatus(False, f"cannot read the store ({type(err).__name__})")
    if not report.ok:
        return AuditStatus(False, f"audit FAILED: {report.problem}")
    at = now.strftime("%Y-%m-%d %H:%M:%S UTC")
    return AuditStatus(
        True, f"verified at {at}, {report.events} events, {report.rows} recorded rows unchanged"
    )


def quarantine(settings: Settings, sessions: sessionmaker[Session]) -> list[QuarantineView]:
    with consistent_read(sessions) as session:
        history = decisions(session)
        current = quarantined(session)
    reasons = read_reasons(settings.resolved_home / REASONS_FILE, history)
    rows = []
    for clinician, decision in sorted(current.items()):
        reason = reasons.get(decision.event_id)
        rows.append(
            QuarantineView(
                clinician,
                decision.recorded,
                reason.text if reason else "(no reason on file)",
                reason.by if reason else decision.actor,
            )
        )
    return rows


def dashboard(settings: Settings, sessions: sessionmaker[Session], now: datetime) -> Dashboard:
    uri = settings.mlflow_tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    odometers, delta = ledger(settings)
    return Dashboard(
        versions=versions(client, sessions),
        ledger=odometers,
        delta=delta,
        audit=audit_status(client, sessions, now),
        quarantine=quarantine(settings, sessions),
    )
