"""benchmarks/policy_privacy.py: its two arms are valid paired pipeline configs, and each run's
figures are read back from a real MLflow store (the pipeline itself is not run: ~10 min an arm)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import mlflow
import pytest

from clinrlhf.pipeline.config import load_pipeline_config

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "policy_privacy.py"
_SPEC = importlib.util.spec_from_file_location("policy_privacy", _PATH)
assert _SPEC is not None and _SPEC.loader is not None
bench = importlib.util.module_from_spec(_SPEC)
sys.modules["policy_privacy"] = bench
_SPEC.loader.exec_module(bench)


def test_the_arms_are_paired_and_differ_only_in_ppo_prompts(tmp_path):
    from pipeline_runs import SEQUENTIAL, merged

    loaded = {}
    for arm, overrides in bench.ARMS.items():
        path = tmp_path / "c.json"
        path.write_text(json.dumps(merged(SEQUENTIAL, overrides)))
        loaded[arm] = load_pipeline_config(path)
    feedback, history = loaded["feedback prompts"], loaded["history prompts"]
    assert feedback.panel.concurrency == history.panel.concurrency == 1
    assert (feedback.ppo_prompts, history.ppo_prompts) == ("feedback", "history")
    assert feedback == history.__class__(**{**vars(history), "ppo_prompts": "feedback"})


@pytest.fixture
def tracking_uri(tmp_path):
    """A real SQLite MLflow store for this test only; the process-wide URI is put back after."""
    before = mlflow.get_tracking_uri()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(before)


def test_figures_read_the_ppo_runs_prompt_count_back(tmp_path, tracking_uri):
    from pipeline_runs import PipelineRun

    uri = tracking_uri
    with (
        mlflow.start_run(tags={"clinrlhf.stage": "pipeline"}) as parent,
        mlflow.start_run(nested=True, tags={"clinrlhf.stage": "ppo"}),
    ):
        mlflow.log_param("ppo.prompts", 2345)
    summary = {
        "before": {"concordance": 0.6, "unsafe_rate": 0.3},
        "after": {"concordance": 0.8, "unsafe_rate": 0.05},
        "kl": 1.1,
        "epsilon": 8.0,
        "mlflow_run_id": parent.info.run_id,
        "mlflow_tracking_uri": uri,
    }
    figures = bench.figures(PipelineRun(tmp_path, summary, 61.0), 900)
    assert figures["prompts"] == 2345
    low, high = figures["concordance_ci"]
    assert low < 0.8 < high and high - low == pytest.approx(0.052, abs=0.003)  # Wilson, n = 900
    table = bench.markdown({"seeds": {0: {"history prompts": figures}}})
    assert "| 0 | history prompts | 2345 | 0.800 (" in table
