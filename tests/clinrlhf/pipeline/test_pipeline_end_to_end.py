"""The whole loop on a small config, through the real CLI, HTTP server, SQLite and MLflow store."""

import json
import os
import subprocess
import sys
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from clinrlhf.panel.clinicians import default_panel
from clinrlhf.pipeline.cohorts import make_cohorts
from clinrlhf.pipeline.seeds import derive_seed
from clinrlhf.world import load_world

SMALL = {
    "history_patients": 900,
    "feedback_patients": 250,
    "test_patients": 150,
    "seed": 3,
    "sft": {"epochs": 4},
    "reward": {"epochs": 2},
    "ppo": {"steps": 12, "final_kl_samples": 64},
}
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, dict]:
    home = tmp_path_factory.mktemp("home")
    config = home.parent / "small.json"
    config.write_text(json.dumps(SMALL))
    env = {**os.environ, "CLINRLHF_HOME": str(home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run(
        [sys.executable, "-m", "clinrlhf", "pipeline", "--config", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # The console output is scanned for identifiers too (test_no_patient_identifier_leaks).
    (home.parent / "pipeline.log").write_text(done.stdout + done.stderr)
    return home, json.loads(done.stdout)


def test_summary_has_every_contract_key(run):
    _, summary = run
    for key in (
        "before",
        "after",
        "kl",
        "epsilon",
        "delta",
        "mlflow_run_id",
        "mlflow_tracking_uri",
        "policy_dir",
        "report",
        "seconds",
    ):
        assert key in summary
    for side in ("before", "after"):
        assert set(summary[side]) >= {"concordance", "unsafe_rate"}
    assert 0 < summary["epsilon"] <= 8 and 0 < summary["delta"] <= 1 / summary["preference_pairs"]
    assert summary["kl"] == summary["kl"] and summary["kl"] >= 0  # finite, not NaN
    assert (Path(summary["policy_dir"]) / "config.json").exists()


def test_mlflow_runs_are_nested_and_tagged_as_contract_says(run):
    _, summary = run
    client = MlflowClient(summary["mlflow_tracking_uri"])
    parent = client.get_run(summary["mlflow_run_id"])
    assert parent.data.tags["clinrlhf.stage"] == "pipeline"
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    stages = {c.data.tags["clinrlhf.stage"]: c for c in children}
    assert set(stages) == {"sft", "reward", "ppo", "eval"}
    reward, ppo, ev = stages["reward"], stages["ppo"], stages["eval"]
    for name in (
        "dp.noise_multiplier",
        "dp.sample_rate",
        "dp.steps",
        "dp.delta",
        "dp.max_grad_norm",
        "dp.accountant",
        "dp.privacy_unit",
    ):
        assert name in reward.data.params
    assert reward.data.metrics["dp.epsilon"] == pytest.approx(summary["epsilon"])
    # The pipeline's default: each clinician's Dawid–Skene accuracy weighted the loss. Under the pair
    # unit the table is published keyed by the panel enrolled before feedback, not by who judged.
    assert reward.data.params["reward.rater_weighting"] == "dawid-skene"
    accuracies = json.loads(
        Path(client.download_artifacts(reward.info.run_id, "raters/accuracies.json")).read_text()
    )
    assert list(accuracies) == [c.id for c in default_panel()]
    assert all(a is None or 0.5 < a <= 1.0 for a in accuracies.values())
    assert not [k for k in reward.data.metrics if k.startswith("reward.rater_accuracy.")]
    assert {"ppo.kl", "ppo.kl_coef", "ppo.reward_mean"} <= set(ppo.data.metrics)
    assert ppo.data.tags["clinrlhf.reward_run_id"] == reward.info.run_id
    for stage in ("sft", "reward", "ppo"):
        tags = stages[stage].data.tags
        assert len(tags["clinrlhf.dataset_sha256"]) == 64 and len(tags["clinrlhf.deid_config_sha256"]) == 64
        assert tags["mlflow.source.git.commit"]
    assert ev.data.metrics["eval.concordance"] == pytest.approx(summary["after"]["concordance"])
    # One knob: the run's seed set every stage seed the config left open.
    assert reward.data.params["reward.seed"] == str(derive_seed(SMALL["seed"], "reward"))
    assert stages["sft"].data.params["sft.seed"] == str(derive_seed(SMALL["seed"], "sft"))
    assert any(k.startswith("eval.concordance.sex.") for k in ev.data.metrics)
    # The test scenarios no trainer read a prompt of: fewer than all (tiny cohorts share prompts).
    unseen = summary["unseen_prompts"]
    assert 0 < unseen["n"] < ev.data.metrics["eval.n"]
    assert ev.data.metrics["eval.unseen_prompts.concordance"] == pytest.approx(unseen["concordance"])
    assert "eval.before.unseen_prompts.concordance" in ev.data.metrics


def test_snapshot_on_disk_matches_its_lineage_hash(run):
    home, summary = run
    client = MlflowClient(summary["mlflow_tracking_uri"])
    parent = client.get_run(summary["mlflow_run_id"])
    reward = client.search_runs([parent.info.experiment_id], "tags.`clinrlhf.stage` = 'reward'")[0]
    digest = reward.data.tags["clinrlhf.dataset_sha256"]
    import hashlib

    assert hashlib.sha256((home / "snapshots" / f"{digest}.ndjson").read_bytes()).hexdigest() == digest


def test_lineage_and_report_commands(run):
    home, summary = run
    env = {**os.environ, "CLINRLHF_HOME": str(home)}
    lineage = subprocess.run(
        [sys.executable, "-m", "clinrlhf", "lineage", summary["mlflow_run_id"]],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert lineage.returncode == 0 and "PPO run" in lineage.stdout and "feedback snapshot" in lineage.stdout
    report = subprocess.run(
        [sys.executable, "-m", "clinrlhf", "report", summary["mlflow_run_id"]],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert report.returncode == 0 and Path(report.stdout.strip()) == Path(summary["report"])

    class Sections(HTMLParser):
        ids: set[str] = set()

        def handle_starttag(self, tag, attrs):
            self.ids.update(v for k, v in attrs if k == "id")

    parser = Sections()
    parser.feed(Path(summary["report"]).read_text())
    assert {
        "summary",
        "acceptance",
        "privacy",
        "deid",
        "feedback",
        "training",
        "subgroups",
        "lineage",
        "model-card",
        "approvals",
    } <= parser.ids
    if summary["report_pdf"]:  # WeasyPrint renders it where Pango is installed
        assert Path(summary["report_pdf"]).read_bytes().startswith(b"%PDF")


def test_the_policy_is_registered_and_the_audit_trail_verifies(run):
    home, summary = run
    client = MlflowClient(summary["mlflow_tracking_uri"])
    version = client.get_model_version("clinrlhf-policy", summary["model_version"])
    assert version.tags["clinrlhf.pipeline_run_id"] == summary["mlflow_run_id"]
    env = {**os.environ, "CLINRLHF_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-m", "clinrlhf", "audit", "verify"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("audit OK")


def test_no_patient_identifier_leaks(run):
    """CLINRLHF_HOME holds the database, the MLflow store and its artifacts, models and reports; the
    pipeline's console output is the log. None may hold an identifier of the patients it saw."""
    home, summary = run
    world = load_world()
    cohorts = make_cohorts(
        world,
        (SMALL["history_patients"], SMALL["feedback_patients"], 0, SMALL["test_patients"]),
        SMALL["seed"],
        date.today(),
    )
    needles = set()
    for patient in cohorts.history + cohorts.feedback:
        person = patient.bundle["entry"][0]["resource"]
        needles |= {
            person["id"],
            person["identifier"][0]["value"],
            person["telecom"][0]["value"],
            person["address"][0]["line"][0],
            person["name"][0]["family"] + ".",
        }
        needles.add(" ".join(person["name"][0]["given"] + [person["name"][0]["family"]]))
    files = [*(p for p in home.rglob("*") if p.is_file()), home.parent / "pipeline.log"]
    assert any(p.suffix == ".json" for p in (home / "mlartifacts").rglob("*"))  # artifacts were scanned
    blobs = [p.read_bytes() for p in files]
    leaked = [n for n in needles if any(n.encode() in blob for blob in blobs)]
    assert not leaked, f"{len(leaked)} identifiers found in CLINRLHF_HOME or the logs"


def test_ppo_reruns_against_the_pipelines_reward_model_on_history_prompts(run, tmp_path):
    """The pipeline keeps its DP reward model, so PPO can be trained again against the very same one;
    with `ppo_prompts: history` it samples the practice corpus, not the snapshot's prompts."""
    home, summary = run
    client = MlflowClient(summary["mlflow_tracking_uri"])
    parent = client.get_run(summary["mlflow_run_id"])
    runs = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    stages = {r.data.tags["clinrlhf.stage"]: r for r in runs}
    reward_run, pipeline_ppo = stages["reward"], stages["ppo"]
    assert pipeline_ppo.data.tags["clinrlhf.ppo_prompt_source"] == "feedback"  # the default
    folder = Path(summary["policy_dir"]).parent
    metadata = json.loads((folder / "reward" / "reward.json").read_text())
    assert metadata["mlflow.run_id"] == reward_run.info.run_id
    assert metadata["clinrlhf.dataset_sha256"] == reward_run.data.tags["clinrlhf.dataset_sha256"]
    config = tmp_path / "rerun.json"
    ppo = {"steps": 2, "batch_size": 8, "final_kl_samples": 8}
    config.write_text(json.dumps({**SMALL, "ppo": ppo, "ppo_prompts": "history"}))
    snapshot = home / "snapshots" / f"{metadata['clinrlhf.dataset_sha256']}.ndjson"
    args = ["train", "ppo", "--out", str(tmp_path / "policy"), "--config", str(config)]
    args += ["--policy", str(folder / "sft"), "--snapshot", str(snapshot), "--reward", str(folder / "reward")]
    env = {**os.environ, "CLINRLHF_HOME": str(home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run(
        [sys.executable, "-m", "clinrlhf", *args], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rerun = client.get_run(json.loads(done.stdout)["mlflow_run_id"])
    assert rerun.data.tags["clinrlhf.reward_run_id"] == reward_run.info.run_id
    assert rerun.data.tags["clinrlhf.ppo_prompt_source"] == "history"
    # 900 practice patients against 250 feedback patients: the prompt sets differ in size.
    assert int(rerun.data.params["ppo.prompts"]) > 2 * int(pipeline_ppo.data.params["ppo.prompts"])
