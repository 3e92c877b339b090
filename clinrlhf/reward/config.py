"""Reward-model training settings.

The measurements behind the defaults (tuned at ε = 8 on the simulated panel's judgments) are in
docs/results.md ("How the defaults were chosen").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from privacy.dp import PRIVACY_UNITS, PrivacyUnit
from privacy.dp.opacus_config import DPConfig, nest_legacy_dp

GradSampleMode = Literal["hooks", "ghost"]
RaterWeighting = Literal["none", "dawid-skene"]
RATER_WEIGHTINGS: tuple[RaterWeighting, ...] = ("none", "dawid-skene")


@dataclass(frozen=True)
class RewardConfig:
    epochs: int = 10
    """Passes over the pairs (in expectation: DP batches are Poisson samples)."""
    batch_size: int = 256
    """Expected (logical) batch size; each pair joins each batch with probability batch_size / n."""
    learning_rate: float = 3e-3
    """AdamW learning rate (constant: at these budgets the model is still learning at the last step)."""
    weight_decay: float = 0.0
    """AdamW decoupled weight decay."""
    privacy_unit: PrivacyUnit = "judgment"
    """What neighbouring datasets differ by. "judgment" (the default): one clinician's judgment of
    one card, i.e. every pair that one review yields (a pairwise, a rating and a correction over the
    same texts; k-1 pairs from a card with k suggestions). "clinician" or "patient": all the pairs of
    one pseudonym. A grouped unit's pairs are bounded to `max_pairs_per_unit`, Poisson-sampled
    together (`units_per_batch`) and their gradient sum clipped as one (user-level DP-SGD,
    privacy.dp.units; docs/privacy.md states the guarantee). "pair": one pair is one row, sampled and
    clipped alone; the ε it reports is per pair, not per review."""
    max_pairs_per_unit: int = 32
    """Contribution bound of a clinician or patient: pairs beyond it are dropped before training (a
    seeded draw per unit). It bounds memory and one unit's weight among the others, not the
    sensitivity, which clipping already bounds. A patient has about 6 pairs in the pipeline, so 32
    drops almost none; a clinician has hundreds, so under "clinician" it trades data for speed."""
    units_per_batch: int = 64
    """Expected clinicians or patients per Poisson batch (capped at their number, where every step
    takes every unit). The sample rate q = 1/ceil(n_units / units_per_batch) depends on the number
    of units only, never on how many pairs each has."""
    rows_per_pass: int = 512
    """Under a clinician or patient unit, pairs per forward/backward pass: a batch of units is
    processed in passes of this many rows, their per-pair gradients summed per unit in between.
    Memory only; the mechanism is the same."""
    trainable_blocks: int | None = None
    """Train only the top k transformer blocks (plus the final norm and the head); None trains all.
    Under DP every trained coordinate adds noise, so a small trained subset often learns better at
    the same ε (Yu et al., 2022, https://arxiv.org/abs/2110.06500); with this 2-block backbone the
    top block alone underfits (docs/results.md), so all are trained."""
    use_margin: bool = False
    """Subtract each pair's margin inside the Bradley–Terry loss (rating judgments carry one)."""
    rater_buckets: int | None = 4096
    """Learn a flip rate per clinician (clinrlhf.reward.raters) in this many hash buckets; None
    treats every label as equally reliable. Two clinicians sharing a bucket share a flip rate: with
    4096 buckets that happens to some pair of 10 raters with probability 1.1%, of 40 raters 17%.
    Unused buckets cost nothing but memory (their gradient is zero before noise)."""
    rater_initial_flip: float = 0.1
    """Every rater's flip rate before training: mostly right, as a panel of clinicians is."""
    rater_learning_rate: float = 0.1
    """AdamW learning rate of the flip logits: one scalar per rater has to travel several logits
    (0.1 to above 0.5 is 2.2) within a few hundred steps, which the backbone's rate would not allow."""
    rater_weighting: RaterWeighting = "none"
    """How far each clinician's labels are trusted, from their agreement with the others measured
    before training. "dawid-skene": each pair's label is read through its clinician's one-coin
    Dawid–Skene accuracy a (clinrlhf.feedback.reliability, the estimate screening quarantines on) as
    a known label flip of 1 - a: the loss is -log[a·σ(Δ) + (1 - a)·σ(-Δ)], Δ = r_c - r_r (less the
    margin under `use_margin`; clinrlhf.reward.loss). Why: a noisy rater's labels then pull less,
    and least where the model is confident they are wrong (the pair's loss is capped at
    -log(1 - a)), instead of every label counting as certain. a is clamped into [0.501, 0.999]: a
    rater at or below chance (an adversary who escaped quarantine) carries almost no signal rather
    than a reversed one, and no rater is taken as never wrong. Clinicians without an estimate (no
    pairwise item shared with another rater) and machine labels get a = 1, plain Bradley–Terry. It
    composes with the learned flip rates (`rater_buckets`), which then learn what the estimate
    missed. The per-pair (or per-unit) gradient is clipped after weighting, so ε is unchanged; the
    accuracies are computed without noise, so the guarantee is conditional on them (docs/privacy.md).
    "none" (the default here, where no judgments are at hand): every label as is. The pipeline and
    `clinrlhf train reward` default to "dawid-skene" (PipelineConfig.reward) and fill
    `rater_accuracies` from the judgments they train on, quarantined clinicians already left out."""
    rater_accuracies: Mapping[str, float] | None = field(default=None, hash=False)
    """Clinician pseudonym -> Dawid–Skene accuracy (unclamped), read when `rater_weighting` is
    "dawid-skene"; clinrlhf.reward.raters.with_rater_accuracies fills it from judgments. Data, not a
    setting: train_reward refuses "dawid-skene" without it."""
    center_rewards_coef: float = 0.01
    """Weight of (r_c + r_r)² in the loss, keeping rewards centered at 0 (Eisenstein et al., 2023)."""
    seed: int | None = None
    """Public seed: the head's initialisation, data order and which pairs a bounded unit keeps.
    Never the DP noise or Poisson sampling (a CSPRNG-seeded generator, privacy.dp.opacus_engine),
    unless `dp.reproducible_noise` (debugging only: not a DP release). None: derived from the pipeline seed (clinrlhf.pipeline.seeds) in a pipeline run, 0 when trained alone."""
    dp: DPConfig = field(default_factory=DPConfig)
    """DP-SGD (privacy.dp.opacus_config): budget, δ, clipping norm C, accountant and where the
    noise comes from; `dp.enabled` false trains a non-private baseline, never for real data."""
    grad_sample_mode: GradSampleMode = "hooks"
    """Opacus per-sample gradients: "hooks" materialises them, "ghost" only their norms."""
    ema_decay: float | None = None
    """Keep an exponential moving average of the reward model's weights over the optimizer steps
    (its decay warming up to this value: clinrlhf.reward.trainer.ema_with_warmup) and return it
    instead of the last iterate; None (the default) returns the last iterate. Why one would: every
    DP-SGD step adds fresh Gaussian noise to the weights, and averaging iterates cancels part of it
    while the signal, which points the same way step after step, survives (De et al., 2022,
    https://arxiv.org/abs/2204.13650). Why it is off: on five pipeline seeds' validation cohorts
    0.99 raised the reward's KL-regularised optimum (0.876 ± 0.042 to 0.907 ± 0.040 retrained),
    but the whole pipeline with it fell from 0.848 ± 0.051 to 0.822 ± 0.046 concordance and rose
    from 0.012 to 0.026 unsafe: PPO stopped further short of the averaged reward's optimum
    (docs/results.md, "Where the spread comes from"). The average is computed from the released
    iterates, so it is post-processing: ε and δ are unchanged."""

    def __post_init__(self) -> None:
        if self.privacy_unit not in PRIVACY_UNITS:
            raise ValueError(f"privacy_unit must be one of {PRIVACY_UNITS}, got {self.privacy_unit!r}")
        if self.privacy_unit != "pair" and self.dp.enabled and self.grad_sample_mode != "hooks":
            raise ValueError(
                "a judgment, clinician or patient unit clips the sum of its pairs' gradients, which ghost clipping "
                "cannot compute (it only has per-pair norms); use grad_sample_mode 'hooks'"
            )
        if min(self.max_pairs_per_unit, self.units_per_batch, self.rows_per_pass) < 1:
            raise ValueError("max_pairs_per_unit, units_per_batch and rows_per_pass must be at least 1")
        if self.grad_sample_mode not in ("hooks", "ghost"):
            raise ValueError(f"grad_sample_mode must be 'hooks' or 'ghost', got {self.grad_sample_mode!r}")
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be None or in (0, 1), got {self.ema_decay}")
        if self.trainable_blocks is not None and self.trainable_blocks < 0:
            raise ValueError(f"trainable_blocks must be None or at least 0, got {self.trainable_blocks}")
        if self.rater_buckets is not None and self.rater_buckets < 1:
            raise ValueError(f"rater_buckets must be None or at least 1, got {self.rater_buckets}")
        if not 0.0 < self.rater_initial_flip < 0.5:
            raise ValueError(f"rater_initial_flip must be in (0, 0.5), got {self.rater_initial_flip}")
        if self.rater_weighting not in RATER_WEIGHTINGS:
            raise ValueError(
                f"rater_weighting must be one of {RATER_WEIGHTINGS}, got {self.rater_weighting!r}"
            )
        if self.rater_accuracies is not None:
            if self.rater_weighting != "dawid-skene":
                raise ValueError("rater_accuracies are only read with rater_weighting 'dawid-skene'")
            bad = [c for c, a in self.rater_accuracies.items() if not (math.isfinite(a) and 0.0 <= a <= 1.0)]
            if bad:
                raise ValueError(f"rater accuracies must be in [0, 1]; {len(bad)} are not")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be at least 1")
        if self.learning_rate <= 0:
            raise ValueError("learning_rate must be positive")

    def delta_for(self, n: int) -> float:
        """The δ used for n privacy units (pairs under the "pair" unit)."""
        return self.dp.delta_for(n)

    @staticmethod
    def upgrade_settings(overrides: Mapping[str, Any]) -> dict[str, Any]:
        """JSON overrides in the old flat layout (`target_epsilon`, `dp: false`, `secure_rng`, ...)
        with those settings moved under `dp`, so configs written before DPConfig still load."""
        return nest_legacy_dp(overrides)
