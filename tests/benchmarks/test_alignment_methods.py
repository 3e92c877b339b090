"""benchmarks/alignment_methods.py: finding a run in a home laid out as the pipeline lays one out,
with and without its MLflow store, and its report. The methods themselves are tested in miniature
in tests/clinrlhf/alignment/test_methods.py."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import sys
from datetime import date, datetime
from pathlib import Path

import mlflow
import pytest
import torch
from mlflow import MlflowClient

from clinrlhf.lineage.runs import EXPERIMENT
from clinrlhf.pipeline.config import PipelineConfig
from clinrlhf.pipeline.logged import log_pipeline_config

torch.set_num_threads(1)
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))  # the scripts' siblings
_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "alignment_methods.py"
_SPEC = importlib.util.spec_from_file_location("alignment_methods", _PATH)
assert _SPEC is not None and _SPEC.loader is not None
bench = importlib.util.module_from_spec(_SPEC)
sys.modules["alignment_methods"] = bench  # dataclasses look their module up by name
_SPEC.loader.exec_module(bench)

from alignment_report import markdown  # noqa: E402
from common import json_safe  # noqa: E402
from finished_run import locate_run  # noqa: E402


def _home(tmp_path: Path, runs: list[str]) -> Path:
    home = tmp_path / "home"
    for run in runs:
        for part in ("sft", "policy"):
            (home / "runs" / run / part).mkdir(parents=True)
            (home / "runs" / run / part / "config.json").write_text("{}")
    (home / "runs" / "unfinished" / "sft").mkdir(parents=True)  # no policy: never chosen
    (home / "snapshots").mkdir()
    for digest in ("aa" * 32, "bb" * 32):
        (home / "snapshots" / f"{digest}.ndjson").write_bytes(b"")
    return home


def test_locate_run_without_mlflow_takes_the_newest_run(tmp_path):
    home = _home(tmp_path, ["old", "new"])
    os.utime(home / "runs" / "old" / "policy", (1_000_000, 1_000_000))
    os.utime(home / "snapshots" / f"{'aa' * 32}.ndjson", (1_000_000, 1_000_000))
    run = locate_run(home)
    assert run.run_id == "new" and run.sft == home.resolve() / "runs" / "new" / "sft"
    assert run.snapshot.name == f"{'bb' * 32}.ndjson"  # the newest
    assert run.config == PipelineConfig() and "defaults" in run.config_source
    assert locate_run(home, "old").run_id == "old"
    with pytest.raises(SystemExit):
        locate_run(home, "unfinished")


def test_locate_run_reads_config_date_and_snapshot_from_mlflow(tmp_path):
    """A real MLflow store as the pipeline leaves it: the newest finished pipeline run is taken, with
    the config it logged, the local date it started and the snapshot its reward stage trained on."""
    home = _home(tmp_path, ["r1", "r2"])
    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    experiment = client.create_experiment(EXPERIMENT)
    noon = int(datetime(2026, 3, 4, 12).timestamp() * 1000)
    ids = {}
    for name, start, end in (("r1", noon, noon + 9000), ("r2", noon - 86_400_000, noon)):
        run = client.create_run(experiment, start_time=start, tags={"clinrlhf.stage": "pipeline"})
        client.set_terminated(run.info.run_id, "FINISHED", end_time=end)
        ids[name] = run.info.run_id
    for name, run_id in ids.items():  # the run folders are named by the MLflow run id
        (home / "runs" / name).rename(home / "runs" / run_id)
    reward = client.create_run(
        experiment,
        start_time=noon + 1000,
        tags={
            "clinrlhf.stage": "reward",
            "mlflow.parentRunId": ids["r1"],
            "clinrlhf.dataset_sha256": "aa" * 32,
        },
    )
    client.log_metric(reward.info.run_id, "reward.heldout_accuracy", 0.8)
    client.set_terminated(reward.info.run_id, "FINISHED", end_time=noon + 5000)
    mlflow.set_tracking_uri(client.tracking_uri)
    with mlflow.start_run(run_id=ids["r1"]):
        log_pipeline_config(PipelineConfig(seed=7, test_patients=5))
    client.set_terminated(ids["r1"], "FINISHED", end_time=noon + 9000)

    run = locate_run(home)
    assert run.run_id == ids["r1"] and run.run_date == date(2026, 3, 4)
    assert (run.config.seed, run.config.test_patients) == (7, 5) and "MLflow" in run.config_source
    assert run.snapshot.name == f"{'aa' * 32}.ndjson"  # the one its reward stage trained on
    assert run.mlflow["reward"]["metrics"] == {"reward.heldout_accuracy": 0.8}
    assert run.mlflow["reward"]["seconds"] == pytest.approx(4.0)


def test_locate_run_ignores_a_store_that_is_not_mlflow(tmp_path):
    home = _home(tmp_path, ["only"])
    (home / "mlflow.db").write_bytes(b"not a database")
    run = locate_run(home)
    assert run.run_id == "only" and run.mlflow == {} and "defaults" in run.config_source


def test_output_is_strict_json_and_the_table_says_what_was_not_private():
    row = {
        "feedback_source": "clinician",
        "concordance": {"estimate": 0.5, "low": 0.4, "high": 0.6},
        "unsafe_rate": {"estimate": 0.1, "low": 0.05, "high": 0.15},
        "epsilon": None,
        "kl_heldout": {"kl": 1.0, "kl_ci_low": 0.9, "kl_ci_high": 1.1},
    }
    result = {
        "run_id": "r",
        "mode": "full",
        "test_scenarios": 10,
        "methods": {"DPO (non-private)": row},
        "privacy": {
            "snapshot_sha256": "ab" * 32,
            "delta": 1e-5,
            "home_budget_epsilon": 10.0,
            "composed_after_each_charge": [
                {"after": "x", "composed_epsilon": math.inf, "within_home_budget": False}
            ],
            "combinations": {},
            "note": "",
        },
    }
    assert "∞ (no DP)" in markdown(result)
    assert json.dumps(json_safe({"a": math.inf, "b": [math.nan]}), allow_nan=False) == (
        '{"a": null, "b": [null]}'
    )
