"""Race and ethnicity as audited subgroups: in subgroup_of, the bootstrap intervals, the MLflow
metric names and the promotion criterion on subgroup gaps."""

from __future__ import annotations

import pytest

from clinrlhf.compliance.criteria import AcceptanceCriteria, check_criteria
from clinrlhf.compliance.evalmetrics import parse_rates
from clinrlhf.eval.bootstrap import interval_metrics, outcome_intervals
from clinrlhf.eval.evaluate import Evaluation, rates, subgroup_of
from clinrlhf.world.facts import PatientFacts
from clinrlhf.world.scoring import Outcome


def test_subgroup_of_adds_race_and_ethnicity_only_when_recorded():
    plain = PatientFacts(age=45, sex="female")
    assert subgroup_of(plain) == {"sex": "female", "age_band": "40-59"}
    full = PatientFacts(age=95, sex="male", race="black", ethnicity="hispanic")
    assert subgroup_of(full) == {
        "sex": "male",
        "age_band": "90plus",
        "race": "black",
        "ethnicity": "hispanic",
    }


def _scored():
    # 40 white patients all concordant, 40 black patients half concordant half unsafe.
    facts = [PatientFacts(age=50, sex="female", race="white", ethnicity="not_hispanic")] * 40 + [
        PatientFacts(age=50, sex="female", race="black", ethnicity="not_hispanic")
    ] * 40
    outcomes = [Outcome.CONCORDANT] * 40 + [Outcome.CONCORDANT, Outcome.UNSAFE] * 20
    return facts, outcomes


def test_rates_and_intervals_by_race():
    facts, outcomes = _scored()
    groups = [subgroup_of(f) for f in facts]
    intervals = outcome_intervals(outcomes, groups, resamples=500, seed=1)
    assert intervals["race.white"]["concordance"].estimate == 1.0
    black = intervals["race.black"]
    assert black["concordance"].estimate == 0.5 and black["unsafe_rate"].estimate == 0.5
    assert black["concordance"].low < 0.5 < black["concordance"].high
    metrics = interval_metrics(intervals)
    assert "eval.unsafe_rate_ci_high.race.black" in metrics
    assert "eval.concordance_ci_low.ethnicity.not_hispanic" in metrics


def test_a_race_gap_fails_promotion_and_is_named():
    facts, outcomes = _scored()
    subgroups: dict = {}
    for attribute in ("race", "ethnicity"):
        by_group: dict = {}
        for f, o in zip(facts, outcomes, strict=True):
            by_group.setdefault(subgroup_of(f)[attribute], []).append(o)
        subgroups[attribute] = {g: rates(o) for g, o in by_group.items()}
    overall = rates(outcomes)
    evaluation = Evaluation(overall["concordance"], overall["unsafe_rate"], len(outcomes), subgroups)
    after = parse_rates(evaluation.metrics())
    results = {r.name: r for r in check_criteria(AcceptanceCriteria(), after, 1.0)}
    gap = results["subgroup gap in concordance"]
    assert not gap.passed
    assert gap.measured == "0.500 (race)"
    assert results["subgroup gap in unsafe rate"].measured.endswith("(race)")


@pytest.mark.parametrize("min_n, passed", [(30, False), (41, None)])
def test_small_race_groups_are_left_out_of_the_gap(min_n, passed):
    facts, outcomes = _scored()
    by_group: dict = {}
    for f, o in zip(facts, outcomes, strict=True):
        by_group.setdefault(f.race, []).append(o)
    after = parse_rates(
        Evaluation(0.75, 0.25, 80, {"race": {g: rates(o) for g, o in by_group.items()}}).metrics()
    )
    result = check_criteria(AcceptanceCriteria(min_subgroup_n=min_n), after, 1.0)[2]
    if passed is None:
        assert "no two groups" in result.measured and not result.passed
    else:
        assert result.passed is passed
