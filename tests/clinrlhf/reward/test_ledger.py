"""The privacy ledger: one odometer per deployment (one ledger file in CLINRLHF_HOME) and privacy unit,
shared by every snapshot, re-export and retrain on the same people. Each run is charged before it
trains, composed with the odometer's earlier runs by a Rényi filter at the deployment's δ (fixed on
first use), and refused when the composed ε would pass the budget or δ would exceed 1/n."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from transformers import GPT2Model, PreTrainedTokenizerFast

from clinrlhf.reward.config import RewardConfig
from clinrlhf.reward.ledger import LEDGER_FILE, Budget, BudgetExceededError, PrivacyLedger
from clinrlhf.reward.pairs import PreferencePair
from clinrlhf.reward.trainer import train_reward
from privacy.dp.opacus_config import DPConfig
from privacy.dp.renyi_filter import Mechanism, filter_epsilon

torch.set_num_threads(1)

DELTA = 1e-5
N = 1000  # privacy units of every charged run below: 1/N is above DELTA
RUN = Mechanism(noise_multiplier=1.0, sample_rate=0.1, steps=50)
SNAPSHOT, REEXPORT = "a" * 64, "b" * 64  # the same people, exported twice: two digests

ONE, TWO = filter_epsilon([RUN], DELTA), filter_epsilon([RUN, RUN], DELTA)


def _ledger(tmp_path: Path, runs_allowed: float, delta: float = DELTA) -> PrivacyLedger:
    """A budget that fits `runs_allowed` copies of RUN (e.g. 1.5: one fits, two do not)."""
    budget = Budget(ONE + (TWO - ONE) * (runs_allowed - 1), delta)
    return PrivacyLedger(tmp_path / "home" / LEDGER_FILE, budget)


def _charge(ledger: PrivacyLedger, snapshot: str, unit: str = "pair", delta: float = DELTA) -> None:
    ledger.charge(snapshot, RUN, delta=delta, epsilon=1.0, n_units=N, privacy_unit=unit)  # type: ignore[arg-type]


def test_charged_runs_are_recorded_in_a_json_file_and_composed_by_the_filter(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path, 2.5)
    _charge(ledger, SNAPSHOT)
    _charge(ledger, SNAPSHOT)
    data = json.loads(ledger.path.read_text())
    rows = data["runs"]
    assert [r["snapshot_sha256"] for r in rows] == [SNAPSHOT, SNAPSHOT]
    assert {k: rows[0][k] for k in ("noise_multiplier", "sample_rate", "steps", "delta", "n_units")} == {
        "noise_multiplier": 1.0,
        "sample_rate": 0.1,
        "steps": 50,
        "delta": DELTA,
        "n_units": N,
    }
    assert ledger.spent("pair") == pytest.approx(TWO)
    assert TWO < 2 * ONE  # composed, never summed
    assert not list(ledger.path.parent.glob("*.tmp"))  # written via a temporary file and os.replace


def test_a_reexported_snapshot_of_the_same_people_shares_the_budget(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path, 1.5)
    _charge(ledger, SNAPSHOT)
    with pytest.raises(BudgetExceededError, match="max_cumulative_epsilon"):
        _charge(ledger, REEXPORT)  # another digest is no fresh budget
    assert [e.snapshot_sha256 for e in ledger.entries()] == [SNAPSHOT]


def test_a_run_past_the_budget_is_refused_and_not_recorded(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path, 1.5)
    _charge(ledger, SNAPSHOT)
    with pytest.raises(BudgetExceededError, match="Rényi filter"):
        _charge(ledger, SNAPSHOT)
    assert len(ledger.entries()) == 1


def test_each_privacy_unit_has_its_own_odometer(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path, 1.5)
    _charge(ledger, SNAPSHOT, unit="pair")
    _charge(ledger, SNAPSHOT, unit="clinician")
    assert ledger.spent("pair") == pytest.approx(ONE) == ledger.spent("clinician")
    assert ledger.spent("patient") == 0.0
    with pytest.raises(ValueError, match="privacy unit"):
        ledger.spent(SNAPSHOT)  # an odometer is named by its unit, not by a digest


def test_the_deployments_delta_is_fixed_on_first_use_and_a_runs_own_delta_cannot_change_it(
    tmp_path: Path,
) -> None:
    ledger = _ledger(tmp_path, 2.5)
    _charge(ledger, SNAPSHOT, delta=1e-3)  # the run reports its own guarantee at its own δ
    assert json.loads(ledger.path.read_text())["delta"] == DELTA
    assert ledger.spent("pair") == pytest.approx(ONE)  # composed at the deployment's δ
    assert ledger.entries()[0].delta == 1e-3


def test_a_ledger_opened_with_another_delta_is_refused_by_name(tmp_path: Path) -> None:
    _charge(_ledger(tmp_path, 2.5), SNAPSHOT)
    other = _ledger(tmp_path, 2.5, delta=1e-6)
    with pytest.raises(BudgetExceededError, match="CLINRLHF_PRIVACY_DELTA") as err:
        _charge(other, SNAPSHOT, delta=1e-6)
    assert "1e-05" in str(err.value) and "\n" not in str(err.value)
    assert len(other.entries()) == 1 and json.loads(other.path.read_text())["delta"] == DELTA


def test_a_delta_above_one_over_n_is_refused(tmp_path: Path) -> None:
    loose = _ledger(tmp_path / "loose", 5, delta=0.01)
    with pytest.raises(BudgetExceededError, match="1/n"):
        _charge(loose, SNAPSHOT)  # the deployment's 0.01 > 1/1000
    assert not loose.path.exists()  # a refused first run fixes nothing
    with pytest.raises(BudgetExceededError, match="1/n"):
        _charge(_ledger(tmp_path, 5), SNAPSHOT, delta=0.01)  # the run's own δ, likewise


def test_a_version_1_ledger_keeps_its_runs(tmp_path: Path) -> None:
    """Runs charged under the per-snapshot layout still count; the δ is fixed at the next charge."""
    ledger = _ledger(tmp_path, 2.5)
    ledger.path.parent.mkdir(parents=True)
    row = {
        "snapshot_sha256": SNAPSHOT,
        "noise_multiplier": 1.0,
        "sample_rate": 0.1,
        "steps": 50,
        "delta": 1e-4,
        "epsilon": 3.0,
        "privacy_unit": "pair",
        "accountant": "prv",
        "recorded_at": "2026-01-01T00:00:00+00:00",
        "label": "reward",
    }
    ledger.path.write_text(json.dumps({"version": 1, "runs": [row]}))
    assert ledger.spent("pair") == pytest.approx(ONE)
    _charge(ledger, REEXPORT)
    assert ledger.spent("pair") == pytest.approx(TWO)
    assert json.loads(ledger.path.read_text())["delta"] == DELTA


def test_a_fresh_ledger_object_reads_the_same_file(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path, 2.5)
    _charge(ledger, SNAPSHOT)
    again = PrivacyLedger(ledger.path, ledger.budget)
    assert again.entries() == ledger.entries()


# Training wired to the ledger: 1 epoch over 100 pairs at ε = 2 each, one pair per unit.
CONFIG = RewardConfig(
    epochs=1,
    batch_size=25,
    learning_rate=1e-2,
    dp=DPConfig(target_epsilon=2.0),
    privacy_unit="pair",
    rater_buckets=None,
)


@pytest.fixture(scope="module")
def few_pairs(train_pairs: list[PreferencePair]) -> list[PreferencePair]:
    return train_pairs[:100]


def test_training_charges_the_odometer_and_refuses_the_retrain_that_would_pass_the_budget(
    tmp_path: Path,
    few_pairs: list[PreferencePair],
    tokenizer: PreTrainedTokenizerFast,
    backbone: Callable[..., GPT2Model],
) -> None:
    probe = PrivacyLedger(tmp_path / "probe.json", Budget(epsilon=1e6, delta=1e-4))
    train_reward(few_pairs, backbone(), tokenizer, CONFIG, ledger=probe, snapshot_sha256=SNAPSHOT)
    (run,) = probe.entries()
    once, twice = filter_epsilon([run.mechanism], 1e-4), filter_epsilon([run.mechanism] * 2, 1e-4)

    ledger = PrivacyLedger(tmp_path / LEDGER_FILE, Budget(epsilon=(once + twice) / 2, delta=1e-4))
    result = train_reward(few_pairs, backbone(), tokenizer, CONFIG, ledger=ledger, snapshot_sha256=SNAPSHOT)
    (entry,) = ledger.entries()
    assert (entry.noise_multiplier, entry.sample_rate, entry.steps, entry.delta, entry.n_units) == (
        result.noise_multiplier,
        result.sample_rate,
        result.steps,
        result.delta,
        len(few_pairs),
    )
    assert entry.epsilon == pytest.approx(result.epsilon)
    steps: list[int] = []
    for digest in (SNAPSHOT, REEXPORT):  # a re-export of the same people is no fresh budget
        with pytest.raises(BudgetExceededError, match="composed ε"):
            train_reward(
                few_pairs,
                backbone(),
                tokenizer,
                CONFIG,
                ledger=ledger,
                snapshot_sha256=digest,
                progress=lambda done, _: steps.append(done),
            )
    assert len(ledger.entries()) == 1
    assert steps == []  # the refused runs stopped before their first step


def test_a_run_whose_delta_is_above_one_over_n_never_starts(
    tmp_path: Path,
    few_pairs: list[PreferencePair],
    tokenizer: PreTrainedTokenizerFast,
    backbone: Callable[..., GPT2Model],
) -> None:
    ledger = PrivacyLedger(tmp_path / LEDGER_FILE, Budget(epsilon=1e6, delta=0.05))  # 1/n = 0.01
    steps: list[int] = []
    with pytest.raises(BudgetExceededError, match="1/n"):
        train_reward(
            few_pairs,
            backbone(),
            tokenizer,
            CONFIG,
            ledger=ledger,
            snapshot_sha256=SNAPSHOT,
            progress=lambda done, _: steps.append(done),
        )
    assert steps == [] and ledger.entries() == []


def test_a_non_private_run_is_always_over_budget(
    tmp_path: Path,
    few_pairs: list[PreferencePair],
    tokenizer: PreTrainedTokenizerFast,
    backbone: Callable[..., GPT2Model],
) -> None:
    ledger = PrivacyLedger(tmp_path / LEDGER_FILE, Budget(epsilon=100.0, delta=1e-4))
    config = replace(CONFIG, dp=DPConfig(enabled=False))
    with pytest.raises(BudgetExceededError, match="inf"):
        train_reward(few_pairs, backbone(), tokenizer, config, ledger=ledger, snapshot_sha256=SNAPSHOT)


def test_a_ledger_without_a_snapshot_is_refused(
    few_pairs: list[PreferencePair], tokenizer: PreTrainedTokenizerFast, backbone: Callable[..., GPT2Model]
) -> None:
    ledger = PrivacyLedger(Path("unused.json"), Budget(epsilon=1.0, delta=1e-5))
    with pytest.raises(ValueError, match="snapshot_sha256"):
        train_reward(few_pairs, backbone(), tokenizer, CONFIG, ledger=ledger)


def test_a_charged_run_is_calibrated_at_the_deployments_delta(
    tmp_path: Path,
    few_pairs: list[PreferencePair],
    tokenizer: PreTrainedTokenizerFast,
    backbone: Callable[..., GPT2Model],
) -> None:
    """One δ per deployment: the (ε, δ) a run reports is at the δ its odometer composes at, not at
    the run's own default of 1/(10 n)."""
    ledger = PrivacyLedger(tmp_path / LEDGER_FILE, Budget(epsilon=1e6, delta=3e-4))
    result = train_reward(few_pairs, backbone(), tokenizer, CONFIG, ledger=ledger, snapshot_sha256=SNAPSHOT)
    assert CONFIG.dp.delta_for(len(few_pairs)) != 3e-4  # the default would have been another δ
    assert result.delta == 3e-4 and ledger.delta == 3e-4
    (entry,) = ledger.entries()
    assert entry.delta == 3e-4
