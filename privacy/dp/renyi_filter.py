"""Composing DP-SGD runs on the same people: the privacy spent by several trainings, as pure functions.

Each run of DP-SGD with Poisson sampling is a mechanism (noise multiplier σ, sample rate q, steps T).
A deployment retrains on data that keeps sharing people, and whether it retrains at all, and with
what σ, q and T, depends on what earlier runs produced. Composition theorems for a sequence fixed in
advance (the PRV accountant on the concatenated history, `composed_epsilon`) do not cover such
adaptive stopping; a *privacy filter* does (Rogers, Roth, Ullman & Vadhan, 2016,
https://arxiv.org/abs/1605.08294). This module's refusal decision is a Rényi filter (Feldman &
Zrnic, 2021, https://arxiv.org/abs/2008.11193, Theorem 3.1): each run contributes its RDP curve
ρ(α) on a fixed grid of orders Λ (the sampled Gaussian's RDP, Mironov, Talwar & Zhang, 2019,
https://arxiv.org/abs/1908.10530, as Opacus computes it), curves add order by order, and a run is
admitted iff afterwards some order α still satisfies

    ε_α(Σρ(α)) ≤ ε_budget,   ε_α(ρ) = ρ + log((α−1)/α) − (log(δ/|Λ|) + log α)/(α−1)

(Balle et al., 2020, https://arxiv.org/abs/1905.09982, Theorem 21, at δ/|Λ|).

Why this is (ε_budget, δ)-DP however the runs were chosen: for one order α,
M_t = exp((α−1)(L_t − Σ_{s≤t} ρ_s(α))) is a non-negative supermartingale with M_0 = 1 (L_t the
privacy loss after t runs; each ρ_s is fixed before run s starts, and a refused run adds nothing),
so E[M] ≤ 1 at the end (Feldman & Zrnic's argument). Split the outcomes by the first order whose
sum is within its budget B(α) (every outcome has one: the last admitted run checked it). On that
part, e^{(α−1)L} ≤ M·e^{(α−1)B(α)}, and Balle et al.'s pointwise bound
(1 − e^{ε−L})₊ ≤ C_α(ε)·e^{(α−1)L} gives a hockey-stick contribution ≤ C_α(ε)·e^{(α−1)B(α)} = δ/|Λ|.
Summed over the |Λ| orders: δ. The price of choosing the order after the fact is the log|Λ| in the
conversion, so Λ is short.

`filter_epsilon` is the least ε_budget that would have admitted the runs so far: the composed
figure to report. It is never a sum of the runs' own ε, and for two runs or more it is far below it.
A run without noise (σ = 0) has an infinite curve, so it is never admitted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from opacus.accountants import PRVAccountant, RDPAccountant
from opacus.accountants.analysis.rdp import compute_rdp

from privacy.dp.accounting import RDP_ORDERS, Accountant, quiet_prv

RDP_FILTER_ORDERS: tuple[float, ...] = (2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 32, 48, 64)
"""Λ, fixed per deployment: from where a composed ε of about 20 is tightest (α ≈ 2) to where one
below 1 is (α ≈ 64). Each order costs log|Λ|/(α−1) in the conversion, so the grid is short. Integer
orders only: there the sampled Gaussian's RDP is a finite sum that Opacus and Google's
dp_accounting compute identically (their series for fractional orders differ by up to 6%)."""


class BudgetExceededError(RuntimeError):
    """A run would take the cumulative privacy spend of the people it trains on past their budget."""


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
    """The most the runs of one deployment may ever spend on one privacy unit, over all of them."""

    epsilon: float
    """max_cumulative_epsilon: the filter's composed ε of all runs, at `delta`, may not pass this."""
    delta: float
    """The deployment's δ, fixed once: the filter's guarantee is (epsilon, delta)."""

    def __post_init__(self) -> None:
        if self.epsilon <= 0.0:
            raise ValueError(f"budget epsilon must be positive, got {self.epsilon}")
        if not 0.0 < self.delta < 1.0:
            raise ValueError(f"budget delta must be in (0, 1), got {self.delta}")


