"""Composing DP-SGD runs on the same data: the privacy spent by several trainings, as pure functions.

Each run of DP-SGD with Poisson sampling is a mechanism (noise multiplier σ, sample rate q, steps T).
Running several of them on the same data is their adaptive composition, which both accountants
handle exactly as they handle one run's steps: the PRV accountant convolves the privacy loss
distributions of all steps (Gopi, Lee & Wutschitz, 2021, https://arxiv.org/abs/2106.02848, §5),
the RDP accountant adds their Rényi divergences order by order (Mironov, 2017,
https://arxiv.org/abs/1702.07476, Proposition 1). So the cumulative ε of a data snapshot is the
accountant run on the concatenated history of its runs, at the budget's δ.

A run without noise (σ = 0) has no finite guarantee, so any history containing one spends ε = ∞.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from opacus.accountants import PRVAccountant, RDPAccountant

from privacy.dp.accounting import RDP_ORDERS, Accountant, quiet_prv


class BudgetExceededError(RuntimeError):
    """A run would take a data snapshot's cumulative privacy spend past its budget."""


@dataclass(frozen=True)
class Mechanism:
    """One DP-SGD run: `steps` Poisson-sampled Gaussian steps."""

    noise_multiplier: float
    """Gaussian noise standard deviation in units of the clipping norm; 0 means no DP."""
    sample_rate: float
    """Poisson sampling probability of each privacy unit in each step."""
    steps: int
    """Noisy steps taken."""

    def __post_init__(self) -> None:
        if not 0.0 < self.sample_rate <= 1.0:
            raise ValueError(f"sample_rate must be in (0, 1], got {self.sample_rate}")
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")
        if self.noise_multiplier < 0.0:
            raise ValueError(f"noise_multiplier must be non-negative, got {self.noise_multiplier}")


@dataclass(frozen=True)
class Budget:
    """The most a data snapshot may ever spend, over all the runs that use it."""

    epsilon: float
    """max_cumulative_epsilon: the composed ε of all runs, at `delta`, may not pass this."""
    delta: float
    """The δ at which the cumulative ε is computed."""

    def __post_init__(self) -> None:
        if self.epsilon <= 0.0:
            raise ValueError(f"budget epsilon must be positive, got {self.epsilon}")
        if not 0.0 < self.delta < 1.0:
            raise ValueError(f"budget delta must be in (0, 1), got {self.delta}")


def composed_epsilon(mechanisms: Sequence[Mechanism], delta: float, accountant: Accountant = "prv") -> float:
    """The ε, at `delta`, of running all `mechanisms` on the same data (0 for none)."""
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    if not mechanisms:
        return 0.0
    if any(m.noise_multiplier == 0.0 for m in mechanisms):
        return float("inf")
    history = [(m.noise_multiplier, m.sample_rate, m.steps) for m in mechanisms]
    if accountant == "rdp":
        rdp = RDPAccountant()
        rdp.history = history
        return float(rdp.get_epsilon(delta=delta, alphas=list(RDP_ORDERS)))
    if accountant != "prv":
        raise ValueError(f"unknown accountant {accountant!r}")
    prv = PRVAccountant()
    prv.history = history
    with quiet_prv():
        return float(prv.get_epsilon(delta=delta))


def check_budget(
    spent: Sequence[Mechanism], new: Mechanism, budget: Budget, accountant: Accountant = "prv"
) -> float:
    """The cumulative ε after `new` joins the runs already `spent`; raises BudgetExceededError (with a
    one-line reason) if that would pass the budget."""
    before = composed_epsilon(spent, budget.delta, accountant)
    after = composed_epsilon([*spent, new], budget.delta, accountant)
    if after > budget.epsilon:
        raise BudgetExceededError(
            f"privacy budget exceeded: {len(spent)} earlier run(s) spent ε={before:.3g}, this run would bring "
            f"the cumulative ε to {after:.3g} > max_cumulative_epsilon={budget.epsilon:g} "
            f"(δ={budget.delta:.3g}, {accountant.upper()})"
        )
    return after
