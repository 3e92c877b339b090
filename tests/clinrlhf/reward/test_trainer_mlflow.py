"""What a compliance officer reads back from a real MLflow store after a DP reward run."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import mlflow
import pytest
from dp_accounting import GaussianDpEvent, PoissonSampledDpEvent, SelfComposedDpEvent
from dp_accounting.pld import PLDAccountant
from mlflow.tracking import MlflowClient
from transformers import GPT2Model, PreTrainedTokenizerFast

from clinrlhf.lineage.tracker import MLflowTracker
from clinrlhf.reward.config import RewardConfig
from clinrlhf.reward.pairs import PreferencePair
from clinrlhf.reward.result import CONTRACT_PARAMS
from clinrlhf.reward.trainer import train_reward
from privacy.dp import epsilon_for


@pytest.fixture()
def tracking_uri(tmp_path: Path) -> Iterator[str]:
    previous = mlflow.get_tracking_uri()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(previous)


def test_logged_params_let_anyone_recompute_the_logged_epsilon(
    tracking_uri: str,
    tokenizer: PreTrainedTokenizerFast,
    train_pairs: list[PreferencePair],
    backbone: Callable[..., GPT2Model],
) -> None:
    config = RewardConfig(epochs=2, batch_size=20, learning_rate=1e-2)
    with mlflow.start_run() as run:
        result = train_reward(train_pairs[:100], backbone(), tokenizer, config, MLflowTracker())
    stored = MlflowClient(tracking_uri).get_run(run.info.run_id).data
    assert set(CONTRACT_PARAMS) <= set(stored.params)
    assert stored.params["dp.privacy_unit"] == "judgment" and stored.params["dp.accountant"] == "prv"
    noise, rate = float(stored.params["dp.noise_multiplier"]), float(stored.params["dp.sample_rate"])
    steps, delta = int(stored.params["dp.steps"]), float(stored.params["dp.delta"])
    assert (noise, rate, steps, delta) == (
        result.noise_multiplier,
        result.sample_rate,
        result.steps,
        result.delta,
    )
    assert stored.metrics["dp.epsilon"] == epsilon_for(noise, rate, steps, delta) == result.epsilon
    assert stored.metrics["dp.epsilon"] <= config.dp.target_epsilon < stored.metrics["dp.epsilon_rdp"]
    # An accountant that shares no code with Opacus reads the same mechanism off the store.
    event = SelfComposedDpEvent(PoissonSampledDpEvent(rate, GaussianDpEvent(noise)), steps)
    pld = PLDAccountant(value_discretization_interval=1e-3).compose(event).get_epsilon(delta)
    assert pld == pytest.approx(stored.metrics["dp.epsilon"], rel=0.05)
    history = MlflowClient(tracking_uri).get_metric_history(run.info.run_id, "reward.loss")
    assert [m.step for m in history] == list(range(1, steps + 1))
