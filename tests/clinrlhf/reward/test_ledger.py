"""The privacy budget ledger: each run is charged to its data snapshot before it trains, composed with
the snapshot's earlier runs, and refused when the cumulative ε would pass the budget."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from transformers import GPT2Model, PreTrainedTokenizerFast

from clinrlhf.reward.config import RewardConfig
from clinrlhf.reward.ledger import Budget, BudgetExceededError, PrivacyLedger
from clinrlhf.reward.pairs import PreferencePair
from clinrlhf.reward.trainer import train_reward
from privacy.dp.ledger import Mechanism, composed_epsilon

torch.set_num_threads(1)

DELTA = 1e-5
RUN = Mechanism(noise_multiplier=1.0, sample_rate=0.1, steps=50)
SNAPSHOT, OTHER = "a" * 64, "b" * 64


ONE, TWO = composed_epsilon([RUN], DELTA), composed_epsilon([RUN, RUN], DELTA)


def _ledger(tmp_path: Path, runs_allowed: float) -> PrivacyLedger:
    """A budget that fits `runs_allowed` copies of RUN (e.g. 1.5: one fits, two do not)."""
    budget = Budget(ONE + (TWO - ONE) * (runs_allowed - 1), DELTA)
    return PrivacyLedger(tmp_path / "home" / "privacy_ledger.json", budget)


def _charge(ledger: PrivacyLedger, snapshot: str) -> None:
    ledger.charge(snapshot, RUN, delta=DELTA, epsilon=ONE)


def test_charged_runs_are_recorded_in_a_json_file_and_composed(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path, 2.5)
    _charge(ledger, SNAPSHOT)
    _charge(ledger, SNAPSHOT)
    rows = json.loads(ledger.path.read_text())["runs"]
    assert [r["snapshot_sha256"] for r in rows] == [SNAPSHOT, SNAPSHOT]
    assert {k: rows[0][k] for k in ("noise_multiplier", "sample_rate", "steps", "delta", "privacy_unit")} == {
        "noise_multiplier": 1.0,
        "sample_rate": 0.1,
        "steps": 50,
        "delta": DELTA,
        "privacy_unit": "pair",
    }
    assert ledger.spent(SNAPSHOT) == pytest.approx(TWO)
    assert not list(ledger.path.parent.glob("*.tmp"))  # written via a temporary file and os.replace


def test_a_run_past_the_snapshots_budget_is_refused_and_not_recorded(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path, 1.5)
    _charge(ledger, SNAPSHOT)
    with pytest.raises(BudgetExceededError, match="max_cumulative_epsilon"):
        _charge(ledger, SNAPSHOT)
    assert len(ledger.entries(SNAPSHOT)) == 1


def test_each_snapshot_has_its_own_budget(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path, 1.5)
    _charge(ledger, SNAPSHOT)
    _charge(ledger, OTHER)  # SNAPSHOT's spend does not count against OTHER
    assert ledger.spent(OTHER) == pytest.approx(ledger.spent(SNAPSHOT))
    assert ledger.spent("c" * 64) == 0.0


def test_runs_under_different_privacy_units_are_not_composed(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path, 5)
    _charge(ledger, SNAPSHOT)
    with pytest.raises(BudgetExceededError, match="privacy units"):
        ledger.charge(SNAPSHOT, RUN, delta=DELTA, epsilon=1.0, privacy_unit="clinician")


def test_a_fresh_ledger_object_reads_the_same_file(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path, 2.5)
    _charge(ledger, SNAPSHOT)
    again = PrivacyLedger(ledger.path, ledger.budget)
    assert again.entries() == ledger.entries()


# Training wired to the ledger: 1 epoch over 100 pairs at ε = 2 each.
CONFIG = RewardConfig(epochs=1, batch_size=25, learning_rate=1e-2, target_epsilon=2.0, rater_buckets=None)


@pytest.fixture(scope="module")
def few_pairs(train_pairs: list[PreferencePair]) -> list[PreferencePair]:
    return train_pairs[:100]


def test_training_charges_the_ledger_and_refuses_the_run_that_would_pass_the_budget(
    tmp_path: Path,
    few_pairs: list[PreferencePair],
    tokenizer: PreTrainedTokenizerFast,
    backbone: Callable[..., GPT2Model],
) -> None:
    ledger = PrivacyLedger(tmp_path / "privacy_ledger.json", Budget(epsilon=3.0, delta=1e-4))
    result = train_reward(few_pairs, backbone(), tokenizer, CONFIG, ledger=ledger, snapshot_sha256=SNAPSHOT)
    (entry,) = ledger.entries(SNAPSHOT)
    assert (entry.noise_multiplier, entry.sample_rate, entry.steps, entry.delta) == (
        result.noise_multiplier,
        result.sample_rate,
        result.steps,
        result.delta,
    )
    assert entry.epsilon == pytest.approx(result.epsilon)
    steps: list[int] = []
    with pytest.raises(BudgetExceededError, match="cumulative ε"):
        train_reward(
            few_pairs,
            backbone(),
            tokenizer,
            CONFIG,
            ledger=ledger,
            snapshot_sha256=SNAPSHOT,
            progress=lambda done, _: steps.append(done),
        )
    assert len(ledger.entries(SNAPSHOT)) == 1
    assert steps == []  # the refused run stopped before its first step
    # The same data under another snapshot name has its own budget.
    train_reward(few_pairs, backbone(), tokenizer, CONFIG, ledger=ledger, snapshot_sha256=OTHER)


def test_a_non_private_run_is_always_over_budget(
    tmp_path: Path,
    few_pairs: list[PreferencePair],
    tokenizer: PreTrainedTokenizerFast,
    backbone: Callable[..., GPT2Model],
) -> None:
    ledger = PrivacyLedger(tmp_path / "privacy_ledger.json", Budget(epsilon=100.0, delta=1e-4))
    config = RewardConfig(epochs=1, batch_size=25, dp=False, rater_buckets=None)
    with pytest.raises(BudgetExceededError, match="inf"):
        train_reward(few_pairs, backbone(), tokenizer, config, ledger=ledger, snapshot_sha256=SNAPSHOT)


def test_a_ledger_without_a_snapshot_is_refused(
    few_pairs: list[PreferencePair], tokenizer: PreTrainedTokenizerFast, backbone: Callable[..., GPT2Model]
) -> None:
    ledger = PrivacyLedger(Path("unused.json"), Budget(epsilon=1.0, delta=1e-5))
    with pytest.raises(ValueError, match="snapshot_sha256"):
        train_reward(few_pairs, backbone(), tokenizer, CONFIG, ledger=ledger)
