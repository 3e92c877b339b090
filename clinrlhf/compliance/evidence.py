"""Everything MLflow holds about one pipeline run, gathered once for the report, the model card and
the FHIR export: runs, metrics, privacy, datasets, feedback statistics and registered versions."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient

from clinrlhf.compliance.evalmetrics import Rates, parse_eval_run
from clinrlhf.compliance.feedback_stats import feedback_stats
from clinrlhf.compliance.privacy_spent import SpentRun, guarantee_of, spent_runs
from clinrlhf.compliance.registry import production_version, versions_of_run
from clinrlhf.feedback import Judgment
from clinrlhf.feedback.judgment import from_ndjson
from clinrlhf.lineage.artifacts import read_artifact_text
from clinrlhf.lineage.chain import Chain
from clinrlhf.lineage.datasets import SNAPSHOT_ARTIFACTS, file_sha256, snapshot_source
from clinrlhf.lineage.environment import SHA256_TAG as ENVIRONMENT_TAG
from clinrlhf.lineage.facts import read_report_facts
from clinrlhf.lineage.pipeline_config import (
    ConfigNotLogged,
    TruncatedConfig,
    canonical_sha256,
    logged_config_json,
)
from privacy.dp.guarantee import PrivacyGuarantee

NAN = float("nan")


def when(millis: int | None) -> str:
    return datetime.fromtimestamp(millis / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC") if millis else "?"


@dataclass
class Evidence:
    chain: Chain
    tracking_uri: str
    rates: dict[str, Rates]
    epsilon: float
    guarantee: PrivacyGuarantee | None
    dp_params: dict[str, str]
    kl: float
    kl_target: float
    facts: dict[str, Any]
    feedback: dict[str, Any]
    flip_rates: dict[str, float | None]
    history: dict[str, list[float]]
    versions: list[ModelVersion]
    production: ModelVersion | None
    spent_runs: list[SpentRun] = field(default_factory=list)
    snapshot_in_mlflow: bool = False
    """Whether the reward run logged the snapshot file itself (readable by whoever reads the store)."""
    pipeline_config_sha256: str = "not recorded"
    """SHA-256 of the whole PipelineConfig the pipeline run logged, as canonical JSON (not of the
    artifact file's bytes): every setting, including those no stage run logs as a param (cohort
    sizes, the prompt source, the formulary file's path; its content is the PPO run's
    `formulary.sha256`)."""

    @property
    def run_id(self) -> str:
        return self.chain.pipeline.info.run_id

    def run(self, stage: str) -> Run | None:
        return self.chain.stage(stage)

    def run_id_of(self, stage: str) -> str:
        run = self.run(stage)
        return run.info.run_id if run else "?"

    def tag(self, stage: str, key: str, default: str = "?") -> str:
        run = self.run(stage) if stage != "pipeline" else self.chain.pipeline
        return run.data.tags.get(key, default) if run else default

    @property
    def environment_sha256(self) -> str:
        return self.chain.pipeline.data.tags.get(ENVIRONMENT_TAG, "not recorded")


def _snapshot(client: MlflowClient, reward: Run | None) -> tuple[list[Judgment], bool]:
    """The judgments the reward model was trained on, and whether MLflow holds them: from the file
    logged with the run where there is one, else from the local file the run's dataset input names
    (the default: MLflow holds only the digest), if it is still there and hashes to that digest."""
    if reward is None:
        return [], False
    digest = reward.data.tags.get("clinrlhf.dataset_sha256", "")
    text = read_artifact_text(client, reward.info.run_id, f"{SNAPSHOT_ARTIFACTS}/{digest}.ndjson")
    if text is not None:
        return from_ndjson(text), True
    local = snapshot_source(reward)
    if local is not None and local.is_file() and file_sha256(local) == digest:
        return from_ndjson(local.read_bytes()), False
    return [], False  # moved, or the run predates the logged snapshot


def _flip_rates(client: MlflowClient, reward: Run | None) -> dict[str, float | None]:
    """Keyed by the roster; None is a clinician enrolled with no data (clinrlhf.reward.rater_release)."""
    if reward is None:
        return {}
    text = read_artifact_text(client, reward.info.run_id, "raters/flip_rates.json")
    # absent when the reward model learned no rater reliabilities, or was not allowed to publish them
    table = json.loads(text) if text is not None else {}
    return {str(k): None if v is None else float(v) for k, v in table.items()}


def _history(client: MlflowClient, run: Run | None, keys: tuple[str, ...]) -> dict[str, list[float]]:
    if run is None:
        return {}
    out = {}
    for key in keys:
        points = sorted(client.get_metric_history(run.info.run_id, key), key=lambda m: (m.step, m.timestamp))
        if points:
            out[key] = [p.value for p in points]
    return out


def _config_sha256(client: MlflowClient, run_id: str) -> str:
    """The logged PipelineConfig's canonical digest; "not recorded" for a run that logged none. A
    store that cannot be read raises (MlflowException) rather than pin "not recorded" for good."""
    try:
        config, _ = logged_config_json(client, run_id)
    except ConfigNotLogged:
        return "not recorded"
    except TruncatedConfig:
        return "not recorded: the run's legacy config param is truncated"
    return canonical_sha256(config)


def gather(client: MlflowClient, chain: Chain, tracking_uri: str) -> Evidence:
    reward, ppo, ev = chain.stage("reward"), chain.stage("ppo"), chain.stage("eval")
    dp_params = {k: v for k, v in (reward.data.params if reward else {}).items() if k.startswith("dp.")}
    epsilon = reward.data.metrics.get("dp.epsilon", math.inf) if reward else math.inf
    ppo_metrics = ppo.data.metrics if ppo else {}
    judgments, snapshot_in_mlflow = _snapshot(client, reward)
    return Evidence(
        chain=chain,
        tracking_uri=tracking_uri,
        rates=parse_eval_run(ev.data.metrics if ev else {}),
        epsilon=epsilon,
        guarantee=guarantee_of(dp_params, epsilon),
        dp_params=dp_params,
        kl=ppo_metrics.get("ppo.final_kl", ppo_metrics.get("ppo.kl", NAN)),
        kl_target=float(ppo.data.params.get("ppo.kl_target", "nan")) if ppo else NAN,
        facts=read_report_facts(client, chain.pipeline.info.run_id),
        feedback=feedback_stats(judgments) if judgments else {},
        flip_rates=_flip_rates(client, reward),
        history=_history(client, ppo, ("ppo.reward_mean", "ppo.kl"))
        | _history(client, reward, ("reward.loss",)),
        versions=versions_of_run(client, chain.pipeline.info.run_id),
        production=production_version(client),
        spent_runs=spent_runs(client, chain.pipeline.info.experiment_id),
        snapshot_in_mlflow=snapshot_in_mlflow,
        pipeline_config_sha256=_config_sha256(client, chain.pipeline.info.run_id),
    )
