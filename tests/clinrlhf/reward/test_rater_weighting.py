"""Reliability-aware reward training: each clinician's Dawid–Skene accuracy a as a known label flip,
-log[a·σ(Δ) + (1 - a)·σ(-Δ)], under every Opacus mode and privacy unit."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import pytest
import torch
from transformers import GPT2Model, PreTrainedTokenizerFast

from clinrlhf.feedback.judgment import Judgment
from clinrlhf.lineage.tracker import RecordingTracker
from clinrlhf.reward.config import RewardConfig
from clinrlhf.reward.evaluate import evaluate_reward
from clinrlhf.reward.loss import BradleyTerryLoss, bradley_terry_loss
from clinrlhf.reward.pairs import PreferencePair, pairs_from_judgments
from clinrlhf.reward.raters import (
    ACCURACY_BOUNDS,
    dawid_skene_accuracies,
    pair_accuracies,
    with_rater_accuracies,
)
from clinrlhf.reward.trainer import RATER_ACCURACIES_ARTIFACT, prepare_training, train_reward
from privacy.dp.opacus_config import DPConfig

torch.set_num_threads(1)
LOW, HIGH = ACCURACY_BOUNDS


def _inputs(n: int = 23) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    chosen, rejected = (3 * torch.randn(n, generator=g, dtype=torch.float64) for _ in range(2))
    margin = torch.rand(n, generator=g, dtype=torch.float64)
    flips = torch.randn(n, generator=g, dtype=torch.float64) - 2.0
    return chosen, rejected, margin, flips


@pytest.mark.parametrize("with_flips", [False, True])
@pytest.mark.parametrize("center", [0.0, 0.01])
def test_an_accuracy_of_one_is_the_loss_without_it_exactly(with_flips: bool, center: float) -> None:
    chosen, rejected, margin, flips = _inputs()
    flip_logits = flips if with_flips else None
    ones = torch.ones_like(chosen)
    for reduction in ("none", "mean", "sum"):
        plain = bradley_terry_loss(chosen, rejected, margin, center, reduction, flip_logits)  # type: ignore[arg-type]
        weighted = bradley_terry_loss(chosen, rejected, margin, center, reduction, flip_logits, ones)  # type: ignore[arg-type]
        assert torch.equal(weighted, plain), reduction
    # ...and its gradient, through the criterion Opacus calls.
    rewards = torch.stack([chosen, rejected], 1).requires_grad_()
    criterion = BradleyTerryLoss(center)
    (plain_grad,) = torch.autograd.grad(criterion(rewards, margin, flip_logits), rewards)
    (weighted_grad,) = torch.autograd.grad(criterion(rewards, margin, flip_logits, ones), rewards)
    assert torch.equal(weighted_grad, plain_grad)


@pytest.mark.parametrize("with_flips", [False, True])
def test_matches_the_noisy_label_likelihood_per_pair(with_flips: bool) -> None:
    """-log[a·P(Δ) + (1 - a)·(1 - P(Δ))], P(Δ) = σ(Δ), or (1 - f)·σ(Δ) + f·σ(-Δ) with a learned flip f:
    the known flip and the learned one compose as two independent label flips."""
    chosen, rejected, margin, flips = _inputs()
    accuracy = 0.5 + 0.5 * torch.rand(
        chosen.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64
    )
    got = bradley_terry_loss(chosen, rejected, margin, 0.0, "none", flips if with_flips else None, accuracy)
    want = []
    rows = zip(
        chosen.tolist(), rejected.tolist(), margin.tolist(), flips.tolist(), accuracy.tolist(), strict=True
    )
    for c, r, m, logit, a in rows:
        p = 1.0 / (1.0 + math.exp(-(c - r - m)))
        if with_flips:
            f = 1.0 / (1.0 + math.exp(-logit))
            p = (1.0 - f) * p + f * (1.0 - p)
        want.append(-math.log(a * p + (1.0 - a) * (1.0 - p)))
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64))


def test_a_confidently_wrong_pair_pulls_less_from_a_less_reliable_rater() -> None:
    """Δ = -6: the model is sure the label is wrong. Plain Bradley–Terry pulls with |∂L/∂Δ| ≈ 1; a
    rater of accuracy a pulls less the lower a, and at chance not at all. A pair the model already
    agrees with (Δ = +6) is barely affected."""
    delta = torch.tensor([-6.0, 6.0], dtype=torch.float64, requires_grad=True)
    zero = torch.zeros(2, dtype=torch.float64)

    def grad(accuracy: float | None) -> torch.Tensor:
        a = None if accuracy is None else torch.full((2,), accuracy, dtype=torch.float64)
        (g,) = torch.autograd.grad(bradley_terry_loss(delta, zero, reduction="sum", accuracy=a), delta)
        return g.abs()

    plain, high, low, chance = grad(None), grad(0.95), grad(0.7), grad(0.5)
    assert plain[0] > 0.99
    assert plain[0] > high[0] > low[0] > chance[0]
    assert low[0] < 0.5 * plain[0] and chance[0] < 1e-12
    assert float(high[1]) == pytest.approx(float(plain[1]), abs=0.05)
    # The loss of a confidently wrong pair is capped at -log(1 - a) instead of growing with |Δ|.
    capped = bradley_terry_loss(torch.tensor([-50.0]), torch.zeros(1), accuracy=torch.tensor([0.9]))
    assert capped.item() == pytest.approx(-math.log(0.1), rel=1e-4)


def test_accuracies_are_clamped_and_raters_without_an_estimate_are_unweighted() -> None:
    pairs = [PreferencePair("p", "a", "b", c, "pt", "clinician") for c in ("adv", "good", "perfect", "new")]
    weights = pair_accuracies(pairs, {"adv": 0.05, "good": 0.9, "perfect": 1.0, "absent": 0.7})
    assert weights == {"adv": LOW, "good": 0.9, "perfect": HIGH, "new": 1.0}
    assert 0.5 < LOW < 0.51 and 0.99 < HIGH < 1.0


def _judgments(pairs: list[PreferencePair], shared: int) -> list[Judgment]:
    """Pairwise judgments of true pairs (chosen = concordant). dr-flip prefers the wrong response on
    every card it sees; dr-a and dr-b never do. The first `shared` cards are judged by all three (what
    Dawid–Skene learns accuracies from); then dr-flip judges two cards alone for each one that dr-a
    or dr-b judges alone, so the flipper gives most of the training pairs."""
    judgments = []
    for i, p in enumerate(pairs):
        if i < shared:
            raters = ["dr-flip", "dr-a", "dr-b"]
        else:
            raters = ["dr-flip"] if i % 3 else [("dr-a", "dr-b")[i % 2]]
        for r in raters:
            judgments.append(
                Judgment(
                    "pairwise",
                    f"card-{i}",
                    p.patient,
                    r,
                    p.prompt,
                    (p.chosen, p.rejected),
                    preferred=1 if r == "dr-flip" else 0,
                )
            )
    return judgments


def test_dawid_skene_accuracies_come_from_the_judgments(train_pairs: list[PreferencePair]) -> None:
    judgments = _judgments(train_pairs[:90], shared=60)
    accuracies = dawid_skene_accuracies(judgments)
    assert accuracies["dr-flip"] < 0.05 and min(accuracies["dr-a"], accuracies["dr-b"]) > 0.95
    off = RewardConfig()
    assert with_rater_accuracies(off, judgments) is off  # "none" estimates nothing
    on = with_rater_accuracies(RewardConfig(rater_weighting="dawid-skene"), judgments)
    assert on.rater_accuracies == accuracies
    given = RewardConfig(rater_weighting="dawid-skene", rater_accuracies={"dr-a": 0.8})
    assert with_rater_accuracies(given, judgments) is given  # given accuracies are kept


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"rater_weighting": "majority"}, "rater_weighting"),
        ({"rater_accuracies": {"dr-a": 0.9}}, "only read with rater_weighting 'dawid-skene'"),
        ({"rater_weighting": "dawid-skene", "rater_accuracies": {"dr-a": 1.2}}, r"in \[0, 1\]"),
        ({"rater_weighting": "dawid-skene", "rater_accuracies": {"dr-a": math.nan}}, r"in \[0, 1\]"),
    ],
)
def test_invalid_weighting_settings_are_refused(changes: dict, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        RewardConfig(**changes)


def test_weighting_without_accuracies_is_refused_before_training(
    train_pairs: list[PreferencePair], tokenizer: PreTrainedTokenizerFast, backbone: Callable[..., GPT2Model]
) -> None:
    with pytest.raises(ValueError, match="needs rater_accuracies"):
        train_reward(train_pairs[:10], backbone(), tokenizer, RewardConfig(rater_weighting="dawid-skene"))


def test_under_dp_the_weighted_model_ranks_held_out_pairs_no_worse_than_plain_training(
    train_pairs: list[PreferencePair],
    heldout_pairs: list[PreferencePair],
    tokenizer: PreTrainedTokenizerFast,
    backbone: Callable[..., GPT2Model],
) -> None:
    """One rater flips every label and gives most of the pairs. Plain DP training follows the
    majority of pairs, reversed; with the flipper's Dawid–Skene accuracy (clamped to just above ½)
    its pairs carry almost nothing and the honest ones set the reward. Learned flip rates are off in
    both runs, so the difference is the weighting's."""
    judgments = _judgments(train_pairs[:300], shared=60)
    pairs = pairs_from_judgments(judgments)  # 420: 220 flipped, 200 true
    base = RewardConfig(
        epochs=3,
        batch_size=50,
        learning_rate=1e-2,
        seed=0,
        rater_buckets=None,
        trainable_blocks=None,
        dp=DPConfig(accountant="rdp", reproducible_noise=True),  # rdp: it only sets σ here (PRV doubles
        privacy_unit="pair",  # the time); reproducible: the seeds below are replayable, as measured
    )
    weighted_config = with_rater_accuracies(
        dataclasses.replace(base, rater_weighting="dawid-skene"), judgments
    )
    tracker = RecordingTracker()
    plain = train_reward(pairs, backbone(), tokenizer, base)
    weighted = train_reward(pairs, backbone(), tokenizer, weighted_config, tracker)

    assert weighted.rater_accuracies["dr-flip"] == LOW and weighted.rater_accuracies["dr-a"] > 0.95
    assert weighted.epsilon == plain.epsilon <= base.dp.target_epsilon  # same mechanism, same budget
    assert weighted.params["reward.rater_weighting"] == "dawid-skene"
    # Returned, not logged: keyed by the pairs' clinicians they would say who took part; the caller
    # releases them keyed by a roster (clinrlhf.reward.rater_release).
    assert RATER_ACCURACIES_ARTIFACT not in tracker.dicts
    assert not [k for _, m in tracker.metrics for k in m if k.startswith("reward.rater_accuracy.")]
    # Against the true labels (seeds 0, 1, 2: plain 0.41, 0.50, 0.38; weighted 0.59, 0.56, 0.63).
    plain_accuracy = evaluate_reward(plain.model, tokenizer, heldout_pairs[:150])["accuracy"]
    weighted_accuracy = evaluate_reward(weighted.model, tokenizer, heldout_pairs[:150])["accuracy"]
    assert weighted_accuracy >= plain_accuracy
    assert weighted_accuracy > 0.55  # it learned the true preference, not just less of the wrong one


