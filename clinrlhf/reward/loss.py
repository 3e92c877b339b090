"""The Bradley–Terry preference loss, with an optional margin and reward-centering term."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Reduction = Literal["mean", "sum", "none"]


def bradley_terry_loss(
    chosen: torch.Tensor,
    rejected: torch.Tensor,
    margin: torch.Tensor | None = None,
    center_coef: float = 0.0,
    reduction: Reduction = "mean",
    flip_logits: torch.Tensor | None = None,
    accuracy: torch.Tensor | None = None,
) -> torch.Tensor:
    """-log σ(r_c - r_r - m) per pair, plus center_coef·(r_c + r_r)².

    With `flip_logits` (logit of each pair's rater flip rate f, see clinrlhf.reward.raters) the
    likelihood is the noisy-label one, -log[(1 - f)·σ(Δ) + f·σ(-Δ)], computed in log space.

    With `accuracy` (each pair's rater accuracy a in [0.5, 1], fixed: the Dawid–Skene estimate of
    RewardConfig.rater_weighting) the label is also read through a known flip of 1 - a:
    -log[a·P(Δ) + (1 - a)·P(-Δ)], P(Δ) being σ(Δ) or the learned-flip likelihood above. a = 1 is
    the loss without it, exactly; as a falls toward ½ the pair's gradient shrinks toward 0, most for
    the pairs the model confidently contradicts (their loss is capped at -log(1 - a)).

    Bradley & Terry (1952): P(chosen ≻ rejected) = σ(r_c - r_r). The margin m asks for a wider gap
    where the clinician said "much better" (Llama 2, Touvron et al., 2023, eq. 2,
    https://arxiv.org/abs/2307.09288). The loss only sees reward differences, so the level of the
    reward drifts freely; the centering term pins it near zero (Eisenstein et al., 2023,
    https://arxiv.org/abs/2312.09244), which keeps PPO's reward scale stable. Shapes: (B,) -> (B,) or ().
    """
    delta = chosen - rejected if margin is None else chosen - rejected - margin
    loss = -_log_likelihood(delta, flip_logits)
    if accuracy is not None:
        # log1p(-1) = -inf, and logaddexp(x, -inf) = x: a = 1 returns the loss above unchanged.
        agree, disagree = -loss, _log_likelihood(-delta, flip_logits)
        loss = -torch.logaddexp(torch.log(accuracy) + agree, torch.log1p(-accuracy) + disagree)
    if center_coef:
        loss = loss + center_coef * (chosen + rejected).pow(2)
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.mean()


def _log_likelihood(delta: torch.Tensor, flip_logits: torch.Tensor | None) -> torch.Tensor:
    """log P(the label | Δ): log σ(Δ), or with flip logits log[(1 - f)·σ(Δ) + f·σ(-Δ)]."""
    if flip_logits is None:
        return F.logsigmoid(delta)
    kept = F.logsigmoid(-flip_logits) + F.logsigmoid(delta)
    flipped = F.logsigmoid(flip_logits) + F.logsigmoid(-delta)
    return torch.logaddexp(kept, flipped)


class BradleyTerryLoss(nn.Module):
    """The loss as a criterion whose `reduction` Opacus can switch: ghost clipping calls it with
    reduction "none" to get one loss per pair, then backpropagates twice."""

    def __init__(self, center_coef: float = 0.0, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.center_coef, self.reduction = center_coef, reduction

    def forward(
        self,
        rewards: torch.Tensor,
        margin: torch.Tensor | None = None,
        flip_logits: torch.Tensor | None = None,
        accuracy: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """rewards: (B, 2), chosen then rejected; flip_logits and accuracy: (B,) or None."""
        return bradley_terry_loss(
            rewards[:, 0], rewards[:, 1], margin, self.center_coef, self.reduction, flip_logits, accuracy
        )
