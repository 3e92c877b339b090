"""The acceptance gate of one registered version: the criteria against the version's own eval run
and reward run, as MLflow recorded them. Approval and promotion both check it."""

from __future__ import annotations

import math

from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient

from clinrlhf.compliance.criteria import AcceptanceCriteria, CriterionResult, check_criteria
from clinrlhf.compliance.evalmetrics import parse_eval_run
from clinrlhf.compliance.registry import EVAL_RUN, REWARD_RUN


def evaluate_version(
    client: MlflowClient, mv: ModelVersion, criteria: AcceptanceCriteria
) -> list[CriterionResult]:
    """The criteria against the version's own eval run and reward run, as MLflow recorded them."""
    eval_run = client.get_run(mv.tags[EVAL_RUN]) if mv.tags.get(EVAL_RUN) else None
    reward_run = client.get_run(mv.tags[REWARD_RUN]) if mv.tags.get(REWARD_RUN) else None
    after = parse_eval_run(eval_run.data.metrics if eval_run else {})["after"]
    epsilon = reward_run.data.metrics.get("dp.epsilon", math.inf) if reward_run else math.inf
    return check_criteria(criteria, after, epsilon)
