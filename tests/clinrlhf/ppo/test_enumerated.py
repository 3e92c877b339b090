"""The math of PPO over listed responses: the outside mass, the exact β for a KL target, and a
clipped loss whose gradient is the exact policy gradient and whose fixed point is the optimum."""

from __future__ import annotations

import math

import pytest
import torch

from clinrlhf.ppo.enumerated import (
    action_mask,
    advantages,
    clipped_loss,
    entropy,
    exact_kl,
    optimum,
    solve_beta,
    with_outside,
)


def _candidates() -> tuple[torch.Tensor, torch.Tensor]:
    """Two prompts: three candidates, and two (its third column is padding)."""
    logp = torch.log(torch.tensor([[0.5, 0.2, 0.1], [0.6, 0.3, 0.7]]))
    mask = torch.tensor([[True, True, True], [True, True, False]])
    return logp, mask


def test_outside_holds_what_the_candidates_leave_and_padding_is_no_action() -> None:
    logp, mask = _candidates()
    full = with_outside(logp, mask)
    assert full.shape == (2, 4)
    assert torch.allclose(full[:, -1].exp(), torch.tensor([0.2, 0.1]))
    assert full[1, 2] == -math.inf  # the padded column, whatever its value was
    assert torch.allclose(full.exp().sum(-1), torch.ones(2))
    # Candidates holding everything leave a floor, not log 0.
    assert torch.isfinite(
        with_outside(torch.log(torch.tensor([[0.5, 0.5]])), torch.ones(1, 2, dtype=torch.bool))
    ).all()


def test_kl_and_entropy_are_those_of_the_distributions_over_actions() -> None:
    logp, mask = _candidates()
    amask = action_mask(mask)
    p, ref = with_outside(logp, mask), with_outside(torch.log(torch.full((2, 3), 0.25)), mask)
    by_hand = [
        sum(a * math.log(a / b) for a, b in zip([0.5, 0.2, 0.1, 0.2], [0.25] * 4, strict=True)),
        sum(a * math.log(a / b) for a, b in zip([0.6, 0.3, 0.1], [0.25, 0.25, 0.5], strict=True)),
    ]
    assert torch.allclose(exact_kl(p, ref, amask), torch.tensor(by_hand))
    assert torch.allclose(entropy(p, amask)[1], torch.tensor(-sum(a * math.log(a) for a in (0.6, 0.3, 0.1))))
    assert torch.isfinite(exact_kl(p, ref, amask)).all()


def test_the_solved_beta_puts_the_optimum_at_the_kl_target() -> None:
    torch.manual_seed(0)
    mask = torch.ones(50, 5, dtype=torch.bool)
    ref = torch.log_softmax(torch.randn(50, 5), -1)
    scores = torch.randn(50, 5) * 2
    for target in (0.1, 0.5, 1.0):
        beta = solve_beta(ref, scores, mask, target)
        assert float(exact_kl(optimum(ref, scores, mask, beta), ref, mask).mean()) == pytest.approx(
            target, rel=1e-4
        )
    # The KL falls as β grows, so a larger target needs a smaller β.
    assert solve_beta(ref, scores, mask, 1.0) < solve_beta(ref, scores, mask, 0.1)
    # Beyond what any β reaches: the bounds, not a failure.
    assert solve_beta(ref, scores, mask, 100.0) == 1e-3
    assert solve_beta(ref, scores * 1e4, mask, 1e-6) == 1e3


def test_the_clipped_loss_gradient_at_the_rollout_policy_is_the_exact_policy_gradient() -> None:
    torch.manual_seed(1)
    mask = torch.ones(3, 4, dtype=torch.bool)
    logits = torch.randn(3, 4, requires_grad=True)
    ref, scores, beta = torch.log_softmax(torch.randn(3, 4), -1), torch.randn(3, 4), 0.5
    old = torch.log_softmax(logits, -1).detach()
    adv = advantages(old, ref, scores, mask, beta)
    loss, clipfrac = clipped_loss(torch.log_softmax(logits, -1), old, adv, mask, 0.2)
    loss.backward()
    # d/dθ_k of E_π[shaped reward] (shaped held fixed) is p_k·(R_k - E_π R) = p_k·A_k; the loss is
    # its negative, averaged over the prompts.
    assert logits.grad is not None
    assert torch.allclose(logits.grad, -old.exp() * adv / 3, atol=1e-6)
    assert float(clipfrac) == 0.0
    # Advantages are centred under the rollout policy.
    assert torch.allclose((old.exp() * adv).sum(-1), torch.zeros(3), atol=1e-6)


def test_training_on_the_clipped_loss_reaches_the_kl_regularised_optimum() -> None:
    """A free softmax over three candidates and everything else, trained with PPO's iterations on the
    exact expectation: it converges to π_ref·exp(score/β), not to the best score alone."""
    torch.manual_seed(2)
    cand_mask = torch.ones(4, 3, dtype=torch.bool)
    amask = action_mask(cand_mask)
    ref_logits = torch.randn(4, 4)
    ref = with_outside(torch.log_softmax(ref_logits, -1)[:, :3], cand_mask)
    scores = torch.cat([torch.randn(4, 3), torch.full((4, 1), -3.0)], -1)
    beta = 0.5
    logits = ref_logits.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([logits], lr=0.05)
    for _ in range(400):
        with torch.no_grad():
            old = with_outside(torch.log_softmax(logits, -1)[:, :3], cand_mask)
            adv = advantages(old, ref, scores, amask, beta)
        for _ in range(4):
            logp = with_outside(torch.log_softmax(logits, -1)[:, :3], cand_mask)
            loss, _ = clipped_loss(logp, old, adv, amask, 0.2)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    reached = with_outside(torch.log_softmax(logits, -1)[:, :3], cand_mask).exp()
    target = optimum(ref, scores, amask, beta).exp()
    assert (reached - target).abs().sum(-1).max() < 0.02
    # And that optimum is not the greedy one: β keeps mass on the runners-up.
    assert (target.max(-1).values < 0.99).all()
