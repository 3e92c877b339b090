"""The pure math of RLHF-style PPO: masked statistics, GAE, KL estimators and the clipped losses.

Every function is stateless and typed; shapes are (B, T) over response tokens unless noted, and
`mask` is True on real response tokens (up to and including EOS) and False on padding after it.
"""

from __future__ import annotations

import torch


def masked_mean(values: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of `values` where `mask` is true; 0 where nothing is masked in."""
    m = mask.to(values.dtype)
    if dim is None:
        return (values * m).sum() / m.sum().clamp(min=1.0)
    return (values * m).sum(dim) / m.sum(dim).clamp(min=1.0)


def masked_var(values: torch.Tensor, mask: torch.Tensor, unbiased: bool = True) -> torch.Tensor:
    """Variance of the masked-in entries, with Bessel's correction by default."""
    mean = masked_mean(values, mask)
    var = masked_mean((values - mean) ** 2, mask)
    if unbiased:
        n = mask.sum().to(values.dtype)
        var = var * n / (n - 1).clamp(min=1.0)
    return var


def masked_whiten(
    values: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True, eps: float = 1e-8
) -> torch.Tensor:
    """Standardize the masked-in entries to unit variance (and zero mean if `shift_mean`).

    Rewards are whitened without shifting, so their sign survives (Huang et al., 2024, detail 12;
    Ziegler et al., 2019). Padding comes back as 0.
    """
    mean, var = masked_mean(values, mask), masked_var(values, mask)
    whitened = (values - mean) * torch.rsqrt(var + eps)
    if not shift_mean:
        whitened = whitened + mean
    return torch.where(mask.bool(), whitened, torch.zeros_like(whitened))


def gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalized advantage estimation (Schulman et al., 2016, https://arxiv.org/abs/1506.02438).

    delta_t = r_t + gamma * V_{t+1} - V_t and A_t = delta_t + gamma * lam * A_{t+1}, with V and A
    zero past the last real token (the episode ends at EOS). Vectorised over the batch, a loop over
    time backwards. Returns (advantages, returns), both (B, T) and zero on padding.
    """
    m = mask.to(rewards.dtype)
    rewards, values = rewards * m, values * m
    advantages = torch.zeros_like(rewards)
    next_value = torch.zeros_like(rewards[:, 0])
    next_advantage = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        advantages[:, t] = (delta + gamma * lam * next_advantage) * m[:, t]
        next_value, next_advantage = values[:, t], advantages[:, t]
    return advantages, advantages + values


def kl_k1(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Unbiased, high-variance estimate of KL(pi || ref) per sampled token: log pi(x) - log ref(x).

    Samples are drawn from pi. http://joschu.net/blog/kl-approx.html
    """
    return logp - ref_logp


def kl_k3(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Unbiased, low-variance, always non-negative estimate of KL(pi || ref): (r - 1) - log r with
    r = ref(x) / pi(x) and x drawn from pi. http://joschu.net/blog/kl-approx.html
    """
    log_ratio = ref_logp - logp
    return torch.expm1(log_ratio) - log_ratio


def clipped_policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    cliprange: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's clipped surrogate (Schulman et al., 2017, eq. 7, https://arxiv.org/abs/1707.06347),
    negated for minimisation. Returns (loss, fraction of tokens where the clip was active)."""
    ratio = torch.exp(logprobs - old_logprobs)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - cliprange, 1.0 + cliprange)
    loss = masked_mean(torch.max(unclipped, clipped), mask)
    clipfrac = masked_mean((clipped > unclipped).to(logprobs.dtype), mask)
    return loss, clipfrac


def clipped_value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    cliprange_value: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Half the squared error, pessimistic over a value update clipped around the rollout's values
    (Huang et al., 2024, https://arxiv.org/abs/2403.17031; as in OpenAI's lm-human-preferences).
    Returns (loss, fraction of tokens where the clipped error was the larger)."""
    clipped_values = old_values + torch.clamp(values - old_values, -cliprange_value, cliprange_value)
    unclipped_error = (values - returns) ** 2
    clipped_error = (clipped_values - returns) ** 2
    loss = 0.5 * masked_mean(torch.max(unclipped_error, clipped_error), mask)
    clipfrac = masked_mean((clipped_error > unclipped_error).to(values.dtype), mask)
    return loss, clipfrac


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of softmax(logits) over the last axis: logsumexp(z) - sum(p * z). (..., V) -> (...)."""
    probs = torch.softmax(logits, dim=-1)
    return torch.logsumexp(logits, dim=-1) - (probs * logits).sum(-1)


def per_token_rewards(
    kl: torch.Tensor, scores: torch.Tensor, mask: torch.Tensor, kl_coef: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The KL-shaped reward of Ziegler et al. (2019, eq. 2, https://arxiv.org/abs/1909.08593):
    -kl_coef * KL_t on every response token, plus the sequence score on the last real token.
    Returns (rewards, non_score_rewards), both (B, T) and zero on padding."""
    non_score = -kl_coef * kl * mask.to(kl.dtype)
    last = (mask.long().sum(-1) - 1).clamp(min=0)  # index of EOS, or of the final token if truncated
    rewards = non_score.clone()
    rewards[torch.arange(rewards.shape[0]), last] += scores
    return rewards, non_score


def leave_one_out_baseline(scores: torch.Tensor, group_size: int) -> torch.Tensor:
    """Scores minus the mean of the other responses to the same prompt (RLOO, Ahmadian et al., 2024,
    https://arxiv.org/abs/2402.14740). `scores` is (B,) with each prompt's `group_size` responses
    adjacent; group_size 1 returns the scores unchanged."""
    if group_size == 1:
        return scores
    groups = scores.reshape(-1, group_size)
    others = (groups.sum(-1, keepdim=True) - groups) / (group_size - 1)
    return (groups - others).reshape(-1)
