"""Walk MLflow from any run of a pipeline to the whole chain of stages that produced its model."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from clinrlhf.lineage.artifacts import read_artifact_text


class RunNotFound(LookupError):
    pass


@dataclass
class Chain:
    pipeline: Run
    stages: dict[str, Run] = field(default_factory=dict)

    def stage(self, name: str) -> Run | None:
        return self.stages.get(name)


def _get(client: MlflowClient, run_id: str) -> Run:
    try:
        return client.get_run(run_id)
    except Exception as err:  # MLflow raises MlflowException with a message naming the id only
        raise RunNotFound(f"no MLflow run {run_id!r} in this tracking store") from err


def load_chain(client: MlflowClient, run_id: str) -> Chain:
    run = _get(client, run_id)
    parent_id = run.data.tags.get("mlflow.parentRunId")
    pipeline = _get(client, parent_id) if parent_id else run
    if pipeline.data.tags.get("clinrlhf.stage") != "pipeline":
        raise RunNotFound(f"run {run_id!r} is not part of a clinrlhf pipeline")
    children = client.search_runs(
        [pipeline.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{pipeline.info.run_id}'"
    )
    return Chain(pipeline, {c.data.tags.get("clinrlhf.stage", "?"): c for c in children})


def describe(chain: Chain, ingestion: dict[str, Any] | None = None) -> list[str]:
    """Model → PPO run → reward run → feedback snapshot → ingestion batch and de-identification
    config, one line each. `ingestion` is what read_ingestion returns for the pipeline run."""
    lines = [f"pipeline run {chain.pipeline.info.run_id}"]
    ppo, reward, sft = chain.stage("ppo"), chain.stage("reward"), chain.stage("sft")
    if ppo:
        m = ppo.data.metrics
        lines.append(
            f"  model ← PPO run {ppo.info.run_id}: KL {m.get('ppo.final_kl', m.get('ppo.kl', float('nan'))):.3f} nats, "
            f"KL coef {m.get('ppo.kl_coef', float('nan')):.3f}, reward {m.get('ppo.reward_mean', float('nan')):.3f}"
        )
        lines.append(
            f"    reference ← SFT run {sft.info.run_id if sft else '?'}"
            f" (historical practice {sft.data.tags.get('clinrlhf.dataset_sha256', '?') if sft else '?'})"
        )
    if reward:
        p, m, t = reward.data.params, reward.data.metrics, reward.data.tags
        lines.append(
            f"    reward ← reward run {reward.info.run_id}: ε {m.get('dp.epsilon', float('nan')):.3f}, "
            f"δ {p.get('dp.delta', '?')}, unit {p.get('dp.privacy_unit', '?')}, accountant {p.get('dp.accountant', '?')}"
        )
        lines.append(f"      feedback snapshot sha256 {t.get('clinrlhf.dataset_sha256', '?')}")
        lines.append(f"        de-identification config sha256 {t.get('clinrlhf.deid_config_sha256', '?')}")
        lines.extend(_ingestion_lines(ingestion or {}))
    lines.append(f"  code commit {chain.pipeline.data.tags.get('mlflow.source.git.commit', '?')}")
    return lines


def read_ingestion(client: MlflowClient, run_id: str) -> dict[str, Any]:
    """The pipeline run's de-identification batch report and snapshot k-anonymity, where logged."""
    found: dict[str, Any] = {}
    for key, path in (("deid", "deid/report.json"), ("k_anonymity", "deid/k_anonymity.json")):
        if (text := read_artifact_text(client, run_id, path)) is not None:  # older runs lack them
            found[key] = json.loads(text)
    return found


def _ingestion_lines(ingestion: dict[str, Any]) -> list[str]:
    lines = []
    if deid := ingestion.get("deid"):
        rules = deid.get("rules", {})
        lines.append(
            f"        ingestion batch: {deid.get('bundles', '?')} bundles, {deid.get('resources_in', '?')} resources "
            f"de-identified with {rules.get('name', '?')} {rules.get('version', '?')}"
        )
    if k := ingestion.get("k_anonymity"):
        lines.append(
            f"        snapshot k-anonymity: k {k.get('k_after_suppression', '?')} (min k {k.get('min_k', '?')}, "
            f"{k.get('suppressed', '?')} of {k.get('records', '?')} patients suppressed)"
        )
    return lines