def _weighted_config(pairs: list[PreferencePair], **changes: object) -> RewardConfig:
    clinicians = sorted({p.clinician for p in pairs})
    accuracies = {c: 0.55 + 0.4 * i / max(1, len(clinicians) - 1) for i, c in enumerate(clinicians)}
    return RewardConfig(rater_weighting="dawid-skene", rater_accuracies=accuracies, **changes)  # type: ignore[arg-type]


def test_ghost_clipping_and_hooks_train_the_same_weighted_model(
    train_pairs: list[PreferencePair], tokenizer: PreTrainedTokenizerFast, backbone: Callable[..., GPT2Model]
) -> None:
    """Ghost clipping calls the criterion with reduction "none" and every argument passed through:
    same seed, same batches and noise, so the weighted per-pair losses must give the same update."""
    pairs = train_pairs[:60]
    config = _weighted_config(
        pairs,
        epochs=1,
        batch_size=20,
        learning_rate=1e-2,
        seed=7,
        trainable_blocks=None,
        dp=DPConfig(accountant="rdp", reproducible_noise=True),  # the same noise in both runs
        privacy_unit="pair",  # ghost clipping clips pairs only
    )
    hooks = train_reward(pairs, backbone(seed=1), tokenizer, config)
    ghost = train_reward(
        pairs, backbone(seed=1), tokenizer, dataclasses.replace(config, grad_sample_mode="ghost")
    )
    h, g = hooks.model.state_dict(), ghost.model.state_dict()
    for key in h:
        torch.testing.assert_close(g[key], h[key], atol=1e-4, rtol=1e-3, msg=lambda m, key=key: f"{key}: {m}")
    assert hooks.rater_accuracies == ghost.rater_accuracies == config.rater_accuracies


