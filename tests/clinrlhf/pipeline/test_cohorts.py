"""Four cohorts with three jobs: training, validation (decisions), test (the report), each drawn on
its own seed, and the test cohort sealed where tuning happens."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from clinrlhf.pipeline.cohorts import (
    CohortSizes,
    TestCohortSealedError,
    cohort_seeds,
    make_cohorts,
    sealed_test_cohort,
)
from clinrlhf.pipeline.config import PipelineConfig, load_pipeline_config
from clinrlhf.world.world import load_world

DAY = date(2025, 6, 1)


def _ids(patients: list) -> set[str]:
    return {p.bundle["entry"][0]["resource"]["id"] for p in patients}


def test_each_cohort_is_drawn_on_its_own_seed_and_none_shares_a_patient() -> None:
    cohorts = make_cohorts(load_world(), CohortSizes(20, 20, 20, 20), 0, DAY)
    groups = [cohorts.history, cohorts.feedback, cohorts.validation, cohorts.test]
    assert [len(g) for g in groups] == [20, 20, 20, 20]
    ids = [_ids(g) for g in groups]
    assert sum(len(i) for i in ids) == len(set().union(*ids))  # disjoint
    # One cohort alone is drawn exactly as beside the others (benchmarks re-draw one cohort only).
    alone = make_cohorts(load_world(), CohortSizes(test=20), 0, DAY)
    assert _ids(alone.test) == ids[3] and alone.history == alone.validation == []


def test_no_cohort_seed_of_one_run_is_any_cohort_seed_of_another() -> None:
    seeds = [s for run in range(50) for s in cohort_seeds(run)]
    assert len(seeds) == len(set(seeds))


def test_the_test_cohort_is_new_and_validation_is_the_cohort_old_defaults_were_tuned_on() -> None:
    # Before the split, make_cohorts drew the reported ("held-out") cohort on 3·seed + 2.
    assert cohort_seeds(0).validation == 2 and cohort_seeds(4).validation == 14
    assert all(cohort_seeds(seed).test not in range(10_000) for seed in range(20))


def test_a_sealed_test_cohort_raises_by_name_and_is_not_even_drawn() -> None:
    cohorts = make_cohorts(load_world(), CohortSizes(validation=5, test=5), 1, DAY)
    with sealed_test_cohort("benchmarks/some_sweep.py"):
        with pytest.raises(TestCohortSealedError, match="some_sweep.py is a tuning entry point"):
            _ = cohorts.test
        assert len(cohorts.validation) == 5
        inside = make_cohorts(load_world(), CohortSizes(validation=5, test=5), 1, DAY)
    assert inside.sealed_test == [] and len(cohorts.test) == 5  # unsealed again after the block


def test_the_config_names_validation_and_test_and_an_old_heldout_key_still_loads(tmp_path: Path) -> None:
    config = PipelineConfig()
    assert config.cohort_sizes() == CohortSizes(
        config.history_patients, config.feedback_patients, 0, config.test_patients
    )
    assert config.cohort_sizes(validation=True).validation == config.validation_patients > 0
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"heldout_patients": 123}))
    assert load_pipeline_config(path).test_patients == 123
    path.write_text(json.dumps({"heldout_patients": 1, "test_patients": 2}))
    with pytest.raises(ValueError, match="old name of test_patients"):
        load_pipeline_config(path)