def rdp_curve(mechanism: Mechanism, orders: Sequence[float] = RDP_FILTER_ORDERS) -> tuple[float, ...]:
    """ρ(α) of the run at each order: T steps of the Poisson-sampled Gaussian (∞ without noise)."""
    if mechanism.noise_multiplier == 0.0:
        return tuple(math.inf for _ in orders)
    rdp = compute_rdp(
        q=mechanism.sample_rate,
        noise_multiplier=mechanism.noise_multiplier,
        steps=mechanism.steps,
        orders=[float(a) for a in orders],
    )
    return tuple(float(r) for r in np.atleast_1d(rdp))


def composed_rdp(
    mechanisms: Sequence[Mechanism], orders: Sequence[float] = RDP_FILTER_ORDERS
) -> tuple[float, ...]:
    """Σ ρ(α) over the runs, order by order (RDP composition, Mironov 2017, Proposition 1)."""
    total = np.zeros(len(orders))
    for mechanism in mechanisms:
        total = total + np.asarray(rdp_curve(mechanism, orders))
    return tuple(float(r) for r in total)


def _check_delta(delta: float) -> None:
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta must be in (0, 1), got {delta}")


def order_epsilons(
    rdp: Sequence[float], delta: float, orders: Sequence[float] = RDP_FILTER_ORDERS
) -> tuple[float, ...]:
    """ε_α for each order: Balle et al.'s conversion of ρ(α) at δ/|Λ| (the filter's share per order)."""
    _check_delta(delta)
    if len(rdp) != len(orders):
        raise ValueError(f"{len(rdp)} RDP values for {len(orders)} orders")
    share = math.log(delta / len(orders))
    return tuple(
        r + math.log((a - 1) / a) - (share + math.log(a)) / (a - 1) if math.isfinite(r) else math.inf
        for r, a in zip(rdp, orders, strict=True)
    )


def filter_epsilon(
    mechanisms: Sequence[Mechanism], delta: float, orders: Sequence[float] = RDP_FILTER_ORDERS
) -> float:
    """The composed ε of the runs under the Rényi filter at `delta`: the least budget that admits
    them all (0 for none, ∞ if one had no noise)."""
    _check_delta(delta)
    if not mechanisms:
        return 0.0
    return max(0.0, min(order_epsilons(composed_rdp(mechanisms, orders), delta, orders)))


def check_budget(
    spent: Sequence[Mechanism], new: Mechanism, budget: Budget, orders: Sequence[float] = RDP_FILTER_ORDERS
) -> float:
    """The filter's composed ε after `new` joins the runs already `spent`; raises
    BudgetExceededError (with a one-line reason) if no order keeps it within the budget."""
    before = filter_epsilon(spent, budget.delta, orders)
    after = filter_epsilon([*spent, new], budget.delta, orders)
    if not after <= budget.epsilon:
        raise BudgetExceededError(
            f"privacy budget exceeded: {len(spent)} earlier run(s) spent ε={before:.3g}, this run would bring "
            f"the composed ε to {after:.3g} > max_cumulative_epsilon={budget.epsilon:g} "
            f"(δ={budget.delta:.3g}, Rényi filter over {len(orders)} orders)"
        )
    return after


def check_delta_for_units(delta: float, n_units: int, what: str = "δ") -> None:
    """Refuse a δ above 1/n for n privacy units: at δ ≥ 1/n, publishing one unit's data in the
    clear would be (0, δ)-DP, so the guarantee would say nothing."""
    if n_units < 1:
        raise ValueError(f"a run needs at least one privacy unit, got {n_units}")
    if delta > 1.0 / n_units:
        raise BudgetExceededError(
            f"{what}={delta:.3g} is above 1/n = {1.0 / n_units:.3g} for this run's n={n_units} privacy units; "
            "the guarantee would be void"
        )


def composed_epsilon(mechanisms: Sequence[Mechanism], delta: float, accountant: Accountant = "prv") -> float:
    """The ε, at `delta`, of running all `mechanisms` as a sequence fixed in advance (0 for none).

    Tight (PRV) but not valid when whether and how to run the next one depended on the earlier
    ones' results; the ledger's refusals use `check_budget` (the filter) instead."""
    _check_delta(delta)
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
