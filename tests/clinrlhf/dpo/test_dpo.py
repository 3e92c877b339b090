"""DPO: the loss against hand-computed values, a tiny run that learns the preferences, and DP mode
reporting the ε its accountant does, charged to the privacy ledger."""

from __future__ import annotations

import math

import pytest
import torch

from clinrlhf.dpo.config import DPOConfig
from clinrlhf.dpo.loss import IGNORE, dpo_loss, log_ratio_margin, sequence_logps
from clinrlhf.dpo.trainer import encode_pairs, reference_logps, train_dpo
from clinrlhf.lineage.tracker import RecordingTracker
from clinrlhf.policy.model import PolicyConfig, build_policy
from clinrlhf.policy.tokenizer import build_tokenizer
from clinrlhf.reward.ledger import Budget, PrivacyLedger
from clinrlhf.reward.pairs import PreferencePair
from clinrlhf.text.prompt import vocabulary_corpus
from clinrlhf.world.world import load_world
from privacy.dp.opacus_config import NOISE_TAG, DPConfig

torch.set_num_threads(1)


def test_loss_matches_the_hand_computed_value():
    # margin = (-1 - -2) - (-3 - -2.5) = 1 + 0.5 = 1.5; β = 0.5 -> -log σ(0.75)
    args = [torch.tensor([x]) for x in (-1.0, -3.0, -2.0, -2.5)]
    assert float(log_ratio_margin(*args)) == pytest.approx(1.5)
    assert float(dpo_loss(*args, beta=0.5)) == pytest.approx(math.log1p(math.exp(-0.75)))
    # Policy equal to the reference: the loss is log 2 whatever β.
    same = [torch.tensor([-1.0, -4.0])] * 2
    assert dpo_loss(same[0], same[1], same[0], same[1], beta=3.0).tolist() == pytest.approx([math.log(2)] * 2)
    with pytest.raises(ValueError):
        dpo_loss(*args, beta=0.0)


def test_sequence_logps_sum_only_the_labelled_tokens():
    logits = torch.log(torch.tensor([[[0.5, 0.5], [0.25, 0.75], [0.9, 0.1]]]))  # (1, T=3, V=2)
    labels = torch.tensor([[IGNORE, 1, 0]])  # predicts token 1 from position 0, token 0 from position 1
    assert float(sequence_logps(logits, labels)) == pytest.approx(math.log(0.5) + math.log(0.25))


@pytest.fixture(scope="module")
def setup():
    world = load_world()
    tokenizer = build_tokenizer(vocabulary_corpus(world))
    torch.manual_seed(0)
    model = build_policy(PolicyConfig(), tokenizer).eval()
    drugs = sorted(world.drugs)
    pairs = []
    for i, target in enumerate(sorted(world.targets)):
        prompt = f"sex female age 50-54 ; problems none ; allergies none ; labs egfr normal potassium normal ; treat {target} ->"
        good, bad = drugs[i % len(drugs)], drugs[(i + 3) % len(drugs)]
        chosen, rejected = (f"{d} {world.drugs[d].sig}" for d in (good, bad))
        pairs += [PreferencePair(prompt, chosen, rejected, f"c{k}", f"p{i}", "clinician") for k in range(8)]
    return tokenizer, model, pairs


def _margin(model, tokenizer, sft, pairs) -> float:
    enc = encode_pairs(tokenizer, pairs)
    now, ref = reference_logps(model, enc), reference_logps(sft, enc)
    return float(log_ratio_margin(now[:, 0], now[:, 1], ref[:, 0], ref[:, 1]).mean())


def test_a_tiny_run_raises_the_chosen_over_rejected_margin(setup):
    tokenizer, sft, pairs = setup
    before = [p.detach().clone() for p in sft.parameters()]
    result = train_dpo(pairs, sft, tokenizer, DPOConfig(epochs=6, batch_size=16, learning_rate=3e-3))
    assert _margin(result.policy, tokenizer, sft, pairs) > 2.0
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    assert all(torch.equal(a, b) for a, b in zip(before, sft.parameters(), strict=True))  # reference kept


def test_dp_mode_reports_the_accountants_epsilon_and_charges_the_ledger(setup, tmp_path):
    tokenizer, sft, pairs = setup
    ledger = PrivacyLedger(tmp_path / "ledger.json", Budget(epsilon=10.0, delta=1e-3))
    config = DPOConfig(dp=DPConfig(target_epsilon=4.0), epochs=2, batch_size=16, learning_rate=3e-3)
    result = train_dpo(pairs, sft, tokenizer, config, ledger=ledger, snapshot_sha256="ab" * 32)
    assert result.epsilon == pytest.approx(result.accountant_epsilon, rel=1e-9)
    assert result.epsilon == pytest.approx(4.0, rel=0.05)
    assert result.delta == ledger.delta == 1e-3  # calibrated at the deployment's δ, not 1/(10 n)
    (entry,) = ledger.entries("ab" * 32)
    assert entry.epsilon == result.epsilon and entry.steps == result.steps and entry.label.startswith("dpo")
    assert result.noise_multiplier > 0
    # The policy is a plain model again (Conv1D restored, no Opacus state) and still scores pairs.
    assert not any(hasattr(p, "grad_sample") for p in result.policy.parameters())
    assert math.isfinite(_margin(result.policy, tokenizer, sft, pairs))


def test_dp_noise_is_secret_unless_reproducible_noise_is_asked_for_and_tagged(setup):
    """The same config twice: different policies under the default CSPRNG-seeded noise, the same
    policy under the debugging mode; each run says which in its clinrlhf.dp_noise tag."""
    tokenizer, sft, pairs = setup

    def weights(config: DPOConfig) -> tuple[torch.Tensor, dict[str, str]]:
        tracker = RecordingTracker()
        result = train_dpo(pairs[:32], sft, tokenizer, config, tracker=tracker)
        return torch.cat([p.detach().flatten() for p in result.policy.parameters()]), tracker.tags

    secure = DPOConfig(dp=DPConfig(), epochs=1, batch_size=16, learning_rate=3e-3)
    (first, tags), (second, _) = weights(secure), weights(secure)
    assert tags == {NOISE_TAG: "secure"} and not torch.equal(first, second)
    debug = DPOConfig(dp=DPConfig(reproducible_noise=True), epochs=1, batch_size=16, learning_rate=3e-3)
    (first, tags), (second, _) = weights(debug), weights(debug)
    assert tags == {NOISE_TAG: "reproducible"} and torch.equal(first, second)