@pytest.mark.parametrize("unit", ["clinician", "patient"])
@pytest.mark.filterwarnings("ignore:Full backward hook")
def test_a_unit_step_sums_the_weighted_pair_gradients(
    unit: str,
    train_pairs: list[PreferencePair],
    tokenizer: PreTrainedTokenizerFast,
    backbone: Callable[..., GPT2Model],
) -> None:
    """Noise off and no clipping: one step over every unit sums exactly the autograd gradient of the
    weighted loss (the per-pair gradients Opacus' hooks see carry each rater's accuracy)."""
    pairs = [
        dataclasses.replace(p, patient=f"pt-{i // 4}", clinician=f"clin-{i % 3}")
        for i, p in enumerate(train_pairs[:24])
    ]
    config = _weighted_config(pairs, epochs=1, privacy_unit=unit, units_per_batch=8, rows_per_pass=5)
    torch.manual_seed(0)
    run = prepare_training(pairs, backbone(), tokenizer, config)
    enc, everyone = run.encoded, torch.arange(len(run.units))
    assert sorted(set(enc.accuracy.tolist())) == pytest.approx(sorted(config.rater_accuracies.values()))
    params = [p for p in run.trained.parameters() if p.requires_grad]
    run.module.disable_hooks()
    expected = [torch.zeros_like(p) for p in params]
    for rows in run.units.rows:
        rewards, flips = run.trained(enc.input_ids[rows], enc.lengths[rows], enc.raters[rows])
        loss = run.criterion(rewards, None, flips, enc.accuracy[rows]) * len(rows)
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        for total, g in zip(expected, grads, strict=True):
            if g is not None:
                total += g
    run.module.enable_hooks()
    run.optimizer.max_grad_norm, run.optimizer.noise_multiplier = 1e6, 0.0
    run.step([everyone])
    for p, total in zip(params, expected, strict=True):
        torch.testing.assert_close(p.summed_grad, total, atol=2e-5, rtol=1e-4)
