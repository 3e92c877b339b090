"""The finished pipeline run under a CLINRLHF_HOME that a benchmark compares against, and where each of
its facts came from: its policies and snapshot on disk, its config, date and stage runs from MLflow.
The home is only read."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from common import NotAStore, finished_pipeline_runs, open_client
from mlflow import MlflowClient

from clinrlhf.eval.evaluate import Scenario
from clinrlhf.lineage.runs import EXPERIMENT
from clinrlhf.pipeline.cohorts import CohortSizes, make_cohorts
from clinrlhf.pipeline.cohorts import scenarios as scenarios_of
from clinrlhf.pipeline.config import PipelineConfig
from clinrlhf.pipeline.logged import ConfigNotLogged, UnreadableConfig, load_logged_config
from clinrlhf.reward.ledger import LEDGER_FILE
from clinrlhf.world.world import World


@dataclass(frozen=True)
class RunFiles:
    """Everything the benchmark reads from a finished home, and where each fact came from."""

    home: Path
    run_id: str
    sft: Path
    policy: Path
    snapshot: Path
    ledger: Path
    config: PipelineConfig
    config_source: str
    run_date: date
    date_source: str
    mlflow: dict[str, Any] = field(default_factory=dict)
    """Per stage ("sft", "reward", "ppo", "eval"): run_id, seconds, metrics, tags; empty without MLflow."""


def _stage_facts(client: MlflowClient, parent: str) -> dict[str, Any]:
    """Per stage of the pipeline run `parent`: run_id, seconds, its metrics' last values, tags."""
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        return {}
    facts: dict[str, Any] = {}
    filter_string = f"tags.`mlflow.parentRunId` = '{parent}'"
    for child in client.search_runs([experiment.experiment_id], filter_string):
        info, tags = child.info, child.data.tags
        seconds = (info.end_time - info.start_time) / 1000 if info.start_time and info.end_time else None
        stage = tags.get("clinrlhf.stage", info.run_id)
        facts[stage] = {
            "run_id": info.run_id,
            "seconds": seconds,
            "metrics": dict(child.data.metrics),
            "tags": tags,
        }
    return facts


def _logged_config(client: MlflowClient | None, run_id: str) -> tuple[PipelineConfig, str]:
    """The PipelineConfig the run logged (defaults for anything it did not log), else the defaults."""
    if client is None:
        return PipelineConfig(), "PipelineConfig() defaults (no config logged in MLflow)"
    try:
        return load_logged_config(client, run_id)
    except ConfigNotLogged:
        return PipelineConfig(), "PipelineConfig() defaults (no config logged in MLflow)"
    except UnreadableConfig as err:
        seed = int(err.raw.get("seed", 0))
        return PipelineConfig(
            seed=seed
        ), f"PipelineConfig(seed={seed}) defaults (logged config unreadable: {err})"


def _is_policy(path: Path) -> bool:
    return (path / "config.json").exists()


def locate_run(home: Path, run_id: str | None = None, run_date: date | None = None) -> RunFiles:
    """The run under `home` to compare against: `run_id`, or the newest finished one."""
    home = home.expanduser().resolve()
    candidates = {
        p.name: p
        for p in sorted((home / "runs").glob("*"))
        if _is_policy(p / "sft") and _is_policy(p / "policy")
    }
    if not candidates:
        raise SystemExit(
            f"{home}: no finished run (runs/<id>/sft and runs/<id>/policy); is it a pipeline home?"
        )
    try:
        client: MlflowClient | None = open_client(home)
    except NotAStore:
        client = None
    started = {r.info.run_id: r.info.start_time for r in finished_pipeline_runs(client)} if client else {}
    if run_id is not None:
        if run_id not in candidates:
            raise SystemExit(f"{home}: no finished run {run_id}; found {', '.join(sorted(candidates))}")
        chosen = run_id
    elif any(r in started for r in candidates):
        chosen = max((r for r in candidates if r in started), key=started.__getitem__)
    else:
        chosen = max(candidates, key=lambda r: (candidates[r] / "policy").stat().st_mtime)
    folder = candidates[chosen]
    config, config_source = _logged_config(client, chosen)
    stages = _stage_facts(client, chosen) if client is not None else {}
    if run_date is not None:
        when, date_source = run_date, "--run-date"
    elif chosen in started:
        # The pipeline draws its cohorts with date.today(): the local date at which it started.
        when, date_source = datetime.fromtimestamp(started[chosen] / 1000).date(), "MLflow start of the run"
    else:
        mtime = (folder / "sft" / "config.json").stat().st_mtime
        when, date_source = datetime.fromtimestamp(mtime).date(), "date of runs/<id>/sft (no MLflow)"
    snapshots = sorted((home / "snapshots").glob("*.ndjson"), key=lambda p: p.stat().st_mtime)
    digest = stages.get("reward", {}).get("tags", {}).get("clinrlhf.dataset_sha256")
    if digest and (home / "snapshots" / f"{digest}.ndjson").exists():
        snapshot = home / "snapshots" / f"{digest}.ndjson"
    elif snapshots:
        snapshot = snapshots[-1]  # one snapshot per pipeline run: the newest is the newest run's
    else:
        raise SystemExit(f"{home}: no snapshots/*.ndjson")
    return RunFiles(
        home=home,
        run_id=chosen,
        sft=folder / "sft",
        policy=folder / "policy",
        snapshot=snapshot,
        ledger=home / LEDGER_FILE,
        config=config,
        config_source=config_source,
        run_date=when,
        date_source=date_source,
        mlflow=stages,
    )


def cohort_scenarios(
    world: World, config: PipelineConfig, run_date: date, cohort: str = "test"
) -> list[Scenario]:
    """The scenarios of a finished run's `cohort` ("test": what it reported; "validation": what
    tuning decides on). make_cohorts seeds each cohort on its own, so one cohort alone is drawn
    exactly as in the run."""
    if cohort == "test":
        return scenarios_of(
            make_cohorts(world, CohortSizes(test=config.test_patients), config.seed, run_date).test
        )
    if cohort == "validation":
        sizes = CohortSizes(validation=config.validation_patients)
        return scenarios_of(make_cohorts(world, sizes, config.seed, run_date).validation)
    raise ValueError(f"cohort must be test or validation, not {cohort!r}")
