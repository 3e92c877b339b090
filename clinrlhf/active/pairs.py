"""Which two suggestions to show on a card: double Thompson sampling over the reward model's samples.

Choosing *which cases* to ask about (clinrlhf.active.selection) leaves the question fixed: the
card's two suggestions are whatever the service generated, usually the policy's habit and one
alternative. Many such pairs teach the reward model nothing it needs, because one side is plainly
worse. What best-of-n and PPO need is the order among the policy's *best* candidates for a patient.

Double Thompson sampling asks exactly that (Wu & Liu 2016, https://arxiv.org/abs/1604.07101, for
dueling bandits; Dwaracherla et al. 2024, "Efficient Exploration for LLMs",
https://arxiv.org/abs/2402.00396, for choosing the pair of responses a human compares, with an
ensemble as the posterior): draw one posterior sample of the reward and take its best candidate,
draw another and take its best; where the samples disagree, the pair is two responses each of which
may be the best, and a clinician's choice between them is what the model lacks. Where every sample
agrees, the second is the runner-up under the second sample: a question about the top of the list.

The samples are S rows of rewards for a case's K candidates, (S, K), from an ensemble or MC dropout
(clinrlhf.active.uncertainty). Pure functions; randomness comes from the `random.Random` passed in.
"""

from __future__ import annotations

import random

import torch


def best_disagreement(rewards: torch.Tensor) -> float:
    """Share of samples whose best candidate is not the most common best one: 0 when every sample
    agrees on the best, up to 1 − 1/S. A case-level measure of how unsure the model is about its
    own choice, which is the decision best-of-n and the policy act on. (S, K) -> float."""
    _check(rewards)
    winners = rewards.argmax(dim=1)
    most = int(torch.bincount(winners).max())
    return 1.0 - most / rewards.shape[0]


def thompson_pair(rewards: torch.Tensor, rng: random.Random, tries: int = 8) -> tuple[int, int]:
    """Indices (first, second) of two distinct candidates by double Thompson sampling: `first` is the
    best under one sample; `second` the best under another sample that disagrees (up to `tries`
    draws), else the runner-up under the last sample drawn. (S, K) with K >= 2."""
    _check(rewards)
    if rewards.shape[1] < 2:
        raise ValueError("a pair needs at least two candidates")
    samples = rewards.shape[0]
    first = int(rewards[rng.randrange(samples)].argmax())
    row = rewards[rng.randrange(samples)]
    for _ in range(tries):
        if int(row.argmax()) != first:
            return first, int(row.argmax())
        row = rewards[rng.randrange(samples)]
    masked = row.clone()
    masked[first] = float("-inf")
    return first, int(masked.argmax())


def _check(rewards: torch.Tensor) -> None:
    if rewards.dim() != 2 or rewards.shape[0] < 1 or rewards.shape[1] < 1:
        raise ValueError(f"expected (samples, candidates) rewards, got {tuple(rewards.shape)}")
