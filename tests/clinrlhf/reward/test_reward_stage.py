"""The pipeline's reward stage holds patients out, then logs what a compliance officer reads: held-out
accuracy (overall and by subgroup), calibration, agreement with the true utility and the unit; the
rater accuracies the loss was weighted with stay unpublished under the patient unit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
import torch
from mlflow.tracking import MlflowClient
from transformers import PreTrainedTokenizerFast

from clinrlhf.pipeline import stages
from clinrlhf.policy import build_policy
from clinrlhf.reward.config import RewardConfig
from clinrlhf.reward.evaluate import fresh_scenarios, split_by_patient
from clinrlhf.reward.pairs import pairs_from_judgments
from clinrlhf.reward.raters import ACCURACY_BOUNDS, with_rater_accuracies
from clinrlhf.reward.simulated import simulated_judgments
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.world import World

from .conftest import TINY

torch.set_num_threads(1)


@pytest.fixture()
def tracking_uri(tmp_path: Path) -> Iterator[str]:
    previous = mlflow.get_tracking_uri()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(previous)


def test_reward_stage_logs_held_out_evaluation_under_a_patient_unit(
    tracking_uri: str, tmp_path: Path, world: World, tokenizer: PreTrainedTokenizerFast
) -> None:
    judgments = simulated_judgments(world, generate_patients(world, 150, seed=4), reviewers_per_card=2)
    snapshot = stages.save_snapshot(judgments, tmp_path / "snapshots")
    config = with_rater_accuracies(  # as the pipeline does, from the judgments it trains on
        RewardConfig(epochs=1, privacy_unit="patient", units_per_batch=30, rater_weighting="dawid-skene"),
        judgments,
    )
    torch.manual_seed(0)
    sft = build_policy(TINY, tokenizer)
    result, pairs, trained = stages.reward_stage(
        world=world,
        judgments=judgments,
        sft_model=sft,
        tokenizer=tokenizer,
        config=config,
        snapshot=snapshot,
        deid_sha="deid",
        progress=lambda done, total: None,
        utility_scenarios=fresh_scenarios(world, n=20),
    )
    train, heldout = split_by_patient(pairs_from_judgments(judgments, world=world), 0.1, config.seed or 0)
    assert len(pairs) == len(train) + len(heldout) and heldout
    # Only the training side entered the mechanism: n units, and δ, count its patients alone.
    assert result.units == len({p.patient for p in train}) and result.delta == 1 / (10 * result.units)

    client = MlflowClient(tracking_uri)
    data = client.get_run(trained.run_id).data
    assert data.params["dp.privacy_unit"] == "patient" and data.params["reward.pairs"] == str(len(train))
    assert data.metrics["reward.heldout_pairs"] == len(heldout)
    for name in (
        "reward.heldout_accuracy",
        "reward.ece",
        "reward.utility_spearman",
        "reward.utility_pearson",
    ):
        assert name in data.metrics and data.metrics[name] == data.metrics[name]  # logged, not NaN
    assert 0.0 <= data.metrics["reward.ece"] <= 1.0
    assert {"reward.heldout_accuracy.sex.female", "reward.heldout_accuracy.sex.male"} <= set(data.metrics)
    assert any(k.startswith("reward.heldout_accuracy.age_band.") for k in data.metrics)
    table = json.loads(Path(client.download_artifacts(trained.run_id, "reward/reliability.json")).read_text())
    assert len(table["bins"]) == 10 and sum(b["count"] for b in table["bins"]) == 2 * len(heldout)

    # The per-clinician accuracies the loss used: returned, but under a user-level unit never published
    # (clinrlhf.reward.rater_release; tests/clinrlhf/pipeline/test_reward_release.py scans the store).
    assert data.params["reward.rater_weighting"] == "dawid-skene"
    accuracies = result.rater_accuracies
    assert set(accuracies) == {p.clinician for p in train}
    assert accuracies["dr-adversary"] == ACCURACY_BOUNDS[0]  # below chance: clamped to no signal
    assert all(ACCURACY_BOUNDS[0] <= a <= ACCURACY_BOUNDS[1] for a in accuracies.values())
    assert min(a for c, a in accuracies.items() if c != "dr-adversary") > 0.8
    assert not client.list_artifacts(trained.run_id, "raters")
    assert not [k for k in data.metrics if k.startswith("reward.rater_")]
