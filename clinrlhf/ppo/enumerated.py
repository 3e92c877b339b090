"""The pure math of PPO over an enumerable set of responses: PPO's expectation over the policy's
responses computed exactly instead of estimated from one sample per prompt.

When every response a prompt can usefully get is known in advance (the formulary's prescriptions
for its problem), each prompt's experience is all of them, weighted by the probability the rollout
policy gives each: the all-action policy gradient (Allen et al., 2017, "Mean Actor-Critic",
https://arxiv.org/abs/1709.00503; Petit et al., 2019). The probability the policy puts on anything
else is one more action, "outside", with its own score. The value is then exact, so there is no
critic, and the advantages carry no sampling noise. The clipped surrogate and the KL penalty in the
reward are PPO's own (Schulman et al., 2017; Ziegler et al., 2019), so the objective and its
optimum, π*(y|x) ∝ π_ref(y|x)·exp(r(x, y)/β) (Rafailov et al., 2023, eq. 4), are unchanged.

Every tensor is (P, A): P prompts, A actions (the most candidates any of them has, then "outside"
in the last column), with `mask` true on real actions. Log-probabilities are of whole responses.
"""

from __future__ import annotations

import math

import torch

OUTSIDE_FLOOR = 1e-6
"""Least mass "outside" is given, so its log stays finite once the candidates hold nearly all of it."""


def with_outside(candidate_logp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(P, K) log-probs of the candidates (anything where `mask` (P, K) is false) -> (P, K + 1)
    with log P(outside) = log(1 - Σ P(candidates)) last; masked entries become -inf."""
    logp = candidate_logp.masked_fill(~mask, -math.inf)
    inside = torch.logsumexp(logp, dim=-1)
    outside = torch.log(torch.clamp(1.0 - inside.exp(), min=OUTSIDE_FLOOR))
    return torch.cat([logp, outside[:, None]], dim=-1)


def action_mask(mask: torch.Tensor) -> torch.Tensor:
    """The candidates' (P, K) mask with the always-present "outside" column appended."""
    return torch.cat([mask, torch.ones_like(mask[:, :1])], dim=-1)


def _probs(logp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.where(mask, logp.exp(), torch.zeros_like(logp))


def _dot(weights: torch.Tensor, values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Σ over actions of weights·values, skipping masked actions (whose values may be ±inf or NaN:
    they are replaced before the product, so no NaN reaches a gradient either)."""
    return (weights * torch.where(mask, values, torch.zeros_like(values))).sum(-1)


def exact_kl(logp: torch.Tensor, ref_logp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """KL(π || π_ref) per prompt, (P,), over the actions (outside lumped into one)."""
    return _dot(_probs(logp, mask), logp - ref_logp, mask)


def entropy(logp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Entropy of the choice among the actions, (P,), in nats per response."""
    return -_dot(_probs(logp, mask), logp, mask)


def expected(logp: torch.Tensor, values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """E_π[values] per prompt, (P,)."""
    return _dot(_probs(logp, mask), values, mask)


def optimum(ref_logp: torch.Tensor, scores: torch.Tensor, mask: torch.Tensor, beta: float) -> torch.Tensor:
    """log π* over the actions, π* ∝ π_ref·exp(score/β): the policy that maximises
    E[score] - β·KL(π || π_ref)."""
    tilted = (ref_logp + scores / beta).masked_fill(~mask, -math.inf)
    return torch.log_softmax(tilted, dim=-1)


def solve_beta(
    ref_logp: torch.Tensor,
    scores: torch.Tensor,
    mask: torch.Tensor,
    kl_target: float,
    low: float = 1e-3,
    high: float = 1e3,
    iterations: int = 60,
) -> float:
    """The β at which the optimum's mean KL from the reference is `kl_target`: exact, where a sampled
    PPO can only chase it with a controller. The KL falls as β grows, so bisection (on log β); a
    target beyond the KL even `low` reaches gives `low`, one that `high` exceeds gives `high`."""

    def kl(beta: float) -> float:
        return float(exact_kl(optimum(ref_logp, scores, mask, beta), ref_logp, mask).mean())

    if kl(low) <= kl_target:
        return low
    if kl(high) >= kl_target:
        return high
    for _ in range(iterations):
        middle = math.sqrt(low * high)
        low, high = (middle, high) if kl(middle) > kl_target else (low, middle)
    return math.sqrt(low * high)


def advantages(
    logp_old: torch.Tensor, ref_logp: torch.Tensor, scores: torch.Tensor, mask: torch.Tensor, beta: float
) -> torch.Tensor:
    """Each action's KL-shaped reward, score - β·log(π_old/π_ref) (the KL penalty in the reward, as
    in sampled PPO), less its exact expectation under π_old: (P, A), 0 on masked actions."""
    shaped = scores - beta * (logp_old - ref_logp)
    centred = shaped - expected(logp_old, shaped, mask)[:, None]
    return torch.where(mask, centred, torch.zeros_like(centred))


def clipped_loss(
    logp: torch.Tensor,
    logp_old: torch.Tensor,
    advantage: torch.Tensor,
    mask: torch.Tensor,
    cliprange: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's clipped surrogate with the expectation over actions taken exactly: the mean over prompts
    of -Σ_a π_old(a)·min(ρ_a·A_a, clip(ρ_a, 1 ± ε)·A_a), ρ = π/π_old. At ρ = 1 its gradient is the
    exact policy gradient. -> (loss, the π_old-weighted share of actions clipped)."""
    weight = _probs(logp_old, mask).detach()
    ratio = torch.exp(torch.where(mask, logp - logp_old, torch.zeros_like(logp)))
    surrogate = torch.minimum(ratio * advantage, ratio.clamp(1.0 - cliprange, 1.0 + cliprange) * advantage)
    loss = -(weight * surrogate).sum(-1).mean()
    clipped = ((ratio - 1.0).abs() > cliprange) & mask
    return loss, (weight * clipped).sum(-1).mean()
