"""The multi-seed table's arithmetic: mean, sample sd, and the worst run in each metric's direction."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from seed_table import aggregate, markdown  # noqa: E402

ROWS = [
    {"seed": 0, "concordance": 0.90, "unsafe_rate": 0.01, "kl_over_target": 1.1, "age_band_gap": 0.12},
    {"seed": 1, "concordance": 0.80, "unsafe_rate": 0.05, "kl_over_target": 1.6, "age_band_gap": None},
    {"seed": 2, "concordance": 0.85, "unsafe_rate": 0.03, "kl_over_target": 0.9, "age_band_gap": 0.20},
]


def test_mean_sd_and_the_worst_run_in_the_direction_that_fails_a_target() -> None:
    stats = aggregate(ROWS)
    assert stats["concordance"]["mean"] == pytest.approx(0.85)
    assert stats["concordance"]["sd"] == pytest.approx(0.05)  # sample sd: sqrt(0.005 / 2)
    assert stats["concordance"]["worst"] == 0.80  # the lowest concordance
    assert stats["unsafe_rate"]["worst"] == 0.05 and stats["kl_over_target"]["worst"] == 1.6  # the highest
    assert stats["unsafe_rate"]["sd"] == pytest.approx(0.02)


def test_missing_values_are_left_out_not_counted_as_zero() -> None:
    stats = aggregate(ROWS)
    assert stats["age_band_gap"] == {
        "mean": pytest.approx(0.16),
        "sd": pytest.approx(math.sqrt(0.0032)),
        "worst": 0.20,
        "n": 2.0,
    }
    assert "epsilon" not in stats
    single = aggregate(ROWS[:1])
    assert single["concordance"]["sd"] is None and single["concordance"]["worst"] == 0.90


def test_the_table_has_a_line_per_seed_then_mean_and_worst() -> None:
    table = markdown(ROWS, "test").splitlines()
    assert table[0] == "Cohort: test; 3 pipeline seeds."
    assert table[-2].startswith("| mean ± sd | 0.850 ± 0.050 | 0.030 ± 0.020 |")
    assert table[-1].startswith("| worst | 0.800 | 0.050 | 1.60 |")
    assert "| 1 | 0.800 | 0.050 | 1.60 | – |" in table


def test_gaps_count_only_groups_with_enough_scenarios() -> None:
    from pipeline_seeds import attribute_gaps

    metrics = {
        "eval.concordance.age_band.18-39": 0.9,
        "eval.n.age_band.18-39": 50.0,
        "eval.concordance.age_band.80plus": 0.7,
        "eval.n.age_band.80plus": 40.0,
        "eval.concordance.age_band.40-59": 0.2,  # too few to judge: left out
        "eval.n.age_band.40-59": 5.0,
        "eval.concordance.sex.female": 0.8,
        "eval.n.sex.female": 90.0,
        "eval.before.concordance.sex.male": 0.1,  # the baseline's, not the aligned policy's
        "eval.before.n.sex.male": 90.0,
    }
    gaps = attribute_gaps(metrics, min_n=30)
    assert gaps["age_band"] == pytest.approx(0.2) and gaps["sex"] is None
