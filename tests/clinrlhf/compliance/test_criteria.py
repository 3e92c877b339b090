"""Acceptance criteria: configurable, loaded from JSON, and failing whatever is missing."""

import json

import pytest

from clinrlhf.compliance.criteria import AcceptanceCriteria, check_criteria, failures, load_criteria
from clinrlhf.compliance.evalmetrics import parse_eval_run
from clinrlhf.pipeline.sample_run import eval_metrics


def _after(metrics):
    return parse_eval_run(metrics)["after"]


def test_defaults_and_a_json_override(tmp_path):
    path = tmp_path / "criteria.json"
    path.write_text(json.dumps({"min_concordance": 0.6, "max_epsilon": 4}))
    loaded = load_criteria(path)
    assert loaded.min_concordance == 0.6 and loaded.max_epsilon == 4
    assert loaded.max_unsafe_rate == AcceptanceCriteria().max_unsafe_rate
    assert load_criteria(None) == AcceptanceCriteria()


@pytest.mark.parametrize("content", ['{"min_concordence": 0.6}', '{"max_epsilon": "8"}', "[1]"])
def test_unknown_or_malformed_criteria_are_refused(tmp_path, content):
    path = tmp_path / "criteria.json"
    path.write_text(content)
    with pytest.raises(ValueError):
        load_criteria(path)


def test_a_good_run_passes_every_criterion():
    results = check_criteria(AcceptanceCriteria(max_subgroup_gap=0.3), _after(eval_metrics(0.82, 0.02)), 3.0)
    assert [r.name for r in results] == [
        "concordance",
        "unsafe rate",
        "subgroup gap in concordance",
        "subgroup gap in unsafe rate",
        "privacy spent ε",
    ]
    assert failures(results) is None


def test_each_failure_is_named_on_one_line():
    results = check_criteria(AcceptanceCriteria(), _after(eval_metrics(0.5, 0.2)), 9.0)
    reason = failures(results)
    assert reason is not None and "\n" not in reason
    assert (
        reason.startswith("concordance 0.4")
        and "unsafe rate 0.2" in reason
        and "privacy spent ε 9.000" in reason
    )


def test_missing_metrics_fail_rather_than_pass():
    results = check_criteria(AcceptanceCriteria(), _after({}), float("inf"))
    assert not any(r.passed for r in results)
    assert "no two groups" in results[2].measured


def test_small_groups_are_left_out_of_the_gap():
    metrics = {
        "eval.concordance": 0.9,
        "eval.unsafe_rate": 0.0,
        "eval.concordance.sex.female": 0.9,
        "eval.n.sex.female": 100.0,
        "eval.concordance.sex.male": 0.9,
        "eval.n.sex.male": 100.0,
        "eval.concordance.age_band.0-19": 0.1,  # a gap of 0.8, but only 5 scenarios
        "eval.n.age_band.0-19": 5.0,
        "eval.concordance.age_band.20-39": 0.9,
        "eval.n.age_band.20-39": 100.0,
    }
    gap = check_criteria(AcceptanceCriteria(), _after(metrics), 1.0)[2]
    assert gap.passed and gap.measured == "0.000 (sex)"
