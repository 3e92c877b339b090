"""Each clinician's reliability, learned with the reward model: how often their labels are flipped.

Clinicians disagree with the truth at different rates, and a few disagree on purpose. Treating
every label as equally right lets the noisiest raters set the reward. Instead, each rater r gets
a flip probability f_r, and a label "chosen ≻ rejected" from r is modelled as

    P(label) = (1 - f_r)·σ(Δ) + f_r·σ(-Δ),   Δ = r_chosen - r_rejected

(a Bradley–Terry model under per-annotator label noise; Raykar et al., 2010, "Learning From
Crowds", https://jmlr.org/papers/v11/raykar10a.html). A reliable rater learns f_r ≈ 0; a rater who
answers at random learns f_r ≈ 0.5 and stops moving the reward; an adversary learns f_r > 0.5, so
their labels count reversed. The rewards themselves stay rater-free: PPO uses r, never f.

Why hash buckets rather than one slot per clinician seen: under DP-SGD the model's shape must not
depend on the data (one pair more or less could add or remove a rater). A fixed table indexed by a
keyed hash of the (already pseudonymous) clinician id keeps the architecture data-independent; the
flip logits are ordinary parameters, clipped and noised with the rest, so the privacy guarantee
covers them too.

The flip rate can also be *given* rather than learned: RewardConfig.rater_weighting
"dawid-skene" reads each pair through 1 - a_c, a_c the clinician's Dawid–Skene accuracy
(clinrlhf.feedback.reliability) measured on the judgments before training. The functions at the end
of this module compute those accuracies, clamp them and attach them to a config. Unlike the learned
flips they are computed in the clear: the guarantee holds given them (docs/privacy.md).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

import torch
from torch import nn

from clinrlhf.feedback.judgment import Judgment
from clinrlhf.feedback.reliability import dawid_skene, preference_labels
from clinrlhf.reward.config import RewardConfig
from clinrlhf.reward.pairs import PreferencePair

ACCURACY_BOUNDS = (0.501, 0.999)
"""Where a Dawid–Skene accuracy is clamped before it weights a pair: at or below chance a rater
carries (almost) no signal, never a reversed one, and no rater is taken as never wrong."""


def rater_bucket(clinician: str, buckets: int) -> int:
    """A stable bucket for a clinician pseudonym (Python's hash() is salted per process)."""
    digest = hashlib.sha256(clinician.encode()).digest()
    return int.from_bytes(digest[:8], "big") % buckets


class RaterFlipLogits(nn.Module):
    """logit(f_r) for every rater bucket, starting every rater at the same prior flip rate."""

    def __init__(self, buckets: int, initial_flip: float) -> None:
        super().__init__()
        if not 0.0 < initial_flip < 0.5:
            raise ValueError(f"initial_flip must be in (0, 0.5), got {initial_flip}")
        self.logits = nn.Embedding(buckets, 1)
        nn.init.constant_(self.logits.weight, math.log(initial_flip / (1.0 - initial_flip)))

    def forward(self, raters: torch.Tensor) -> torch.Tensor:
        """(B,) bucket ids -> (B,) flip logits."""
        return self.logits(raters).squeeze(-1)

    def flip_rates(self, clinicians: list[str]) -> dict[str, float]:
        """The learned flip probability of each named clinician."""
        ids = torch.tensor(
            [rater_bucket(c, self.logits.num_embeddings) for c in clinicians], dtype=torch.long
        )
        with torch.no_grad():
            rates = torch.sigmoid(self(ids)).tolist()
        return dict(zip(clinicians, rates, strict=True))


def clamp_accuracy(accuracy: float) -> float:
    low, high = ACCURACY_BOUNDS
    return min(max(float(accuracy), low), high)


def dawid_skene_accuracies(judgments: Iterable[Judgment]) -> dict[str, float]:
    """Each clinician's one-coin Dawid–Skene accuracy on the pairwise items several of them judged
    (the estimate clinrlhf.feedback.screening quarantines on), unclamped. Clinicians who shared no
    such item with another rater have none."""
    return dict(dawid_skene(preference_labels(judgments)).accuracy)


def with_rater_accuracies(config: RewardConfig, judgments: Sequence[Judgment]) -> RewardConfig:
    """`config` with its rater_accuracies estimated from `judgments` (the ones the reward model will
    train on) when its rater_weighting is "dawid-skene" and none were given; otherwise unchanged."""
    if config.rater_weighting != "dawid-skene" or config.rater_accuracies is not None:
        return config
    return replace(config, rater_accuracies=dawid_skene_accuracies(judgments))


def pair_accuracies(pairs: Sequence[PreferencePair], accuracies: Mapping[str, float]) -> dict[str, float]:
    """The accuracy each clinician of `pairs` is weighted with: their estimate, clamped into
    ACCURACY_BOUNDS, or 1 (plain Bradley–Terry) where there is none."""
    return {
        c: clamp_accuracy(accuracies[c]) if c in accuracies else 1.0
        for c in sorted({p.clinician for p in pairs})
    }
