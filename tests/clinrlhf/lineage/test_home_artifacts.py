"""A CLINRLHF_HOME copied to another folder reads its MLflow artifacts from the copy, not the original."""

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient
from mlflow.tracking._tracking_service import utils as tracking_utils

from clinrlhf.compliance.registry import MODEL_NAME
from clinrlhf.lineage.datasets import snapshot_source
from clinrlhf.lineage.home_artifacts import SERVER_STORE_ENV
from clinrlhf.lineage.runs import EXPERIMENT, configure_mlflow
from clinrlhf.pipeline.sample_run import record_sample_run
from clinrlhf.settings import Settings


@pytest.fixture
def moved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A sample run recorded in one home, the home copied elsewhere, the original moved out of reach."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    original = tmp_path / "original"
    run = record_sample_run(Settings(home=original))
    copy = tmp_path / "elsewhere" / "home"
    shutil.copytree(original, copy)
    original.rename(tmp_path / "gone")  # any path still pointing at the original now fails
    # As a new process would open the copy: mlflow.set_tracking_uri exported the original's store,
    # and MLflow caches each run's artifact repository (as built in the original) by run id.
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    tracking_utils._artifact_repos_cache.clear()
    settings = Settings(home=copy)
    configure_mlflow(settings)
    return settings, run


def test_the_stores_locations_name_no_absolute_folder(moved):
    settings, run = moved
    client = MlflowClient(settings.mlflow_tracking_uri)
    assert "original" not in client.get_experiment_by_name(EXPERIMENT).artifact_location
    assert "original" not in client.get_run(run.stages["sft"]).info.artifact_uri


def test_run_artifacts_are_read_from_the_copy(moved, tmp_path):
    settings, run = moved
    client = MlflowClient(settings.mlflow_tracking_uri)
    sft = client.get_run(run.stages["sft"])
    sha = sft.data.tags["clinrlhf.dataset_sha256"]
    local = client.download_artifacts(sft.info.run_id, f"examples/{sha}.ndjson", str(tmp_path / "dl"))
    assert hashlib.sha256(Path(local).read_bytes()).hexdigest() == sha


def test_new_artifacts_land_in_the_copy(moved):
    settings, run = moved
    with mlflow.start_run(run_id=run.pipeline_run_id):
        mlflow.log_dict({"after": "move"}, "moved.json")
    assert list(settings.resolved_home.glob(f"mlartifacts/{run.pipeline_run_id}/artifacts/moved.json"))
    assert not (settings.resolved_home.parent.parent / "original").exists()


def test_the_registered_policy_downloads_from_the_copy(moved, tmp_path):
    settings, run = moved
    local = mlflow.artifacts.download_artifacts(
        f"models:/{MODEL_NAME}/{run.version}",
        dst_path=str(tmp_path / "policy"),
        tracking_uri=settings.mlflow_tracking_uri,
    )
    copied = settings.resolved_home / run.policy_dir.relative_to(run.policy_dir.parents[2])
    assert (Path(local) / "model.safetensors").read_bytes() == (copied / "model.safetensors").read_bytes()


def test_the_snapshot_dataset_resolves_in_the_copy(moved):
    settings, run = moved
    reward = MlflowClient(settings.mlflow_tracking_uri).get_run(run.stages["reward"])
    local = snapshot_source(reward, settings.resolved_home)
    assert local is not None and local.is_relative_to(settings.resolved_home) and local.is_file()


def test_mlflow_ui_on_the_copy_finds_its_artifacts(moved, tmp_path):
    """`mlflow ui --backend-store-uri sqlite:///<copy>/mlflow.db` knows the scheme from the entry point
    (no clinrlhf import) and resolves it against the store it serves (exported to its workers)."""
    settings, run = moved
    probe = (
        "from mlflow.tracking import MlflowClient\n"
        "from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository\n"
        f"run = MlflowClient({settings.mlflow_tracking_uri!r}).get_run({run.stages['sft']!r})\n"
        "repo = get_artifact_repository(run.info.artifact_uri)\n"
        "print(repo.artifact_dir, sorted(f.path for f in repo.list_artifacts()))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "CLINRLHF_"))}
    env[SERVER_STORE_ENV] = settings.mlflow_tracking_uri
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert str(settings.resolved_home / "mlartifacts") in out.stdout and "examples" in out.stdout
