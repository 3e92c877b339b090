"""Privacy accounting for DP-SGD with Poisson sampling, as pure functions of the mechanism's history.

DP-SGD (Abadi et al., 2016, https://arxiv.org/abs/1607.00133) releases `steps` noisy sums, each over
a Poisson sample of the data with rate `sample_rate`, each sum of per-sample gradients clipped to
norm C and noised with N(0, (noise_multiplier * C)^2). The (epsilon, delta) this costs depends only
on (noise_multiplier, sample_rate, steps, delta). Two accountants bound it:

- "prv": privacy random variables (Gopi, Lee & Wutschitz, 2021, https://arxiv.org/abs/2106.02848),
  numerically tight; the reported epsilon is the upper end of its error interval.
- "rdp": Rényi DP (Mironov, 2017, https://arxiv.org/abs/1702.07476; sampled Gaussian mechanism,
  Mironov, Talwar & Zhang, 2019, https://arxiv.org/abs/1908.10530), looser but classic.

These are thin wrappers over Opacus' accountants, so training (which uses Opacus) and reporting
(which uses these) can never disagree.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import numpy as np
from opacus.accountants import PRVAccountant, RDPAccountant
from opacus.accountants.accountant import IAccountant
from opacus.accountants.utils import get_noise_multiplier

Accountant = Literal["prv", "rdp"]
ACCOUNTANTS: tuple[Accountant, ...] = ("prv", "rdp")
# Opacus' default Rényi orders stop at 63; small noise multipliers can need higher ones, so the
# search goes further (more orders only ever tighten the bound: it is a minimum over them).
RDP_ORDERS: tuple[float, ...] = tuple(
    [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64)) + [80, 96, 128, 192, 256, 384, 512, 1024]
)


@contextmanager
def quiet_prv() -> Iterator[None]:
    """Silence two harmless warnings of Opacus' PRV accountant: the RDP order warning it triggers
    internally (it bounds the support of the privacy loss with RDP, where a loose bound only widens
    the grid it integrates on), and numpy's log(0) at sample rate 1 (log(1 − q), in a branch that
    np.where then discards; a clinician unit with few clinicians samples every one each step)."""
    with warnings.catch_warnings(), np.errstate(divide="ignore"):
        warnings.filterwarnings("ignore", message="Optimal order is the largest alpha")
        yield


def _accountant(name: str) -> IAccountant:
    if name == "prv":
        return PRVAccountant()
    if name == "rdp":
        return RDPAccountant()
    raise ValueError(f"unknown accountant {name!r}; expected one of {ACCOUNTANTS}")


def _check(sample_rate: float, steps: int, delta: float) -> None:
    if not 0.0 < sample_rate <= 1.0:
        raise ValueError(f"sample_rate must be in (0, 1], got {sample_rate}")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta must be in (0, 1), got {delta}")


def epsilon_for(
    noise_multiplier: float, sample_rate: float, steps: int, delta: float, accountant: Accountant = "prv"
) -> float:
    """The epsilon spent by `steps` Poisson-sampled Gaussian steps, at the given delta."""
    _check(sample_rate, steps, delta)
    if noise_multiplier <= 0.0:
        return float("inf")  # no noise: no finite guarantee
    acc = _accountant(accountant)
    acc.history = [(noise_multiplier, sample_rate, steps)]
    if isinstance(acc, RDPAccountant):
        return float(acc.get_epsilon(delta=delta, alphas=list(RDP_ORDERS)))
    with quiet_prv():
        return float(acc.get_epsilon(delta=delta))


def calibrate_noise(
    target_epsilon: float, target_delta: float, sample_rate: float, steps: int, accountant: Accountant = "prv"
) -> float:
    """The smallest noise multiplier (to Opacus' search tolerance) whose epsilon is at most the target."""
    _check(sample_rate, steps, target_delta)
    if target_epsilon <= 0.0:
        raise ValueError(f"target_epsilon must be positive, got {target_epsilon}")
    _accountant(accountant)  # validates the name before the search
    with quiet_prv():
        sigma = get_noise_multiplier(
            target_epsilon=target_epsilon,
            target_delta=target_delta,
            sample_rate=sample_rate,
            steps=steps,
            accountant=accountant,
        )
    return float(sigma)
