"""The DPO objective as pure tensor math (Rafailov et al., 2023, "Direct Preference Optimization:
Your Language Model is Secretly a Reward Model", https://arxiv.org/abs/2305.18290, eq. 7):

    L = −log σ( β [ (log π(y_w|x) − log π_ref(y_w|x)) − (log π(y_l|x) − log π_ref(y_l|x)) ] )

with y_w the chosen and y_l the rejected response. β·(log π − log π_ref) is the implicit reward of a
response; the loss is a Bradley–Terry likelihood of the preference under those rewards. The
reference is the SFT policy, whose log-probabilities are fixed, so they are computed once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE = -100  # label value of prompt and padding positions


def sequence_logps(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(B,) sum of the log-probabilities of the labelled tokens; position t predicts token t+1.
    logits: (B, T, V); labels: (B, T) with IGNORE on the prompt and padding."""
    targets = labels[:, 1:]
    mask = targets != IGNORE
    logp = torch.log_softmax(logits[:, :-1], dim=-1)
    picked = logp.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (picked * mask).sum(-1)


def log_ratio_margin(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
) -> torch.Tensor:
    """(B,) how much more the policy favours chosen over rejected than the reference does."""
    return (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)


def dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float,
) -> torch.Tensor:
    """(B,) per-pair DPO losses; −log σ(β · margin), computed stably with logsigmoid."""
    if beta <= 0:
        raise ValueError(f"beta must be positive, got {beta}")
    margin = log_ratio_margin(policy_chosen, policy_rejected, ref_chosen, ref_rejected)
    return -F.logsigmoid(beta * margin)
