"""The fairness benchmark's three measurements: the audit of a finished run read back from its home,
steering's arms on the pipeline's feedback cohort, and the loop's two paired pipeline runs."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from common import NotAStore, newest_pipeline_run, open_client
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from pipeline_runs import SEQUENTIAL, merged, run_pipeline

from clinrlhf.compliance.criteria import AcceptanceCriteria
from clinrlhf.compliance.evalmetrics import parse_eval_run
from clinrlhf.compliance.fairness_gaps import METRICS, attribute_gap, gaps_report
from clinrlhf.eval.evaluate import subgroup_of
from clinrlhf.feedback.steering_arms import draw_counts, evaluation_counts, steering_arms
from clinrlhf.lineage.chain import Chain, RunNotFound, load_chain
from clinrlhf.pipeline.cohorts import CohortSizes, make_cohorts, scenarios
from clinrlhf.pipeline.config import PipelineConfig, with_stage_seeds
from clinrlhf.pipeline.tuning import tuning_entry_point
from clinrlhf.world.world import load_world

DEFAULT_DATE = date(2025, 6, 1)
DEFAULT_SEEDS = (0, 1, 2)


def find_chain(client: MlflowClient, run_id: str | None) -> Chain:
    """The lineage chain of `run_id` (a pipeline run or one of its stages), or of the newest finished run."""
    try:
        return load_chain(client, run_id or newest_pipeline_run(client))
    except RunNotFound as err:
        raise SystemExit(str(err)) from None
    except MlflowException as err:
        raise SystemExit(f"cannot read the MLflow store: {str(err).splitlines()[0]}") from None


def audit(
    home: Path, run_id: str | None = None, criteria: AcceptanceCriteria | None = None
) -> dict[str, Any]:
    """The audit report of one pipeline run in `home`, with where its figures came from."""
    try:
        client = open_client(home)
    except NotAStore as err:
        raise SystemExit(str(err)) from None
    chain = find_chain(client, run_id)
    pipeline, evaluation = chain.pipeline, chain.stage("eval")
    if evaluation is None:
        raise SystemExit(f"pipeline run {pipeline.info.run_id} has no eval run (did it finish?)")
    report = gaps_report(parse_eval_run(evaluation.data.metrics), criteria or AcceptanceCriteria())
    started = datetime.fromtimestamp(pipeline.info.start_time / 1000, UTC).isoformat(timespec="seconds")
    return {
        "home": str(home.expanduser().resolve()),
        "pipeline_run_id": pipeline.info.run_id,
        "pipeline_status": pipeline.info.status,
        "pipeline_started": started,
        "eval_run_id": evaluation.info.run_id,
        **report,
    }


def pipeline_sizes(config: PipelineConfig) -> CohortSizes:
    """The pipeline's cohort sizes, with the validation cohort the steering study counts (it chooses
    settings, so it never reads the test cohort)."""
    return config.cohort_sizes(validation=True)._replace(test=0)


@tuning_entry_point("benchmarks/fairness_runs.py")  # it chooses steering settings
def steering(
    attribute: str = "race",
    *,
    patients: int | None = None,
    seed: int = 0,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    floor: float = 0.1,
    day: date = DEFAULT_DATE,
    sizes: CohortSizes | None = None,
) -> dict[str, Any]:
    """The steering comparison on the pipeline's feedback cohort (cohort seed `seed`, date `day`)."""
    sizes = sizes or pipeline_sizes(PipelineConfig())
    cohorts = make_cohorts(load_world(), sizes, seed, day)
    # As PanelSession.selection groups patients: a missing attribute is its own group, "unknown".
    groups = [subgroup_of(p.facts).get(attribute, "unknown") for p in cohorts.feedback]
    budget = len(groups) // 2 if patients is None else patients
    if not 1 <= budget <= len(groups):
        raise SystemExit(f"--patients must be between 1 and the cohort's {len(groups)} patients")
    if floor * len(set(groups)) > 1 + 1e-12:
        raise SystemExit(f"--floor {floor} over {len(set(groups))} groups of {attribute} exceeds 1")
    arms, targets = steering_arms(groups, budget, seeds, floor)
    validation = evaluation_counts(
        [subgroup_of(p.facts).get(attribute) for p in cohorts.validation],
        [subgroup_of(s.facts).get(attribute) for s in scenarios(cohorts.validation)],
    )
    return {
        "attribute": attribute,
        "cohort_seed": seed,
        "date": day.isoformat(),
        "sizes": dict(CohortSizes(*sizes)._asdict()),
        "budget": budget,
        "draw_seeds": list(seeds),
        "floor": floor,
        "targets": targets,
        "arms": arms,
        "validation": validation,
    }


