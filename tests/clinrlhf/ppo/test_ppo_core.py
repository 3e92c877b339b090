"""The pure PPO math, each function checked against a slow, obvious reference."""

import math

import pytest
import torch

from clinrlhf.ppo.core import (
    clipped_policy_loss,
    clipped_value_loss,
    entropy_from_logits,
    gae,
    kl_k1,
    kl_k3,
    leave_one_out_baseline,
    masked_mean,
    masked_var,
    masked_whiten,
    per_token_rewards,
)


def _prefix_mask(lengths: list[int], width: int) -> torch.Tensor:
    return torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]


def _naive_gae(
    rewards: list[float], values: list[float], gamma: float, lam: float
) -> tuple[list[float], list[float]]:
    """A_t = sum_l (gamma * lam)^l delta_{t+l}, written as the double sum of the GAE paper."""
    n = len(rewards)
    deltas = [rewards[t] + gamma * (values[t + 1] if t + 1 < n else 0.0) - values[t] for t in range(n)]
    advantages = [sum((gamma * lam) ** k * deltas[t + k] for k in range(n - t)) for t in range(n)]
    return advantages, [a + v for a, v in zip(advantages, values, strict=True)]


@pytest.mark.parametrize(("gamma", "lam"), [(1.0, 0.95), (0.9, 1.0), (0.99, 0.0)])
def test_gae_matches_the_naive_double_sum_on_each_sequence(gamma: float, lam: float) -> None:
    torch.manual_seed(0)
    lengths = [5, 1, 3, 7]
    rewards, values = torch.randn(4, 7, dtype=torch.float64), torch.randn(4, 7, dtype=torch.float64)
    mask = _prefix_mask(lengths, 7)
    advantages, returns = gae(rewards, values, mask, gamma, lam)
    for row, n in enumerate(lengths):
        expected_adv, expected_ret = _naive_gae(
            rewards[row, :n].tolist(), values[row, :n].tolist(), gamma, lam
        )
        assert advantages[row, :n].tolist() == pytest.approx(expected_adv, abs=1e-12)
        assert returns[row, :n].tolist() == pytest.approx(expected_ret, abs=1e-12)
        assert advantages[row, n:].abs().sum() == 0 and returns[row, n:].abs().sum() == 0


def test_gae_ignores_whatever_sits_in_the_padding() -> None:
    mask = _prefix_mask([2], 4)
    rewards, values = torch.tensor([[0.0, 1.0, 0.0, 0.0]]), torch.tensor([[0.5, 0.2, 0.0, 0.0]])
    garbage_r, garbage_v = rewards.clone(), values.clone()
    garbage_r[0, 2:], garbage_v[0, 2:] = 9.0, -9.0
    assert torch.equal(
        gae(rewards, values, mask, 1.0, 0.95)[0], gae(garbage_r, garbage_v, mask, 1.0, 0.95)[0]
    )


def test_masked_mean_and_variance_use_only_the_masked_in_entries() -> None:
    values = torch.tensor([[1.0, 2.0, 100.0], [3.0, 100.0, 100.0]])
    mask = torch.tensor([[True, True, False], [True, False, False]])
    assert masked_mean(values, mask).item() == pytest.approx(2.0)
    assert masked_mean(values, mask, dim=1).tolist() == pytest.approx([1.5, 3.0])
    assert masked_var(values, mask).item() == pytest.approx(torch.tensor([1.0, 2.0, 3.0]).var().item())
    assert masked_var(values, mask, unbiased=False).item() == pytest.approx(2 / 3)


def test_whitening_gives_zero_mean_unit_variance_on_real_tokens_and_zero_padding() -> None:
    torch.manual_seed(1)
    values = torch.randn(6, 9) * 3 + 5
    mask = _prefix_mask([9, 4, 1, 6, 2, 8], 9)
    white = masked_whiten(values, mask)
    assert masked_mean(white, mask).item() == pytest.approx(0.0, abs=1e-6)
    assert masked_var(white, mask).item() == pytest.approx(1.0, abs=1e-5)
    assert white[~mask].abs().sum() == 0


def test_whitening_without_shift_keeps_the_mean_and_only_rescales() -> None:
    values = torch.tensor([[1.0, 3.0, 5.0, 0.0]])
    mask = torch.tensor([[True, True, True, False]])
    white = masked_whiten(values, mask, shift_mean=False)
    std = torch.tensor([1.0, 3.0, 5.0]).std().item()
    assert white[0, :3].tolist() == pytest.approx([(v - 3.0) / std + 3.0 for v in (1.0, 3.0, 5.0)], rel=1e-5)
    assert white[0, 3].item() == 0.0


def _kl(p: torch.Tensor, q: torch.Tensor) -> float:
    return float((p * (p / q).log()).sum())


@pytest.mark.parametrize("estimator", [kl_k1, kl_k3])
def test_kl_estimators_average_to_the_exact_categorical_kl(estimator) -> None:
    p = torch.tensor([0.5, 0.25, 0.15, 0.1], dtype=torch.float64)
    q = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    draws = torch.multinomial(p, 400_000, replacement=True, generator=torch.Generator().manual_seed(0))
    estimate = estimator(p.log()[draws], q.log()[draws]).mean().item()
    assert estimate == pytest.approx(_kl(p, q), rel=0.01)


