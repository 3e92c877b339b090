"""What a DP reward run releases to MLflow: nothing keyed by who was trained on, and the feedback
snapshot only by its digest.

Each test trains the pipeline's reward stage for real (tiny GPT-2 trunk, Opacus) into a real SQLite
MLflow store whose artifacts live under the test's folder, then reads back every byte that store
holds: the database file (run names, params, metrics, tags, dataset inputs) and every artifact."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
import torch
from mlflow.tracking import MlflowClient
from transformers import PreTrainedTokenizerFast

from clinrlhf.feedback import Judgment
from clinrlhf.lineage.datasets import SHA256_TAG, mlflow_digest
from clinrlhf.pipeline import stages
from clinrlhf.policy import PolicyConfig, build_policy
from clinrlhf.reward.config import RewardConfig
from clinrlhf.reward.evaluate import fresh_scenarios, split_by_patient
from clinrlhf.reward.pairs import pairs_from_judgments
from clinrlhf.reward.raters import with_rater_accuracies
from clinrlhf.reward.simulated import simulated_judgments
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.world import World

torch.set_num_threads(1)
TINY = PolicyConfig(n_layer=1, n_embd=32, n_head=2, n_positions=64)


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A SQLite MLflow store with its artifacts under tmp_path (not ./mlruns), as the active one."""
    previous = mlflow.get_tracking_uri()
    uri, artifacts = f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "artifacts"
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("release", artifact_location=artifacts.as_uri())
    mlflow.set_experiment(experiment_id=experiment)
    yield uri, artifacts
    mlflow.set_tracking_uri(previous)


def _judgments(world: World) -> list[Judgment]:
    return simulated_judgments(world, generate_patients(world, 60, seed=4), reviewers_per_card=2)


def _train(
    world: World,
    tokenizer: PreTrainedTokenizerFast,
    home: Path,
    judgments: list[Judgment],
    config: RewardConfig,
    roster: list[str] | None,
) -> str:
    snapshot = stages.save_snapshot(judgments, home / "snapshots")
    torch.manual_seed(0)
    _, _, trained = stages.reward_stage(
        world=world,
        judgments=judgments,
        sft_model=build_policy(TINY, tokenizer),
        tokenizer=tokenizer,
        config=with_rater_accuracies(config, judgments),
        snapshot=snapshot,
        deid_sha="deid",
        progress=lambda done, total: None,
        utility_scenarios=fresh_scenarios(world, n=5),
        roster=roster,
    )
    return trained.run_id


def _everything_held(tmp_path: Path, artifacts: Path) -> dict[str, bytes]:
    """Every file of the MLflow store: the database (names and values of params, metrics, tags and
    dataset inputs) and every artifact, by path."""
    files = [tmp_path / "mlflow.db", *(p for p in artifacts.rglob("*") if p.is_file())]
    return {str(p.relative_to(tmp_path)): p.read_bytes() for p in files}


def _trained_clinicians(world: World, judgments: list[Judgment], seed: int) -> set[str]:
    train, _ = split_by_patient(pairs_from_judgments(judgments, world=world), 0.1, seed)
    return {p.clinician for p in train}


def test_a_clinician_unit_run_publishes_no_clinician_pseudonym_anywhere(
    store: tuple[str, Path], tmp_path: Path, world: World, tokenizer: PreTrainedTokenizerFast
) -> None:
    uri, artifacts = store
    judgments = _judgments(world)
    config = RewardConfig(
        epochs=1,
        privacy_unit="clinician",
        units_per_batch=4,
        rater_weighting="dawid-skene",
        rater_buckets=16,
    )
    trained = _trained_clinicians(world, judgments, config.seed or 0)  # alone: seed 0
    roster = sorted({j.clinician for j in judgments})  # even with a roster: a user-level unit gets none
    run_id = _train(world, tokenizer, tmp_path / "home", judgments, config, roster)

    data = MlflowClient(uri).get_run(run_id).data
    assert data.params["dp.privacy_unit"] == "clinician"
    names = [*data.params, *data.metrics, *data.tags]
    assert not [n for n in names if any(c in n for c in trained)]
    leaks = {
        path: sorted(c for c in trained if c.encode() in content)
        for path, content in _everything_held(tmp_path, artifacts).items()
    }
    assert not {path: found for path, found in leaks.items() if found}


def test_the_snapshot_stays_in_clinrlhf_home_and_mlflow_gets_its_digest(
    store: tuple[str, Path], tmp_path: Path, world: World, tokenizer: PreTrainedTokenizerFast
) -> None:
    uri, artifacts = store
    judgments, home = _judgments(world), tmp_path / "home"
    run_id = _train(world, tokenizer, home, judgments, RewardConfig(epochs=1), roster=None)

    client = MlflowClient(uri)
    run = client.get_run(run_id)
    digest = run.data.tags["clinrlhf.dataset_sha256"]
    snapshot = home / "snapshots" / f"{digest}.ndjson"
    assert snapshot.is_file()  # the file stays where the pipeline wrote it
    assert not [a for a in client.list_artifacts(run_id) if a.path == "snapshot"]
    assert not [p for p in artifacts.rglob("*.ndjson")]
    (dataset,) = run.inputs.dataset_inputs
    assert dataset.dataset.digest == mlflow_digest(digest)
    assert {t.key: t.value for t in dataset.tags}[SHA256_TAG] == digest
    # No judgment's content travels with the digest: a prompt is the longest string a judgment holds.
    held = b"".join(_everything_held(tmp_path, artifacts).values())
    assert not [j for j in judgments if j.prompt.encode() in held]


def test_a_pair_unit_run_keys_its_rater_tables_by_the_roster_fixed_before_training(
    store: tuple[str, Path], tmp_path: Path, world: World, tokenizer: PreTrainedTokenizerFast
) -> None:
    uri, artifacts = store
    judgments = _judgments(world)
    config = RewardConfig(epochs=1, rater_weighting="dawid-skene", rater_buckets=16)
    trained = _trained_clinicians(world, judgments, config.seed or 0)  # alone: seed 0
    off_roster = sorted(trained)[0]  # judged, but not enrolled: must not appear
    roster = [*sorted(trained - {off_roster}), "dr-enrolled-never-judged"]
    run_id = _train(world, tokenizer, tmp_path / "home", judgments, config, roster)

    client = MlflowClient(uri)
    for artifact in ("raters/flip_rates.json", "raters/accuracies.json"):
        table = json.loads(Path(client.download_artifacts(run_id, artifact, str(tmp_path))).read_text())
        assert list(table) == roster
        assert table["dr-enrolled-never-judged"] is None  # "no data": present because enrolled
        assert all(isinstance(table[c], float) for c in roster[:-1])
    data = client.get_run(run_id).data
    assert not [n for n in [*data.params, *data.metrics, *data.tags] if any(c in n for c in trained)]
    held = _everything_held(tmp_path, artifacts)
    assert not [path for path, content in held.items() if off_roster.encode() in content]