LOOP_ARMS = ("unsteered", "steered")


def loop_overrides(attribute: str, budget: int) -> dict[str, dict[str, Any]]:
    """Each arm's pipeline config, paired: the panel posts one patient at a time in both. Same
    budget; unsteered sends the cohort's first N (a proportional sample: generate_patients draws
    every patient independently), steered draws N of the whole cohort toward equal shares."""
    arms: dict[str, dict[str, Any]] = {
        "unsteered": {"feedback_patients": budget},
        "steered": {"panel": {"steering": {"attribute": attribute, "patients": budget}}},
    }
    return {arm: merged(config, SEQUENTIAL) for arm, config in arms.items()}


def loop_sent(groups: Sequence[str], budget: int, panel_seed: int) -> dict[str, Counter[str]]:
    """Patients sent per group in each arm, drawn as PanelSession.selection draws them."""
    return {"unsteered": Counter(groups[:budget]), "steered": draw_counts(groups, {}, budget, panel_seed)}


def loop_arm(audited: Mapping[str, Any], attribute: str, sent: Counter[str]) -> dict[str, Any]:
    """One arm's figures from its audit report: overall, the attribute's groups, gaps and gate."""
    rows = [r for r in audited["groups"] if r["attribute"] == attribute]
    return {
        "pipeline_run_id": audited["pipeline_run_id"],
        "overall": audited["overall"],
        "groups": {r["group"]: {**r, "sent": sent.get(r["group"], 0)} for r in rows},
        "attribute_gaps": {m: attribute_gap(rows, m) for m in METRICS},
        "gaps": audited["gaps"],
        "gate": audited["gate"],
    }


def loop(
    attribute: str, work: Path, *, patients: int | None, seed: int, criteria: AcceptanceCriteria
) -> dict[str, Any]:
    """Run both arms (one pipeline each, in `work/<arm>`) and read back their subgroup tables."""
    config = with_stage_seeds(PipelineConfig(seed=seed))  # the panel seed each arm's run derives
    cohorts = make_cohorts(load_world(), pipeline_sizes(config), seed, date.today())  # as the pipeline
    groups = [subgroup_of(p.facts).get(attribute, "unknown") for p in cohorts.feedback]
    budget = len(groups) // 2 if patients is None else patients
    if not 1 <= budget < len(groups):
        raise SystemExit(f"--patients must be between 1 and the cohort's {len(groups) - 1} patients")
    sent = loop_sent(groups, budget, config.panel.seed or 0)
    arms = {}
    for arm, overrides in loop_overrides(attribute, budget).items():
        print(f"{arm}: running the pipeline (~8 min) …", file=sys.stderr, flush=True)
        run = run_pipeline(arm, overrides, work, seed, shared_key=f"fairness-loop-synthetic-only-{seed}")
        arms[arm] = {
            "seconds": round(run.seconds),
            **loop_arm(audit(run.home, criteria=criteria), attribute, sent[arm]),
        }
    return {
        "attribute": attribute,
        "seed": seed,
        "budget": budget,
        "feedback_cohort": len(groups),
        "criteria": {
            "max_subgroup_gap": criteria.max_subgroup_gap,
            "min_subgroup_n": criteria.min_subgroup_n,
        },
        "arms": arms,
    }
