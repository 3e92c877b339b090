"""A comparison charges a copy of the home's privacy ledger: the home's file is never written, every
charge is recorded and composed with the home's runs on the same snapshot."""

from __future__ import annotations

from pathlib import Path

import pytest

from clinrlhf.alignment.ledger_copy import COPY_BUDGET_EPSILON, LedgerCopy, finite_or_none
from clinrlhf.reward.ledger import LEDGER_FILE, Budget, PrivacyLedger
from privacy.dp.renyi_filter import Mechanism, filter_epsilon

SNAPSHOT = "ab" * 32
PIPELINE = Mechanism(1.1, 0.01, 500)
METHOD = Mechanism(0.9, 0.02, 300)


def _charge(ledger: PrivacyLedger, mechanism: Mechanism, label: str) -> None:
    ledger.charge(SNAPSHOT, mechanism, delta=1e-5, epsilon=8.0, n_units=1000, label=label)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A home whose ledger holds the pipeline's reward run, its budget nearly spent."""
    home = tmp_path / "home"
    home.mkdir()
    _charge(PrivacyLedger(home / LEDGER_FILE, Budget(10.0, 1e-5)), PIPELINE, "reward")
    return home


def test_the_copy_records_and_composes_and_the_home_is_untouched(home: Path, tmp_path: Path) -> None:
    before = (home / LEDGER_FILE).read_bytes()
    work = tmp_path / "work"
    work.mkdir()
    copy = LedgerCopy(home / LEDGER_FILE, work, SNAPSHOT, delta=1e-3, accountant="rdp")
    assert copy.delta == 1e-5  # the home's δ, fixed by its first run, not the one passed in
    assert copy.ledger.budget.epsilon == COPY_BUDGET_EPSILON and copy.home_entries == 1
    assert copy.record("nothing charged") is None
    _charge(copy.ledger, METHOD, "dpo")
    after = copy.record("DPO (DP)")
    both = filter_epsilon([PIPELINE, METHOD], 1e-5)
    assert after == pytest.approx(both) and after > copy.steps[0]["composed_epsilon"]
    assert [s["after"] for s in copy.steps] == ["the home's ledger (the pipeline)", "DPO (DP)"]
    assert copy.mechanisms() == ([PIPELINE], [("DPO (DP)", METHOD)])
    assert copy.combinations() == {"pipeline + DPO (DP)": pytest.approx(both)}
    assert (home / LEDGER_FILE).read_bytes() == before


def test_a_home_without_a_ledger_starts_the_copy_empty(tmp_path: Path) -> None:
    copy = LedgerCopy(tmp_path / "no-such" / LEDGER_FILE, tmp_path, SNAPSHOT, delta=1e-3, accountant="rdp")
    assert copy.delta == 1e-3 and copy.home_entries == 0 and copy.steps[0]["composed_epsilon"] == 0.0


def test_an_infinite_epsilon_is_reported_as_none() -> None:
    assert finite_or_none(float("inf")) is None and finite_or_none(None) is None
    assert finite_or_none(2.5) == 2.5
