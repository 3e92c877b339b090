"""Composing runs on the same people: for a sequence fixed in advance, the accountant run on the
concatenated history (Google's dp_accounting agrees); for the ledger's refusals, which must hold when
retraining depends on earlier results, a Rényi filter (composed RDP, never a sum of ε)."""

from __future__ import annotations

import dp_accounting
import numpy as np
import pytest
from dp_accounting.pld import PLDAccountant
from dp_accounting.rdp import RdpAccountant

from privacy.dp import epsilon_for
from privacy.dp.renyi_filter import (
    RDP_FILTER_ORDERS,
    Budget,
    BudgetExceededError,
    Mechanism,
    check_budget,
    check_delta_for_units,
    composed_epsilon,
    filter_epsilon,
    rdp_curve,
)

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


def test_a_run_within_the_budget_returns_the_filters_composed_epsilon() -> None:
    budget = Budget(epsilon=filter_epsilon([FIRST, SECOND], DELTA) + 0.1, delta=DELTA)
    assert check_budget([FIRST], SECOND, budget) == pytest.approx(filter_epsilon([FIRST, SECOND], DELTA))


def test_a_run_past_the_budget_is_refused_with_a_one_line_reason() -> None:
    budget = Budget(epsilon=filter_epsilon([FIRST], DELTA) + 0.1, delta=DELTA)
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


# The Rényi filter: what the ledger refuses by. Google's RDP accountant, on the same orders and at
# δ/|Λ| (the filter's share of δ per order), is the independent reference.


def _google_filter_epsilon(mechanisms: list[Mechanism], delta: float) -> float:
    rdp = RdpAccountant(orders=list(RDP_FILTER_ORDERS))
    rdp.compose(dp_accounting.ComposedDpEvent([_event(m) for m in mechanisms]))
    return float(rdp.get_epsilon(delta / len(RDP_FILTER_ORDERS)))


def test_a_runs_curve_is_the_sampled_gaussians_rdp_at_every_order() -> None:
    rdp = RdpAccountant(orders=list(RDP_FILTER_ORDERS)).compose(_event(FIRST))
    # _rdp is the accountant's per-order state; dp_accounting has no public getter for it.
    assert rdp_curve(FIRST) == pytest.approx(list(rdp._rdp), rel=1e-6)


def test_the_filters_composed_epsilon_is_googles_rdp_at_delta_over_the_number_of_orders() -> None:
    for runs in ([FIRST], [FIRST, SECOND], [FIRST, SECOND, FIRST]):
        assert filter_epsilon(runs, DELTA) == pytest.approx(_google_filter_epsilon(runs, DELTA), rel=1e-6)


def test_composition_is_never_a_sum_of_the_runs_epsilons() -> None:
    own = [filter_epsilon([m], DELTA) for m in (FIRST, SECOND, FIRST)]
    composed = filter_epsilon([FIRST, SECOND, FIRST], DELTA)
    assert max(own) < composed < 0.8 * sum(own)
    prv_sum = sum(
        epsilon_for(m.noise_multiplier, m.sample_rate, m.steps, DELTA) for m in (FIRST, SECOND, FIRST)
    )
    assert composed < prv_sum


def test_the_filter_admits_a_run_iff_some_order_stays_within_its_own_budget() -> None:
    """The slow, obvious reference: per-order budgets B(α) from inverting the conversion at δ/|Λ|."""
    orders = np.array(RDP_FILTER_ORDERS)
    share = np.log(DELTA / len(orders))
    spent = np.asarray(rdp_curve(FIRST)) + np.asarray(rdp_curve(SECOND))
    for epsilon in np.linspace(0.5, 6.0, 23):
        budgets = epsilon - np.log((orders - 1) / orders) + (share + np.log(orders)) / (orders - 1)
        fits = bool(np.any(spent <= budgets))
        try:
            check_budget([FIRST], SECOND, Budget(float(epsilon), DELTA))
            admitted = True
        except BudgetExceededError:
            admitted = False
        assert admitted == fits, epsilon


def test_the_refusal_is_the_filters_even_where_a_fixed_sequence_would_fit() -> None:
    """PRV composition of a sequence fixed in advance is tighter, but adaptive retraining voids it:
    a budget between the two is refused."""
    fixed = composed_epsilon([FIRST, SECOND], DELTA)
    adaptive = filter_epsilon([FIRST, SECOND], DELTA)
    assert fixed < adaptive
    with pytest.raises(BudgetExceededError, match="Rényi filter"):
        check_budget([FIRST], SECOND, Budget(epsilon=(fixed + adaptive) / 2, delta=DELTA))


def test_a_noiseless_run_is_never_admitted() -> None:
    with pytest.raises(BudgetExceededError, match="inf"):
        check_budget([], Mechanism(0.0, 0.1, 10), Budget(1e6, DELTA))


@pytest.mark.parametrize(
    ("delta", "n_units", "refused"), [(0.1, 10, False), (0.2, 10, True), (1e-6, 10**6, False)]
)
def test_a_delta_above_one_over_n_is_refused(delta: float, n_units: int, refused: bool) -> None:
    if refused:
        with pytest.raises(BudgetExceededError, match="1/n"):
            check_delta_for_units(delta, n_units)
    else:
        check_delta_for_units(delta, n_units)
