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
) -> torch.Tensor:
    """-log σ(r_c - r_r - m) per pair, plus center_coef·(r_c + r_r)².

    With `flip_logits` (logit of each pair's rater flip rate f, see clinrlhf.reward.raters) the
    likelihood is the noisy-label one, -log[(1 - f)·σ(Δ) + f·σ(-Δ)], computed in log space.

    Bradley & Terry (1952): P(chosen ≻ rejected) = σ(r_c - r_r). The margin m asks for a wider gap
    where the clinician said "much better" (Llama 2, Touvron et al., 2023, eq. 2,
    https://arxiv.org/abs/2307.09288). The loss only sees reward differences, so the level of the
    reward drifts freely; the centering term pins it near zero (Eisenstein et al., 2023,
    https://arxiv.org/abs/2312.09244), which keeps PPO's reward scale stable. Shapes: (B,) -> (B,) or ().
    """
    delta = chosen - rejected if margin is None else chosen - rejected - margin
    if flip_logits is None:
        loss = -F.logsigmoid(delta)
    else:
        kept = F.logsigmoid(-flip_logits) + F.logsigmoid(delta)
        flipped = F.logsigmoid(flip_logits) + F.logsigmoid(-delta)
        loss = -torch.logaddexp(kept, flipped)
    if center_coef:
        loss = loss + center_coef * (chosen + rejected).pow(2)
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.mean()


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
    ) -> torch.Tensor:
        """rewards: (B, 2), chosen then rejected; flip_logits: (B,) or None."""
        return bradley_terry_loss(
            rewards[:, 0], rewards[:, 1], margin, self.center_coef, self.reduction, flip_logits
        )
