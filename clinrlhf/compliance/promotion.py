"""Move the `production` alias: promotion needs passing acceptance criteria (or a written override)
and a recorded approval; rollback returns to the version promoted before. Both are taken by a
compliance officer (clinrlhf.compliance.governance). Each change is an audit event whose entity is the
version that is in production afterwards, so the trail alone replays the alias; the criteria used,
the override and the officer's display name are in the governance record beside it, and each change
writes its change record to MLflow before the alias moves (clinrlhf.compliance.promotion_records)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sqlalchemy.orm import Session, sessionmaker

from clinrlhf.compliance.approval import PROMOTION, ROLLBACK, entity_id, find_approval
from clinrlhf.compliance.change_record import record_sha256
from clinrlhf.compliance.criteria import AcceptanceCriteria, failures
from clinrlhf.compliance.gate import evaluate_version
from clinrlhf.compliance.governance import (
    GovernanceRefused,
    Officer,
    compliance_officer,
    governance_record,
    override_reason,
    record_governance,
)
from clinrlhf.compliance.promotion_records import (
    PROMOTION_TAGS,
    ROLLBACK_TAGS,
    build_records,
    build_rollback_record,
    change_record_files,
    finish_records_run,
    start_records_run,
)
from clinrlhf.compliance.registry import (
    MODEL_NAME,
    POLICY_SHA256,
    PRODUCTION,
    REWARD_RUN,
    WEIGHTS,
    get_version,
    history,
    model_uri,
    production_version,
    set_history,
)
from clinrlhf.identity import Principal
from clinrlhf.lineage.chain import RunNotFound
from clinrlhf.lineage.datasets import file_sha256
from clinrlhf.policy.pointers import ProductionPolicy, download_policy, set_production
from clinrlhf.settings import Settings
from clinrlhf.store import record_audit, transaction
from privacy.dp.opacus_config import NOISE_TAG

__all__ = [
    "PROMOTION_TAGS",
    "ROLLBACK_TAGS",
    "Promotion",
    "PromotionRefused",
    "evaluate_version",
    "promote",
    "rollback",
]

# Model version tags of the latest promotion (and rollback) to that version; the audit trail keeps
# every one.


class PromotionRefused(GovernanceRefused):
    """The alias stays where it was; the message is one line naming why."""


@dataclass(frozen=True)
class Promotion:
    version: str
    previous: str | None
    event_id: str
    policy_dir: Path


def not_a_dp_release(client: MlflowClient, mv: ModelVersion) -> str | None:
    """Why the version's reward model is not a DP release, or None. A DP reward run whose noise was
    not secret (tag clinrlhf.dp_noise other than "secure": reproducible debugging noise, or a run
    recorded before the noise was CSPRNG-seeded) could be replayed by anyone holding its params."""
    reward_run = client.get_run(mv.tags[REWARD_RUN]) if mv.tags.get(REWARD_RUN) else None
    if reward_run is None or reward_run.data.params.get("dp.enabled") == "False":
        return None  # no DP claim to break: the criteria's ε bound refuses it on its own
    noise = reward_run.data.tags.get(NOISE_TAG)
    if noise == "secure":
        return None
    return (
        f"version {mv.version}'s reward model is not a DP release: its noise is "
        f"{noise or 'unrecorded'} ({NOISE_TAG}), not secret"
    )


def _fetch(settings: Settings, mv: ModelVersion) -> Path:
    """Download the version's files and check that they are the weights that were registered."""
    local = download_policy(settings, model_uri(mv))
    expected = mv.tags.get(POLICY_SHA256)
    if expected and file_sha256(local / WEIGHTS) != expected:
        raise PromotionRefused(f"version {mv.version}'s weights do not match their registered SHA-256")
    return local


