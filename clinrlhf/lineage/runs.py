"""MLflow runs with the tags CONTRACT names: one run per stage, nested under a pipeline run."""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import mlflow

from clinrlhf.lineage import home_artifacts
from clinrlhf.settings import Settings

EXPERIMENT = "clinrlhf"
STAGES = ("sft", "reward", "ppo", "eval", "pipeline")
# On the PPO run: where its prompts came from (clinrlhf.pipeline.prompts), for the privacy statement.
PPO_PROMPT_SOURCE = "clinrlhf.ppo_prompt_source"
# MLflow 3's experiment type. Untagged, its UI asks, and then opens in GenAI mode (traces, "Detect
# Issues", an assistant); "custom_model_development" is what it calls model training.
EXPERIMENT_KIND = "mlflow.experimentKind"
MODEL_TRAINING = "custom_model_development"
# A run's description in the MLflow UI (`mlflow.note.content`), per stage.
DESCRIPTIONS = {
    "sft": "Supervised policy trained on de-identified historical practice (prompt -> prescription).",
    "reward": "Reward model trained with differential privacy on the clinicians' de-identified judgments.",
    "ppo": "Policy aligned to the reward model by PPO, held near the supervised policy by a KL penalty.",
    "eval": "Supervised (before) and aligned (after) policies scored on the test cohort of synthetic patients.",
    "pipeline": "One pass of the loop: supervised policy, clinician feedback, DP reward model, PPO, evaluation.",
}


@cache
def git_commit() -> str:
    """The commit of the code that ran, for `mlflow.source.git.commit`; "unknown" outside a checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
            check=True,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def configure_mlflow(settings: Settings) -> str:
    """Point MLflow at the configured store; create the experiment with artifacts under CLINRLHF_HOME,
    at a location relative to it when the store is the home's own SQLite file (home_artifacts), and
    tag it as model training."""
    uri = settings.mlflow_tracking_uri
    for noisy in ("mlflow", "alembic"):  # store migrations log at INFO on every fresh store
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Progress bars for downloads of small artifacts (snapshots, policies) only clutter CLI output.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    mlflow.set_tracking_uri(uri)
    home = settings.resolved_home
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        location = (
            home_artifacts.home_uri(home_artifacts.ARTIFACTS)
            if home_artifacts.is_home_store(uri, home)
            else settings.mlflow_artifact_location
        )
        mlflow.create_experiment(EXPERIMENT, artifact_location=location)
    experiment = mlflow.set_experiment(EXPERIMENT)
    if experiment.tags.get(EXPERIMENT_KIND) != MODEL_TRAINING:  # also experiments made before the tag
        mlflow.MlflowClient().set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND, MODEL_TRAINING)
    return uri


def run_ui_url(tracking_uri: str, run_id: str, base_url: str = "http://127.0.0.1:5000") -> str:
    """The run's page in `mlflow ui`, in model-training mode. MLflow 3.17's UI takes its mode from the
    URL's `workflowType` or the browser's last choice (GenAI in a fresh one), not from the experiment's
    kind, so the link says it."""
    experiment_id = mlflow.MlflowClient(tracking_uri).get_run(run_id).info.experiment_id
    return f"{base_url}/#/experiments/{experiment_id}/runs/{run_id}?workflowType=machine_learning"


@contextmanager
def stage_run(
    stage: str,
    *,
    lineage: dict[str, str] | None = None,
    tags: dict[str, str] | None = None,
    nested: bool = True,
    description: str | None = None,
) -> Iterator[mlflow.ActiveRun]:
    """One stage = one run, tagged with its stage and, for training, its lineage tags, and described
    (the stage's DESCRIPTIONS entry unless `description` says more)."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; expected one of {STAGES}")
    all_tags = {
        "clinrlhf.stage": stage,
        "mlflow.source.git.commit": git_commit(),
        **(lineage or {}),
        **(tags or {}),
    }
    note = description or DESCRIPTIONS[stage]
    with mlflow.start_run(run_name=stage, nested=nested, tags=all_tags, description=note) as run:
        yield run


def lineage_tags(dataset_sha256: str, deid_config_sha256: str) -> dict[str, str]:
    return {"clinrlhf.dataset_sha256": dataset_sha256, "clinrlhf.deid_config_sha256": deid_config_sha256}
