"""Privacy accounting: calibration hits the budget, and Google's dp_accounting agrees independently."""

from __future__ import annotations

import dp_accounting
import pytest
from dp_accounting.pld import PLDAccountant
from dp_accounting.rdp import RdpAccountant

from privacy.dp import calibrate_noise, epsilon_for

# A reward-model-sized run: 3000 pairs, expected batch 64, 4 epochs.
RATE, STEPS, DELTA = 1 / 47, 188, 1 / 30000


@pytest.fixture(scope="module")
def sigma() -> float:
    return calibrate_noise(8.0, DELTA, RATE, STEPS)


def _event(sigma: float) -> dp_accounting.DpEvent:
    return dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(RATE, dp_accounting.GaussianDpEvent(sigma)), STEPS
    )


def test_calibrated_noise_spends_at_most_the_budget_and_nearly_all_of_it(sigma: float) -> None:
    spent = epsilon_for(sigma, RATE, STEPS, DELTA)
    assert 7.9 <= spent <= 8.0


def test_epsilon_falls_with_more_noise_and_rises_with_more_steps(sigma: float) -> None:
    base = epsilon_for(sigma, RATE, STEPS, DELTA)
    assert epsilon_for(sigma * 1.5, RATE, STEPS, DELTA) < base
    assert epsilon_for(sigma, RATE, STEPS * 2, DELTA) > base


def test_rdp_is_looser_than_prv(sigma: float) -> None:
    assert epsilon_for(sigma, RATE, STEPS, DELTA, "rdp") > epsilon_for(sigma, RATE, STEPS, DELTA, "prv")


def test_google_pld_accountant_agrees_with_prv_within_five_percent(sigma: float) -> None:
    pld = PLDAccountant(value_discretization_interval=1e-3).compose(_event(sigma))
    ours = epsilon_for(sigma, RATE, STEPS, DELTA)
    assert pld.get_epsilon(DELTA) == pytest.approx(ours, rel=0.05)


def test_google_rdp_accountant_is_never_tighter_than_prv(sigma: float) -> None:
    rdp = RdpAccountant().compose(_event(sigma))
    assert rdp.get_epsilon(DELTA) >= epsilon_for(sigma, RATE, STEPS, DELTA)


def test_no_noise_means_no_finite_guarantee() -> None:
    assert epsilon_for(0.0, RATE, STEPS, DELTA) == float("inf")


@pytest.mark.parametrize(
    ("sample_rate", "steps", "delta", "accountant"),
    [
        (0.0, 10, 1e-5, "prv"),
        (1.5, 10, 1e-5, "prv"),
        (0.1, 0, 1e-5, "prv"),
        (0.1, 10, 0.0, "prv"),
        (0.1, 10, 1e-5, "gdp"),
    ],
)
def test_invalid_mechanisms_are_refused(
    sample_rate: float, steps: int, delta: float, accountant: str
) -> None:
    with pytest.raises(ValueError):
        epsilon_for(1.0, sample_rate, steps, delta, accountant)  # type: ignore[arg-type]


def test_calibration_refuses_a_non_positive_budget() -> None:
    with pytest.raises(ValueError, match="target_epsilon"):
        calibrate_noise(0.0, DELTA, RATE, STEPS)