def _tag(client: MlflowClient, mv: ModelVersion, prefix: str, record: dict[str, Any], event_id: str) -> None:
    """Who moved the alias to `mv`, when, with which criteria and override, on the version itself."""
    tags = {
        "actor": record["actor"],
        "name": record["name"],
        "time": record["time"],
        "audit_event_id": event_id,
        "record": json.dumps(record, sort_keys=True),
    }
    if record.get("custom_criteria"):
        tags["custom_criteria"] = json.dumps(record["custom_criteria"], sort_keys=True)
    if record.get("override_reason"):
        tags["override_reason"] = record["override_reason"]
    if record.get("change_record_run_id"):  # promotion_records.RECORD_RUN_TAG or ROLLBACK_RECORD_RUN_TAG
        tags["change_record_run_id"] = record["change_record_run_id"]
    for key, value in tags.items():
        client.set_model_version_tag(mv.name, mv.version, prefix + key, str(value))


def _move_alias(
    client: MlflowClient,
    sessions: sessionmaker[Session],
    settings: Settings,
    mv: ModelVersion,
    local: Path,
    *,
    kind: str,
    record: dict[str, Any],
    new_history: list[str],
    records: Path | None,
) -> str:
    """Move `production` to `mv` with its audit event and governance record, then mark the run of
    the change record the governance record names FINISHED (FAILED if the move fails)."""
    with _completes(client, record["change_record_run_id"]), transaction(sessions) as session:
        return _moved(client, session, settings, mv, local, kind, record, new_history, records)


def _moved(
    client: MlflowClient,
    session: Session,
    settings: Settings,
    mv: ModelVersion,
    local: Path,
    kind: str,
    record: dict[str, Any],
    new_history: list[str],
    records: Path | None,
) -> str:
    event = record_audit(
        session,
        actor=record["actor"],
        action="E",
        entity_type=kind,
        entity_id=entity_id(mv.version, mv.name),
        entity_sha256=mv.tags.get(POLICY_SHA256),
    )
    record = {**record, "event": event.id}
    record_governance(session, record, entity_id(mv.version, mv.name), records)
    _tag(client, mv, PROMOTION_TAGS if kind == PROMOTION else ROLLBACK_TAGS, record, event.id)
    client.set_registered_model_alias(mv.name, PRODUCTION, mv.version)
    set_history(client, new_history, mv.name)
    set_production(
        settings.resolved_home,
        ProductionPolicy(mv.name, str(mv.version), model_uri(mv), str(local), mv.run_id or ""),
    )
    return event.id


def _refusal(
    client: MlflowClient,
    sessions: sessionmaker[Session],
    mv: ModelVersion,
    officer: Officer,
    criteria: AcceptanceCriteria,
    override: str | None,
    records: Path | None,
) -> tuple[str | None, str | None, str | None]:
    """(why the version may not be promoted or None, the override reason it is promoted with or
    None, the failed criteria or None). A refusal is itself recorded (outcome 4), with the criteria it was checked against."""
    failed = failures(evaluate_version(client, mv, criteria))
    reason, used = not_a_dp_release(client, mv), None
    if reason is None:
        try:
            used = override_reason(failed, override, f"promote version {mv.version}")
        except GovernanceRefused as err:
            reason = str(err)
    with transaction(sessions) as session:
        if reason is None and find_approval(client, session, mv.version, mv.name) is None:
            reason = (
                f"version {mv.version} has no approval by the compliance role "
                f"(`clinrlhf approve {mv.version} --token TOKEN`)"
            )
        if reason:
            event = record_audit(
                session,
                actor=officer.actor,
                action="E",
                entity_type=PROMOTION,
                entity_id=entity_id(mv.version, mv.name),
                outcome="4",
            )
            record = governance_record(
                officer, "promote", event_id=event.id, criteria=criteria, failed=failed, outcome="4"
            )
            record_governance(session, record | {"refused": reason}, entity_id(mv.version, mv.name), records)
    return reason, used, failed


