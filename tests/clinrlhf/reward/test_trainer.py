"""DP reward training, end to end on a tiny GPT-2: it learns, it spends what it says, it logs what
compliance reads (CONTRACT, MLflow section), and it hands PPO a clean model."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
from transformers import GPT2Model, PreTrainedTokenizerFast

from clinrlhf.lineage.tracker import RecordingTracker
from clinrlhf.reward.config import RewardConfig
from clinrlhf.reward.encode import encode_pairs, pair_rewards
from clinrlhf.reward.evaluate import evaluate_reward, score_texts
from clinrlhf.reward.pairs import PreferencePair
from clinrlhf.reward.result import CONTRACT_PARAMS, RewardResult
from clinrlhf.reward.trainer import train_reward
from privacy.dp import epsilon_for
from privacy.dp.opacus_config import DPConfig


def test_contract_names_are_spelled_as_in_the_contract() -> None:
    assert set(CONTRACT_PARAMS) == {
        "dp.noise_multiplier",
        "dp.sample_rate",
        "dp.steps",
        "dp.delta",
        "dp.max_grad_norm",
        "dp.accountant",
        "dp.privacy_unit",
    }


# A randomly initialised trunk has nothing worth freezing, so every block trains here.
# Replayable noise: the held-out accuracy floor below is a claim about one draw of the noise.
CONFIG = RewardConfig(
    epochs=4,
    batch_size=50,
    learning_rate=1e-2,
    seed=0,
    trainable_blocks=None,
    dp=DPConfig(reproducible_noise=True),
)


@dataclass
class Run:
    result: RewardResult
    tracker: RecordingTracker
    progress: list[tuple[int, int]]
    before: dict[str, torch.Tensor]
    rng_before: torch.Tensor
    rng_after: torch.Tensor


@pytest.fixture(scope="module")
def run(
    tokenizer: PreTrainedTokenizerFast, train_pairs: list[PreferencePair], backbone: Callable[..., GPT2Model]
) -> Run:
    trunk = backbone()
    before = {k: v.clone() for k, v in trunk.state_dict().items()}
    tracker, progress = RecordingTracker(), []
    rng_before = torch.get_rng_state()
    result = train_reward(
        train_pairs,
        trunk,
        tokenizer,
        CONFIG,
        tracker,
        progress=lambda done, total: progress.append((done, total)),
    )
    return Run(result, tracker, progress, before, rng_before, torch.get_rng_state())


def test_training_under_dp_changes_the_backbone(run: Run) -> None:
    after = run.result.model.backbone.state_dict()
    changed = [k for k, v in run.before.items() if k in after and not torch.equal(after[k], v)]
    assert "wte.weight" in changed and "h.0.ln_1.weight" in changed


def test_reward_model_beats_chance_on_held_out_pairs(
    run: Run, tokenizer: PreTrainedTokenizerFast, heldout_pairs: list[PreferencePair]
) -> None:
    metrics = evaluate_reward(run.result.model, tokenizer, heldout_pairs)
    assert metrics["accuracy"] > 0.65
    assert 0.0 <= metrics["ece"] < 0.5


def test_epsilon_is_within_budget_and_recomputable_from_the_logged_params(run: Run) -> None:
    r, params = run.result, run.tracker.params
    assert r.epsilon <= CONFIG.dp.target_epsilon
    recomputed = epsilon_for(
        float(params["dp.noise_multiplier"]),
        float(params["dp.sample_rate"]),
        int(params["dp.steps"]),
        float(params["dp.delta"]),
        params["dp.accountant"],
    )
    assert recomputed == r.epsilon == r.metrics["dp.epsilon"]
    assert r.epsilon_rdp >= r.epsilon


def test_steps_history_and_accountant_agree(run: Run, train_pairs: list[PreferencePair]) -> None:
    r = run.result
    assert r.steps == len(r.history) == round(CONFIG.epochs / r.sample_rate)
    assert {(h["noise_multiplier"], h["sample_rate"]) for h in r.history} == {
        (r.noise_multiplier, r.sample_rate)
    }
    assert (
        epsilon_for(r.history[0]["noise_multiplier"], r.history[0]["sample_rate"], len(r.history), r.delta)
        == r.epsilon
    )
    assert r.delta == 1 / (10 * len(train_pairs)) < 1 / len(train_pairs)


def test_contract_params_and_metrics_are_logged(run: Run) -> None:
    assert set(run.result.params) >= set(CONTRACT_PARAMS) and set(run.tracker.params) >= set(CONTRACT_PARAMS)
    assert (
        run.tracker.params["dp.accountant"] == "prv" and run.tracker.params["dp.privacy_unit"] == "judgment"
    )
    final = run.tracker.metrics[-1][1]
    assert {"dp.epsilon", "dp.epsilon_rdp", "reward.train_loss", "reward.train_accuracy"} <= set(final)
    assert len(run.tracker.series("reward.loss")) == run.result.steps


def test_progress_reports_every_step_up_to_the_total(run: Run) -> None:
    assert run.progress[-1] == (run.result.steps, run.result.steps)
    assert [d for d, _ in run.progress] == list(range(1, run.result.steps + 1))


def test_guarantee_describes_the_run(run: Run) -> None:
    guarantee = run.result.guarantee
    assert guarantee is not None and guarantee.steps == run.result.steps
    assert "one clinician's judgment of one card" in guarantee.describe()


def test_returned_model_is_clean_for_ppo(
    run: Run, tokenizer: PreTrainedTokenizerFast, heldout_pairs: list[PreferencePair]
) -> None:
    model = run.result.model
    assert not model.training
    for module in model.modules():
        assert not module._forward_hooks and not module._backward_hooks and not module._forward_pre_hooks
    for p in model.parameters():
        assert not hasattr(p, "grad_sample") and not hasattr(p, "summed_grad") and p.grad is None
    value_model = copy.deepcopy(model)  # PPO starts its value model as a copy
    pairs = heldout_pairs[:8]
    enc = encode_pairs(tokenizer, pairs)
    with torch.no_grad():
        packed = pair_rewards(value_model, enc.input_ids, enc.lengths)
    scored = score_texts(model, tokenizer, [p.prompt for p in pairs], [p.chosen for p in pairs])
    torch.testing.assert_close(scored, packed[:, 0], atol=1e-5, rtol=1e-5)


def test_global_rng_is_left_as_found(run: Run) -> None:
    assert torch.equal(run.rng_before, run.rng_after)


def test_non_private_baseline_reports_no_guarantee(
    tokenizer: PreTrainedTokenizerFast,
    train_pairs: list[PreferencePair],
    heldout_pairs: list[PreferencePair],
    backbone: Callable[..., GPT2Model],
) -> None:
    tracker = RecordingTracker()
    result = train_reward(
        train_pairs,
        backbone(),
        tokenizer,
        RewardConfig(
            dp=DPConfig(enabled=False), epochs=3, batch_size=50, learning_rate=1e-2, trainable_blocks=None
        ),
        tracker,
    )
    assert result.epsilon == float("inf") and result.noise_multiplier == 0.0 and result.guarantee is None
    assert tracker.params["dp.enabled"] == "False" and "dp.noise_multiplier" not in tracker.params
    assert evaluate_reward(result.model, tokenizer, heldout_pairs)["accuracy"] > 0.7


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("grad_sample_mode", "ghost", "ghost clipping cannot"),  # with privacy_unit="patient", below
        ("max_pairs_per_unit", 0, "max_pairs_per_unit"),
        ("units_per_batch", 0, "units_per_batch"),
        ("privacy_unit", "hospital", "privacy_unit"),
        ("grad_sample_mode", "functorch", "grad_sample_mode"),
        ("epochs", 0, "epochs"),
    ],
)
def test_invalid_configs_are_refused_with_a_reason(field: str, value: object, error: str) -> None:
    unit = {"privacy_unit": "patient"} if (field, value) == ("grad_sample_mode", "ghost") else {}
    with pytest.raises(ValueError, match=error):
        RewardConfig(**{field: value, **unit})  # type: ignore[arg-type]


def test_opacus_secure_mode_without_torchcsprng_fails_clearly(
    tokenizer: PreTrainedTokenizerFast, train_pairs: list[PreferencePair], backbone: Callable[..., GPT2Model]
) -> None:
    try:
        import torchcsprng  # noqa: F401
    except ImportError:
        with pytest.raises(RuntimeError, match="torchcsprng"):
            train_reward(train_pairs[:20], backbone(), tokenizer, RewardConfig(dp=DPConfig(secure_mode=True)))
    else:
        pytest.skip("torchcsprng is installed")


def test_no_pairs_is_an_error(tokenizer: PreTrainedTokenizerFast, backbone: Callable[..., GPT2Model]) -> None:
    with pytest.raises(ValueError, match="no preference pairs"):
        train_reward([], backbone(), tokenizer)
