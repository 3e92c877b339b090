"""Aligned policies as versions of one MLflow registered model. The alias `production` names the
version that serving uses; only clinrlhf.compliance.promotion moves it."""

from __future__ import annotations

import json
from pathlib import Path

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from clinrlhf.lineage.chain import load_chain
from clinrlhf.lineage.datasets import file_sha256

MODEL_NAME = "clinrlhf-policy"
PRODUCTION = "production"
POLICY_ARTIFACTS = "policy"
WEIGHTS = "model.safetensors"

# Model version tags: where the version came from, and what exactly its weights are.
PIPELINE_RUN = "clinrlhf.pipeline_run_id"
PPO_RUN = "clinrlhf.ppo_run_id"
EVAL_RUN = "clinrlhf.eval_run_id"
REWARD_RUN = "clinrlhf.reward_run_id"
POLICY_SHA256 = "clinrlhf.policy_sha256"
DATASET_SHA256 = "clinrlhf.dataset_sha256"
# Registered model tag: the versions promoted to production, oldest first (rollback pops it).
HISTORY = "clinrlhf.production_history"


class VersionNotFound(LookupError):
    pass


def _ensure_model(client: MlflowClient, name: str) -> None:
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(
            name, description="Treatment-recommendation policies aligned from clinician feedback."
        )


def register_policy(
    client: MlflowClient, pipeline_run_id: str, policy_dir: Path, name: str = MODEL_NAME
) -> ModelVersion:
    """Log the aligned policy under its PPO run and register it as a new version of `name`, tagged
    with the runs that made and evaluated it and the SHA-256 of its weights."""
    chain = load_chain(client, pipeline_run_id)
    ppo, ev, reward = chain.stage("ppo"), chain.stage("eval"), chain.stage("reward")
    if ppo is None or ev is None:
        raise VersionNotFound(f"pipeline run {pipeline_run_id} has no ppo and eval runs to register")
    client.log_artifacts(ppo.info.run_id, str(policy_dir), POLICY_ARTIFACTS)
    _ensure_model(client, name)
    tags = {
        PIPELINE_RUN: chain.pipeline.info.run_id,
        PPO_RUN: ppo.info.run_id,
        EVAL_RUN: ev.info.run_id,
        REWARD_RUN: reward.info.run_id if reward else "",
        DATASET_SHA256: ppo.data.tags.get(DATASET_SHA256, ""),
    }
    weights = policy_dir / WEIGHTS
    if weights.is_file():
        tags[POLICY_SHA256] = file_sha256(weights)
    return client.create_model_version(
        name,
        source=f"runs:/{ppo.info.run_id}/{POLICY_ARTIFACTS}",
        run_id=ppo.info.run_id,
        tags=tags,
        description=f"Aligned by PPO run {ppo.info.run_id} of pipeline run {chain.pipeline.info.run_id}.",
    )


def get_version(client: MlflowClient, version: str, name: str = MODEL_NAME) -> ModelVersion:
    try:
        return client.get_model_version(name, str(version))
    except MlflowException:
        raise VersionNotFound(f"no version {version!r} of registered model {name!r}") from None


def production_version(client: MlflowClient, name: str = MODEL_NAME) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(name, PRODUCTION)
    except MlflowException:  # no such model, or no alias yet
        return None


def versions_of_run(client: MlflowClient, pipeline_run_id: str, name: str = MODEL_NAME) -> list[ModelVersion]:
    try:
        found = client.search_model_versions(
            f"name = '{name}' and tags.`{PIPELINE_RUN}` = '{pipeline_run_id}'"
        )
    except MlflowException:
        return []
    return sorted(found, key=lambda v: int(v.version))


def history(client: MlflowClient, name: str = MODEL_NAME) -> list[str]:
    try:
        raw = client.get_registered_model(name).tags.get(HISTORY, "[]")
    except MlflowException:
        return []
    return [str(v) for v in json.loads(raw)]


def set_history(client: MlflowClient, versions: list[str], name: str = MODEL_NAME) -> None:
    client.set_registered_model_tag(name, HISTORY, json.dumps(versions))


def model_uri(version: ModelVersion) -> str:
    return f"models:/{version.name}/{version.version}"
