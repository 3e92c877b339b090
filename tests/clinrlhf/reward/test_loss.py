"""The Bradley–Terry loss against a slow, obvious reference."""

from __future__ import annotations

import math

import pytest
import torch

from clinrlhf.reward.loss import BradleyTerryLoss, bradley_terry_loss


def reference(chosen: list[float], rejected: list[float], margin: list[float], center: float) -> list[float]:
    out = []
    for c, r, m in zip(chosen, rejected, margin, strict=True):
        p = 1.0 / (1.0 + math.exp(-(c - r - m)))
        out.append(-math.log(p) + center * (c + r) ** 2)
    return out


@pytest.mark.parametrize("center", [0.0, 0.01])
def test_matches_the_reference_per_pair(center: float) -> None:
    g = torch.Generator().manual_seed(0)
    chosen, rejected = (
        torch.randn(17, generator=g, dtype=torch.float64),
        torch.randn(17, generator=g, dtype=torch.float64),
    )
    margin = torch.rand(17, generator=g, dtype=torch.float64)
    got = bradley_terry_loss(chosen, rejected, margin, center, reduction="none")
    want = reference(chosen.tolist(), rejected.tolist(), margin.tolist(), center)
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64))
    assert float(bradley_terry_loss(chosen, rejected, margin, center)) == pytest.approx(sum(want) / 17)
    assert float(bradley_terry_loss(chosen, rejected, margin, center, "sum")) == pytest.approx(sum(want))


def test_is_stable_for_large_gaps() -> None:
    loss = bradley_terry_loss(torch.tensor([-80.0, 80.0]), torch.tensor([80.0, -80.0]), reduction="none")
    assert torch.isfinite(loss).all()
    assert loss[0].item() == pytest.approx(160.0) and loss[1].item() == pytest.approx(0.0, abs=1e-6)


def test_an_even_pair_costs_log_two() -> None:
    assert bradley_terry_loss(torch.zeros(3), torch.zeros(3)).item() == pytest.approx(math.log(2))


def test_criterion_reads_chosen_then_rejected_and_honours_reduction() -> None:
    rewards = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    criterion = BradleyTerryLoss(reduction="none")
    torch.testing.assert_close(
        criterion(rewards), bradley_terry_loss(rewards[:, 0], rewards[:, 1], reduction="none")
    )
    criterion.reduction = "mean"  # what Opacus' ghost clipping switches back and forth
    assert criterion(rewards).shape == ()