def promote(
    client: MlflowClient,
    sessions: sessionmaker[Session],
    settings: Settings,
    version: str,
    criteria: AcceptanceCriteria,
    principal: Principal,
    *,
    override: str | None = None,
    records: Path | None = None,
    name: str = MODEL_NAME,
) -> Promotion:
    """Move `production` to `version` for the compliance officer `principal`: it must be approved
    and pass `criteria`, or carry a written `override` reason for the failed criteria."""
    officer = _officer(principal, settings, "promoting a model")
    mv = get_version(client, version, name)
    current = production_version(client, name)
    if current is not None and str(current.version) == str(mv.version):
        raise PromotionRefused(f"version {mv.version} is already in production")
    reason, used, failed = _refusal(client, sessions, mv, officer, criteria, override, records)
    if reason:
        raise PromotionRefused(reason)
    local = _fetch(settings, mv)
    record = governance_record(
        officer, "promote", event_id=None, criteria=criteria, failed=failed, override=used
    )
    # The change record and CHAI card are written before the alias moves, and the governance
    # record (pinned in the audit trail) carries their SHA-256 and the run that holds them.
    with _writing_records():
        written = build_records(client, settings.mlflow_tracking_uri, mv, current, criteria, record)
        records_run = start_records_run(client, settings, mv, "promotion", written.files())
    record |= written.digests() | {"change_record_run_id": records_run}
    new_history = [*history(client, name), str(mv.version)]
    event_id = _move_alias(
        client,
        sessions,
        settings,
        mv,
        local,
        kind=PROMOTION,
        record=record,
        new_history=new_history,
        records=records,
    )
    return Promotion(str(mv.version), str(current.version) if current else None, event_id, local)


@contextmanager
def _writing_records() -> Iterator[None]:
    """Any failure to build or write the change record refuses the change in one line, before the
    alias moves: a store that refuses the write (MlflowException), an artifact store that fails
    (OSError), or a version whose pipeline run is gone (RunNotFound)."""
    try:
        yield
    except (MlflowException, RunNotFound, OSError) as err:
        why = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise PromotionRefused(
            f"cannot write the change record to MLflow ({why}); the alias was not moved"
        ) from None


@contextmanager
def _completes(client: MlflowClient, records_run: str) -> Iterator[None]:
    """Mark the records' run FINISHED once the change is made, FAILED if it is not."""
    try:
        yield
    except BaseException:
        with suppress(Exception):  # the move's error is the one to report
            finish_records_run(client, records_run, completed=False)
        raise
    finish_records_run(client, records_run, completed=True)


def _officer(principal: Principal, settings: Settings, action: str) -> Officer:
    try:
        return compliance_officer(principal, settings.deid_secret, action)
    except GovernanceRefused as err:
        raise PromotionRefused(str(err)) from None


def rollback(
    client: MlflowClient,
    sessions: sessionmaker[Session],
    settings: Settings,
    principal: Principal,
    *,
    records: Path | None = None,
    name: str = MODEL_NAME,
) -> Promotion:
    """Put back the version that was in production before the current one, for the compliance
    officer `principal`."""
    officer = _officer(principal, settings, "rolling back a model")
    current = production_version(client, name)
    if current is None:
        raise PromotionRefused("no version is in production, so there is nothing to roll back")
    stack = history(client, name)
    while stack and stack[-1] == str(current.version):
        stack.pop()
    if not stack:
        raise PromotionRefused(
            f"version {current.version} is the first production version; there is none before it"
        )
    target = get_version(client, stack[-1], name)
    local = _fetch(settings, target)
    record = governance_record(officer, "rollback", event_id=None)
    # As at promotion: the change record is written and pinned before the alias moves.
    with _writing_records():
        written = build_rollback_record(client, settings.mlflow_tracking_uri, target, current, record)
        records_run = start_records_run(client, settings, target, "rollback", change_record_files(written))
    record |= {"change_record_sha256": record_sha256(written), "change_record_run_id": records_run}
    event_id = _move_alias(
        client,
        sessions,
        settings,
        target,
        local,
        kind=ROLLBACK,
        record=record,
        new_history=stack,
        records=records,
    )
    return Promotion(str(target.version), str(current.version), event_id, local)
