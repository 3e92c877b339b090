"""The CLI fails with a non-zero status and one line that says why."""

import os
import subprocess
import sys


def _clinrlhf(*args: str, home) -> subprocess.CompletedProcess:
    env = {**os.environ, "CLINRLHF_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "clinrlhf", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_missing_config_file(tmp_path):
    done = _clinrlhf("pipeline", "--config", str(tmp_path / "nope.json"), home=tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "config file not found" in done.stderr


def test_unknown_config_key_is_named(tmp_path):
    (tmp_path / "c.json").write_text('{"reward": {"epsilon": 3}}')
    done = _clinrlhf("pipeline", "--config", str(tmp_path / "c.json"), home=tmp_path)
    assert done.returncode == 2 and "unknown setting reward.epsilon" in done.stderr


def test_lineage_of_unknown_run(tmp_path):
    done = _clinrlhf("lineage", "0123456789abcdef", home=tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1


def test_help_lists_every_command(tmp_path):
    done = _clinrlhf("--help", home=tmp_path)
    for command in ("quickstart", "serve", "token", "ingest", "stats", "pipeline", "report", "lineage"):
        assert command in done.stdout


def _ledger_opened_at(home, delta: float) -> float:
    """A deployment whose privacy ledger was opened at `delta` by an earlier run -> its odometer."""
    from clinrlhf.reward.ledger import LEDGER_FILE, Budget, PrivacyLedger
    from privacy.dp.renyi_filter import Mechanism

    ledger = PrivacyLedger(home / LEDGER_FILE, Budget(epsilon=24.0, delta=delta))
    ledger.charge(
        "a" * 64, Mechanism(1.0, 0.05, 100), delta=delta, epsilon=1.0, n_units=1000, privacy_unit="judgment"
    )
    return ledger.spent("judgment")


def test_a_pipeline_with_another_delta_than_the_ledgers_is_refused_before_it_trains(tmp_path):
    _ledger_opened_at(tmp_path, 1e-5)
    done = _clinrlhf("pipeline", home=tmp_path)  # CLINRLHF_PRIVACY_DELTA defaults to 1e-6
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "CLINRLHF_PRIVACY_DELTA" in done.stderr and "1e-05" in done.stderr
    assert not (tmp_path / "runs").exists()  # refused before the supervised policy was trained


def test_a_pipeline_whose_odometer_is_spent_is_refused_before_it_trains(tmp_path):
    spent = _ledger_opened_at(tmp_path, 1e-6)
    budget = str(spent / 2)  # the odometer of the pipeline's unit already stands above it
    env = {**os.environ, "CLINRLHF_HOME": str(tmp_path), "CLINRLHF_PRIVACY_BUDGET_EPSILON": budget}
    done = subprocess.run(
        [sys.executable, "-m", "clinrlhf", "pipeline"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and "budget" in done.stderr
    assert not (tmp_path / "runs").exists()
