"""The feedback snapshot is an MLflow dataset named by our own SHA-256 of its exact bytes."""

import hashlib
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from clinrlhf.feedback import snapshot_sha256, to_ndjson
from clinrlhf.lineage.datasets import (
    DIGEST_CHARS,
    SHA256_TAG,
    DigestMismatchError,
    log_snapshot_dataset,
    snapshot_source,
)
from clinrlhf.pipeline.sample_run import sample_judgments


def _inputs(client, run_id):
    return {i.dataset.name: i for i in client.get_run(run_id).inputs.dataset_inputs}


def test_snapshot_dataset_digest_is_our_sha256_and_the_full_hash_rides_along(sample):
    reward = sample.client.get_run(sample.good.stages["reward"])
    sha = reward.data.tags["clinrlhf.dataset_sha256"]
    item = _inputs(sample.client, reward.info.run_id)["feedback-snapshot"]
    assert item.dataset.digest == sha[:DIGEST_CHARS]  # MLflow's own would be 8 hex characters
    tags = {t.key: t.value for t in item.tags}
    assert tags[SHA256_TAG] == sha and tags["mlflow.data.context"] == "training"
    assert '"num_rows": 24' in item.dataset.profile
    # The file stays in CLINRLHF_HOME; MLflow holds its digest and where it lies, not its bytes.
    assert not sample.client.list_artifacts(reward.info.run_id, "snapshot")
    local = snapshot_source(reward)
    assert local is not None and local.name == f"{sha}.ndjson" and local.parent.name == "snapshots"
    assert hashlib.sha256(local.read_bytes()).hexdigest() == sha


def test_the_snapshot_file_goes_to_mlflow_only_when_asked(sample, tmp_path):
    judgments = sample_judgments()
    sha = snapshot_sha256(judgments)
    path = tmp_path / f"{sha}.ndjson"
    path.write_bytes(to_ndjson(judgments))
    with mlflow.start_run() as run:
        log_snapshot_dataset(path, sha, log_file=True)
    local = sample.client.download_artifacts(run.info.run_id, f"snapshot/{sha}.ndjson", str(tmp_path / "dl"))
    assert hashlib.sha256(Path(local).read_bytes()).hexdigest() == sha


def test_sft_examples_are_a_dataset_too(sample):
    sft = sample.client.get_run(sample.good.stages["sft"])
    item = _inputs(sample.client, sft.info.run_id)["historical-practice"]
    assert {t.key: t.value for t in item.tags}[SHA256_TAG] == sft.data.tags["clinrlhf.dataset_sha256"]


def test_a_file_that_does_not_match_its_hash_is_refused(sample, tmp_path):
    path = tmp_path / "snapshot.ndjson"
    path.write_text("{}\n")
    with mlflow.start_run(), pytest.raises(DigestMismatchError):
        log_snapshot_dataset(path, snapshot_sha256(sample_judgments()))


def test_mlflow_itself_refuses_a_full_sha256_digest(sample):
    # Why the digest is a 36-character prefix: MLflow's store caps it (MAX_DATASET_DIGEST_SIZE).
    dataset = mlflow.data.from_pandas(pd.DataFrame({"a": [1]}), source="file:///x.ndjson", digest="a" * 64)
    with mlflow.start_run(), pytest.raises(MlflowException, match="digest"):
        mlflow.log_input(dataset)


def test_ppo_and_eval_runs_name_the_data_they_read(sample):
    ppo = _inputs(sample.client, sample.good.stages["ppo"])["ppo-prompts"]
    ev = _inputs(sample.client, sample.good.stages["eval"])["test-scenarios"]
    assert {t.key: t.value for t in ppo.tags}["mlflow.data.context"] == "training"
    assert {t.key: t.value for t in ev.tags}["mlflow.data.context"] == "evaluation"
    for item in (ppo, ev):
        sha = {t.key: t.value for t in item.tags}[SHA256_TAG]
        assert len(sha) == 64 and item.dataset.digest == sha[:DIGEST_CHARS]
        assert '"num_rows": ' in item.dataset.profile and '"num_rows": 0' not in item.dataset.profile