def test_k3_is_never_negative_while_k1_can_be() -> None:
    logp, ref_logp = torch.log(torch.rand(10_000)), torch.log(torch.rand(10_000))
    assert (kl_k3(logp, ref_logp) >= 0).all()
    assert (kl_k1(logp, ref_logp) < 0).any()
    assert kl_k3(logp, logp).abs().max() == 0


def test_k3_has_lower_variance_than_k1_for_close_distributions() -> None:
    p = torch.tensor([0.4, 0.35, 0.25], dtype=torch.float64)
    q = torch.tensor([0.35, 0.35, 0.30], dtype=torch.float64)
    draws = torch.multinomial(p, 50_000, replacement=True, generator=torch.Generator().manual_seed(1))
    assert kl_k3(p.log()[draws], q.log()[draws]).var() < kl_k1(p.log()[draws], q.log()[draws]).var()


def test_clipped_policy_loss_matches_an_elementwise_reference() -> None:
    torch.manual_seed(2)
    old, new, adv = torch.randn(3, 5), torch.randn(3, 5) * 0.3, torch.randn(3, 5)
    new = old + new
    mask = _prefix_mask([5, 2, 4], 5)
    loss, clipfrac = clipped_policy_loss(new, old, adv, mask, cliprange=0.2)
    terms, clipped = [], []
    for b in range(3):
        for t in range(5):
            if not mask[b, t]:
                continue
            ratio = math.exp(new[b, t].item() - old[b, t].item())
            a = adv[b, t].item()
            plain, clip = -a * ratio, -a * min(max(ratio, 0.8), 1.2)
            terms.append(max(plain, clip))
            clipped.append(clip > plain)
    assert loss.item() == pytest.approx(sum(terms) / len(terms), rel=1e-5)
    assert clipfrac.item() == pytest.approx(sum(clipped) / len(clipped))


def test_clipped_policy_loss_gradient_vanishes_once_the_ratio_leaves_the_trust_region() -> None:
    old = torch.zeros(1, 1)
    new = torch.full((1, 1), math.log(1.5), requires_grad=True)  # ratio 1.5 > 1 + 0.2
    loss, clipfrac = clipped_policy_loss(new, old, torch.ones(1, 1), torch.ones(1, 1, dtype=torch.bool), 0.2)
    loss.backward()
    assert new.grad is not None and new.grad.item() == 0.0 and clipfrac.item() == 1.0


def test_clipped_value_loss_matches_an_elementwise_reference() -> None:
    torch.manual_seed(3)
    old, new, ret = torch.randn(2, 4), torch.randn(2, 4), torch.randn(2, 4)
    mask = _prefix_mask([4, 3], 4)
    loss, _ = clipped_value_loss(new, old, ret, mask, cliprange_value=0.2)
    terms = []
    for b in range(2):
        for t in range(4):
            if mask[b, t]:
                v, o, r = new[b, t].item(), old[b, t].item(), ret[b, t].item()
                clipped = o + min(max(v - o, -0.2), 0.2)
                terms.append(0.5 * max((v - r) ** 2, (clipped - r) ** 2))
    assert loss.item() == pytest.approx(sum(terms) / len(terms), rel=1e-5)


def test_entropy_from_logits_equals_the_categorical_entropy() -> None:
    logits = torch.randn(4, 3, 11, generator=torch.Generator().manual_seed(4)) * 4
    expected = torch.distributions.Categorical(logits=logits).entropy()
    assert torch.allclose(entropy_from_logits(logits), expected, atol=1e-5)


def test_per_token_rewards_put_the_score_on_the_last_real_token_and_the_penalty_everywhere() -> None:
    kl = torch.tensor([[0.5, 1.0, 2.0, 9.0], [1.0, 1.0, 1.0, 1.0]])
    mask = _prefix_mask([3, 4], 4)
    rewards, non_score = per_token_rewards(kl, torch.tensor([10.0, -1.0]), mask, kl_coef=0.1)
    assert torch.allclose(non_score, torch.tensor([[-0.05, -0.1, -0.2, 0.0], [-0.1, -0.1, -0.1, -0.1]]))
    assert torch.allclose(rewards, torch.tensor([[-0.05, -0.1, 9.8, 0.0], [-0.1, -0.1, -0.1, -1.1]]))


def test_leave_one_out_baseline_subtracts_the_mean_of_the_siblings() -> None:
    scores = torch.tensor([1.0, 2.0, 6.0, -1.0, -1.0, 5.0])
    expected = [1 - 4, 2 - 3.5, 6 - 1.5, -1 - 2, -1 - 2, 5 - (-1)]
    assert leave_one_out_baseline(scores, 3).tolist() == pytest.approx(expected)
    assert leave_one_out_baseline(scores, 1).tolist() == scores.tolist()


def test_leave_one_out_baseline_removes_any_per_prompt_offset() -> None:
    scores = torch.randn(4, 5, generator=torch.Generator().manual_seed(0))
    offsets = torch.tensor([[10.0], [-3.0], [0.5], [100.0]])
    shifted = leave_one_out_baseline((scores + offsets).reshape(-1), 5)
    assert torch.allclose(shifted, leave_one_out_baseline(scores.reshape(-1), 5), atol=1e-4)
