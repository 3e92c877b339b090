"""What only the pipeline knows and the report shows: the world it ran in, de-identification counts
and how the panel's feedback went over HTTP. Logged once as a JSON artifact of the pipeline run, so
the report can be rebuilt from MLflow alone."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import mlflow
from mlflow.tracking import MlflowClient

from clinrlhf.lineage.artifacts import read_artifact_text

FACTS = "report/facts.json"


def log_report_facts(world: str, deid_counts: Mapping[str, int], feedback: Mapping[str, Any]) -> None:
    """Log to the active (pipeline) run. Counts only: no identifier or record content."""
    mlflow.log_dict(
        {"world": world, "deid_counts": dict(sorted(deid_counts.items())), "feedback": dict(feedback)}, FACTS
    )


def read_report_facts(client: MlflowClient, run_id: str) -> dict[str, Any]:
    """The facts logged for `run_id`, or {} for a run that logged none."""
    text = read_artifact_text(client, run_id, FACTS)
    loaded = json.loads(text) if text is not None else {}
    return loaded if isinstance(loaded, dict) else {}
