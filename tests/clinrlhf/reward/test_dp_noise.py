"""The DP noise is secret: two runs with the same logged params train different models, nothing
logged holds what the noise was drawn from, and only an explicit debugging mode (tagged, and not a
DP release) replays a run bit for bit. Real Opacus on a tiny GPT-2, a real MLflow store."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import mlflow
import pytest
import torch
from mlflow.tracking import MlflowClient
from transformers import GPT2Model, PreTrainedTokenizerFast

import privacy.dp.opacus_engine as engine
from clinrlhf.lineage.tracker import MLflowTracker
from clinrlhf.reward.config import RewardConfig
from clinrlhf.reward.ledger import PrivacyLedger
from clinrlhf.reward.pairs import PreferencePair
from clinrlhf.reward.trainer import train_reward
from privacy.dp import Budget
from privacy.dp.opacus_config import NOISE_TAG, DPConfig

CONFIG = RewardConfig(epochs=1, batch_size=20, learning_rate=1e-2, rater_buckets=None)


@pytest.fixture()
def tracking_uri(tmp_path: Path) -> Iterator[str]:
    previous = mlflow.get_tracking_uri()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(previous)


def _weights(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def _logged_run(
    pairs: list[PreferencePair],
    backbone: GPT2Model,
    tokenizer: PreTrainedTokenizerFast,
    config: RewardConfig,
    uri: str,
    ledger: PrivacyLedger | None = None,
) -> tuple[torch.Tensor, dict[str, dict]]:
    """Train under a real MLflow run; the weights and everything the run recorded."""
    with mlflow.start_run() as run:
        result = train_reward(
            pairs, backbone, tokenizer, config, MLflowTracker(), ledger=ledger, snapshot_sha256="ab" * 32
        )
    data = MlflowClient(uri).get_run(run.info.run_id).data
    return _weights(result.model), {"params": data.params, "tags": data.tags, "metrics": data.metrics}


def test_two_dp_runs_with_identical_logged_params_train_different_models(
    tracking_uri: str,
    tokenizer: PreTrainedTokenizerFast,
    train_pairs: list[PreferencePair],
    backbone: Callable[..., GPT2Model],
) -> None:
    first, logged_first = _logged_run(train_pairs[:60], backbone(), tokenizer, CONFIG, tracking_uri)
    second, logged_second = _logged_run(train_pairs[:60], backbone(), tokenizer, CONFIG, tracking_uri)
    assert logged_first["params"] == logged_second["params"]
    assert logged_first["tags"][NOISE_TAG] == logged_second["tags"][NOISE_TAG] == "secure"
    assert not torch.equal(first, second)


def test_nothing_logged_or_stored_holds_the_seed_the_noise_came_from(
    tracking_uri: str,
    tmp_path: Path,
    tokenizer: PreTrainedTokenizerFast,
    train_pairs: list[PreferencePair],
    backbone: Callable[..., GPT2Model],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    drawn: list[int] = []
    real = engine._secret_seed  # observed, not replaced: the run still draws from the OS's CSPRNG

    def observed() -> int:
        drawn.append(real())
        return drawn[-1]

    monkeypatch.setattr(engine, "_secret_seed", observed)
    ledger = PrivacyLedger(tmp_path / "ledger.json", Budget(100.0, 1e-3))
    secure, logged = _logged_run(train_pairs[:60], backbone(), tokenizer, CONFIG, tracking_uri, ledger)
    assert len(drawn) == 1
    recorded = json.dumps(logged, default=str) + (tmp_path / "ledger.json").read_text()
    for spelling in (str(drawn[0]), hex(drawn[0])[2:], str(drawn[0] - 2**64)):
        assert spelling not in recorded
    assert "seed" not in (tmp_path / "ledger.json").read_text()  # the ledger's label names no seed
    # Replaying from the logs alone (the public seed in the reproducible mode) misses the model ...
    replay = RewardConfig(
        epochs=1,
        batch_size=20,
        learning_rate=1e-2,
        rater_buckets=None,
        seed=0,
        dp=DPConfig(reproducible_noise=True),
    )
    assert int(logged["params"]["reward.seed"]) == replay.seed
    replayed = _weights(train_reward(train_pairs[:60], backbone(), tokenizer, replay).model)
    assert not torch.equal(replayed, secure)
    # ... while the unlogged seed alone reproduces it: it is the only randomness the logs lack.
    # (The charged run was calibrated at the ledger's δ; so is this one, without charging again.)
    monkeypatch.setattr(engine, "_secret_seed", lambda: drawn[0])
    at_ledger_delta = replace(CONFIG, dp=replace(CONFIG.dp, target_delta=ledger.delta))
    assert torch.equal(
        _weights(train_reward(train_pairs[:60], backbone(), tokenizer, at_ledger_delta).model), secure
    )


def test_reproducible_noise_replays_a_run_bit_for_bit_and_says_so_in_mlflow(
    tracking_uri: str,
    tokenizer: PreTrainedTokenizerFast,
    train_pairs: list[PreferencePair],
    backbone: Callable[..., GPT2Model],
) -> None:
    debug = RewardConfig(
        epochs=1,
        batch_size=20,
        learning_rate=1e-2,
        rater_buckets=None,
        seed=0,
        dp=DPConfig(reproducible_noise=True),
    )
    first, logged = _logged_run(train_pairs[:60], backbone(), tokenizer, debug, tracking_uri)
    second, _ = _logged_run(train_pairs[:60], backbone(), tokenizer, debug, tracking_uri)
    assert torch.equal(first, second)
    assert logged["tags"][NOISE_TAG] == "reproducible"
    assert logged["params"]["dp.reproducible_noise"] == "True"


def test_a_non_private_run_carries_no_noise_tag(
    tracking_uri: str,
    tokenizer: PreTrainedTokenizerFast,
    train_pairs: list[PreferencePair],
    backbone: Callable[..., GPT2Model],
) -> None:
    baseline = RewardConfig(epochs=1, batch_size=20, rater_buckets=None, dp=DPConfig(enabled=False))
    _, logged = _logged_run(train_pairs[:40], backbone(), tokenizer, baseline, tracking_uri)
    assert NOISE_TAG not in logged["tags"]


def test_opacus_secure_rng_warning_reaches_the_user(
    tokenizer: PreTrainedTokenizerFast,
    train_pairs: list[PreferencePair],
    backbone: Callable[..., GPT2Model],
) -> None:
    with pytest.warns(UserWarning, match="Secure RNG turned off"):
        train_reward(train_pairs[:40], backbone(), tokenizer, CONFIG)
