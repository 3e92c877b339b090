"""Composing runs on one snapshot: more runs spend more, the composition is the accountant run on the
concatenated history, Google's dp_accounting agrees, and a run past the budget is refused."""

from __future__ import annotations

import dp_accounting
import pytest
from dp_accounting.pld import PLDAccountant
from dp_accounting.rdp import RdpAccountant

from privacy.dp import epsilon_for
from privacy.dp.ledger import Budget, BudgetExceededError, Mechanism, check_budget, composed_epsilon

DELTA = 1e-5
FIRST = Mechanism(noise_multiplier=1.1, sample_rate=0.02, steps=300)
SECOND = Mechanism(noise_multiplier=0.9, sample_rate=0.05, steps=100)


def _event(m: Mechanism) -> dp_accounting.DpEvent:
    return dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(m.sample_rate, dp_accounting.GaussianDpEvent(m.noise_multiplier)),
        m.steps,
    )


@pytest.mark.parametrize("accountant", ["prv", "rdp"])
def test_two_runs_spend_more_than_either_alone(accountant: str) -> None:
    both = composed_epsilon([FIRST, SECOND], DELTA, accountant)  # type: ignore[arg-type]
    assert both > composed_epsilon([FIRST], DELTA, accountant)  # type: ignore[arg-type]
    assert both > composed_epsilon([SECOND], DELTA, accountant)  # type: ignore[arg-type]


@pytest.mark.parametrize("accountant", ["prv", "rdp"])
def test_one_run_composes_to_its_own_epsilon(accountant: str) -> None:
    alone = composed_epsilon([FIRST], DELTA, accountant)  # type: ignore[arg-type]
    assert alone == pytest.approx(epsilon_for(1.1, 0.02, 300, DELTA, accountant), rel=1e-9)  # type: ignore[arg-type]


def test_repeating_a_run_is_the_same_mechanism_for_twice_the_steps() -> None:
    twice = composed_epsilon([FIRST, FIRST], DELTA)
    assert twice == pytest.approx(epsilon_for(1.1, 0.02, 600, DELTA), rel=0.01)


def test_google_pld_on_the_concatenated_history_agrees_within_five_percent() -> None:
    pld = PLDAccountant(value_discretization_interval=1e-3)
    pld.compose(dp_accounting.ComposedDpEvent([_event(FIRST), _event(SECOND)]))
    assert pld.get_epsilon(DELTA) == pytest.approx(composed_epsilon([FIRST, SECOND], DELTA), rel=0.05)


def test_google_rdp_on_the_concatenated_history_is_never_tighter_than_prv() -> None:
    rdp = RdpAccountant().compose(dp_accounting.ComposedDpEvent([_event(FIRST), _event(SECOND)]))
    assert rdp.get_epsilon(DELTA) >= composed_epsilon([FIRST, SECOND], DELTA)


def test_no_runs_spend_nothing_and_a_noiseless_run_spends_everything() -> None:
    assert composed_epsilon([], DELTA) == 0.0
    assert composed_epsilon([FIRST, Mechanism(0.0, 0.1, 10)], DELTA) == float("inf")


def test_a_run_within_the_budget_returns_the_cumulative_epsilon() -> None:
    budget = Budget(epsilon=composed_epsilon([FIRST, SECOND], DELTA) + 0.1, delta=DELTA)
    assert check_budget([FIRST], SECOND, budget) == pytest.approx(composed_epsilon([FIRST, SECOND], DELTA))


def test_a_run_past_the_budget_is_refused_with_a_one_line_reason() -> None:
    budget = Budget(epsilon=composed_epsilon([FIRST], DELTA) + 0.1, delta=DELTA)
    check_budget([], FIRST, budget)  # alone it fits
    with pytest.raises(BudgetExceededError, match="max_cumulative_epsilon") as err:
        check_budget([FIRST], SECOND, budget)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Mechanism(1.0, 0.0, 10),
        lambda: Mechanism(1.0, 0.1, 0),
        lambda: Mechanism(-1.0, 0.1, 10),
        lambda: Budget(0.0, 1e-5),
        lambda: Budget(1.0, 1.0),
    ],
)
def test_invalid_mechanisms_and_budgets_are_refused(make) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError):
        make()
