"""Which comparisons teach the reward model most, from its features: greedy D-optimal design.

The reward model scores r(x, y) = wᵀφ(x, y): a linear head on the backbone's last hidden state
(clinrlhf.reward.model). Under Bradley–Terry a pair's margin is wᵀd with d = φ(x, a) − φ(x, b).
Holding φ fixed, the head's posterior after the judged pairs is approximately Gaussian with
precision A = λI + Σ dᵢdᵢᵀ (a Laplace approximation; each dᵢ scaled by √(4pᵢ(1 − pᵢ)), the
logistic's Fisher weight relative to a coin flip, `fisher_weighted`), so the variance of a new
pair's margin is dᵀA⁻¹d. Asking about the pair of largest variance, adding it to A (a rank-one
Sherman–Morrison update) and asking again is the greedy maximiser of log det A, D-optimal design
for a batch (Pukelsheim, "Optimal Design of Experiments", 1993). It is the selection rule of Active
Preference Optimization (Das et al. 2024, https://arxiv.org/abs/2402.10500), here per batch.

Why this and not an ensemble: top-k uncertainty picks k near-copies of the one thing the model is
unsure of, while here each pick lowers the variance of every pair like it, so a batch spreads over
the directions the panel has not yet covered; and it needs one reward model, not K (with DP each
model spends privacy). What it cannot see: whatever φ does not represent, since the backbone's own
uncertainty is ignored.

Pure functions of tensors; clinrlhf.active.uncertainty.feature_differences computes the d's.
"""

from __future__ import annotations

import torch


def fisher_weighted(differences: torch.Tensor, head: torch.Tensor) -> torch.Tensor:
    """Each row d scaled by √(4p(1 − p)), p = σ(headᵀd): a pair the model is sure of adds little
    information, a coin flip adds d itself. (N, H), (H,) -> (N, H)"""
    if differences.dim() != 2 or head.shape != differences.shape[1:]:
        raise ValueError(
            f"expected (N, H) differences and an (H,) head, got {tuple(differences.shape)}, "
            f"{tuple(head.shape)}"
        )
    p = torch.sigmoid(differences.double() @ head.double())
    return differences.double() * (4 * p * (1 - p)).sqrt()[:, None]


def design_scores(
    candidates: torch.Tensor, judged: torch.Tensor, picks: int, ridge: float = 1.0
) -> list[float]:
    """A score per candidate pair for clinrlhf.active.selection.select_uncertain: the first `picks`
    of the greedy D-optimal order above every other pair, in that order; the rest by their margin
    variance once those picks are in.

    `candidates` (M, H) and `judged` (N, H) are pair differences (weighted or not). Both are scaled
    so that a candidate's mean squared norm is H, which makes `ridge` a prior worth `ridge` average
    pairs per dimension whatever the features' scale."""
    if candidates.dim() != 2 or judged.dim() != 2 or candidates.shape[1] != judged.shape[1]:
        raise ValueError(f"expected (M, H) and (N, H), got {tuple(candidates.shape)}, {tuple(judged.shape)}")
    if ridge <= 0:
        raise ValueError(f"ridge must be positive, got {ridge}")
    m, h = candidates.shape
    if m == 0:
        return []
    scale = (candidates.double().pow(2).sum(1).mean() / h).sqrt().clamp(min=1e-12)
    d, old = candidates.double() / scale, judged.double() / scale
    inverse = torch.linalg.inv(ridge * torch.eye(h, dtype=torch.double) + old.T @ old)
    # Each candidate's margin variance dᵀA⁻¹d, kept up to date by the same rank-one update as A⁻¹:
    # after adding dᵢ it falls by (dᵀv)² / (1 + dᵢᵀv) with v = A⁻¹dᵢ, O(M·H) a pick, not O(M·H²).
    variance = ((d @ inverse) * d).sum(1)
    scores = torch.zeros(m, dtype=torch.double)
    taken = torch.zeros(m, dtype=torch.bool)
    for step in range(min(picks, m)):
        i = int(variance.masked_fill(taken, -1.0).argmax())
        taken[i], scores[i] = True, float(2 * m - step)  # picks score in (m, 2m], the rest at most m
        v = inverse @ d[i]
        gain = 1 + d[i] @ v
        variance = variance - (d @ v).pow(2) / gain
        inverse = inverse - torch.outer(v, v) / gain
    scores[~taken] = variance[~taken].clamp(max=float(m))
    return scores.tolist()
