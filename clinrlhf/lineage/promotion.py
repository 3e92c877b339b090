"""Move the `production` alias: promotion needs passing acceptance criteria and a recorded
approval; rollback returns to the version promoted before. Each change is an audit event whose
entity is the version that is in production afterwards, so the trail alone replays the alias."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient
from sqlalchemy.orm import Session, sessionmaker

from clinrlhf.lineage.approval import PROMOTION, ROLLBACK, entity_id, find_approval
from clinrlhf.lineage.criteria import AcceptanceCriteria, CriterionResult, check_criteria, failures
from clinrlhf.lineage.datasets import file_sha256
from clinrlhf.lineage.evalmetrics import parse_eval_run
from clinrlhf.lineage.registry import (
    EVAL_RUN,
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
from clinrlhf.policy.registry import ProductionPolicy, download_policy, set_production
from clinrlhf.settings import Settings
from clinrlhf.store import record_audit, transaction
from privacy.dp.opacus_config import NOISE_TAG


class PromotionRefused(Exception):
    """The alias stays where it was; the message is one line naming why."""


@dataclass(frozen=True)
class Promotion:
    version: str
    previous: str | None
    event_id: str
    policy_dir: Path


def evaluate_version(
    client: MlflowClient, mv: ModelVersion, criteria: AcceptanceCriteria
) -> list[CriterionResult]:
    """The criteria against the version's own eval run and reward run, as MLflow recorded them."""
    eval_run = client.get_run(mv.tags[EVAL_RUN]) if mv.tags.get(EVAL_RUN) else None
    reward_run = client.get_run(mv.tags[REWARD_RUN]) if mv.tags.get(REWARD_RUN) else None
    after = parse_eval_run(eval_run.data.metrics if eval_run else {})["after"]
    epsilon = reward_run.data.metrics.get("dp.epsilon", math.inf) if reward_run else math.inf
    return check_criteria(criteria, after, epsilon)


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


def _move_alias(
    client: MlflowClient,
    session: Session,
    settings: Settings,
    mv: ModelVersion,
    local: Path,
    *,
    kind: str,
    actor: str,
    new_history: list[str],
) -> str:
    event = record_audit(
        session,
        actor=actor,
        action="E",
        entity_type=kind,
        entity_id=entity_id(mv.version, mv.name),
        entity_sha256=mv.tags.get(POLICY_SHA256),
    )
    client.set_registered_model_alias(mv.name, PRODUCTION, mv.version)
    set_history(client, new_history, mv.name)
    set_production(
        settings.resolved_home, ProductionPolicy(mv.name, str(mv.version), model_uri(mv), str(local))
    )
    return event.id


def _refusal(
    client: MlflowClient,
    sessions: sessionmaker[Session],
    mv: ModelVersion,
    criteria_failed: str | None,
    actor: str,
) -> str | None:
    """Why the version may not be promoted, or None; a refusal is itself recorded (outcome 4)."""
    with transaction(sessions) as session:
        reason = not_a_dp_release(client, mv)
        if reason is None and criteria_failed:
            reason = f"acceptance criteria not met: {criteria_failed}"
        if reason is None and find_approval(client, session, mv.version, mv.name) is None:
            reason = (
                f"version {mv.version} has no approval by the compliance role "
                f"(`clinrlhf approve {mv.version} --token TOKEN`)"
            )
        if reason:
            record_audit(
                session,
                actor=actor,
                action="E",
                entity_type=PROMOTION,
                entity_id=entity_id(mv.version, mv.name),
                outcome="4",
            )
    return reason


def promote(
    client: MlflowClient,
    sessions: sessionmaker[Session],
    settings: Settings,
    version: str,
    criteria: AcceptanceCriteria,
    *,
    actor: str = "cli",
    name: str = MODEL_NAME,
) -> Promotion:
    mv = get_version(client, version, name)
    current = production_version(client, name)
    if current is not None and str(current.version) == str(mv.version):
        raise PromotionRefused(f"version {mv.version} is already in production")
    reason = _refusal(client, sessions, mv, failures(evaluate_version(client, mv, criteria)), actor)
    if reason:
        raise PromotionRefused(reason)
    local = _fetch(settings, mv)
    with transaction(sessions) as session:
        previous = history(client, name)
        event_id = _move_alias(
            client,
            session,
            settings,
            mv,
            local,
            kind=PROMOTION,
            actor=actor,
            new_history=[*previous, str(mv.version)],
        )
    return Promotion(str(mv.version), str(current.version) if current else None, event_id, local)


def rollback(
    client: MlflowClient,
    sessions: sessionmaker[Session],
    settings: Settings,
    *,
    actor: str = "cli",
    name: str = MODEL_NAME,
) -> Promotion:
    """Put back the version that was in production before the current one."""
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
    with transaction(sessions) as session:
        event_id = _move_alias(
            client, session, settings, target, local, kind=ROLLBACK, actor=actor, new_history=stack
        )
    return Promotion(str(target.version), str(current.version), event_id, local)
