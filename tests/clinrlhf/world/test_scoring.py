"""The world's rules, checked on hand-built patients against the benchmark README."""

import pytest

from clinrlhf.world import (
    Outcome,
    PatientFacts,
    acceptable,
    contraindicated,
    findings_of,
    load_world,
    score,
    targets_of,
)

W = load_world()
HTN, DM, AF, PNA, UTI = "59621000", "44054006", "49436004", "233604007", "38822007"
PREGNANT, PCN_ALLERGY, STROKE = "72892002", "91936005", "230690007"
EGFR, K = "33914-3", "2823-3"


def facts(**kw) -> PatientFacts:
    return PatientFacts(**{"age": 50, "sex": "male", **kw})


@pytest.mark.parametrize(
    ("patient", "target", "expected"),
    [
        (
            facts(conditions=frozenset({HTN})),
            "hypertension",
            {"lisinopril", "losartan", "amlodipine", "hydrochlorothiazide"},
        ),
        (
            facts(sex="female", conditions=frozenset({HTN, PREGNANT})),
            "hypertension",
            {"labetalol", "nifedipine"},
        ),
        (facts(conditions=frozenset({HTN, DM})), "hypertension", {"lisinopril", "losartan"}),
        # Diabetes tier is emptied by hyperkalaemia, so the default tier minus ACE/ARB applies.
        (
            facts(conditions=frozenset({HTN, DM}), labs={K: 5.6}),
            "hypertension",
            {"amlodipine", "hydrochlorothiazide"},
        ),
        (facts(conditions=frozenset({DM}), labs={EGFR: 22.0}), "diabetes", {"insulin_glargine"}),
        (
            facts(conditions=frozenset({PNA}), allergies=frozenset({PCN_ALLERGY})),
            "pneumonia",
            {"doxycycline", "azithromycin"},
        ),
        (facts(conditions=frozenset({UTI}), labs={EGFR: 25.0}), "cystitis", {"cephalexin"}),
        (facts(age=80, conditions=frozenset({AF})), "atrial_fibrillation", {"apixaban", "warfarin"}),
        (facts(age=40, conditions=frozenset({AF})), "atrial_fibrillation", {"metoprolol"}),
    ],
)
def test_acceptable_walks_tiers_in_order_skipping_contraindicated(patient, target, expected):
    assert acceptable(W, patient, target) == expected


def test_chads_threshold_differs_by_sex():
    # Stroke (2 points) is high risk for a man (>= 2) but not for a woman aged 40 (2 + 1 = 3 -> high).
    assert "chads_high" in findings_of(W, facts(conditions=frozenset({STROKE})))
    assert "chads_high" not in findings_of(W, facts(sex="female", conditions=frozenset({HTN})))
    assert "chads_high" in findings_of(W, facts(sex="female", age=66, conditions=frozenset({HTN})))


def test_score_classifies_each_outcome():
    p = facts(sex="female", conditions=frozenset({HTN, PREGNANT}))
    assert score(W, p, "hypertension", "labetalol") is Outcome.CONCORDANT
    assert score(W, p, "hypertension", "lisinopril") is Outcome.UNSAFE
    assert score(W, p, "hypertension", "sertraline") is Outcome.OFF_TARGET
    assert score(W, p, "hypertension", None) is Outcome.MISSED
    assert "warfarin" in contraindicated(W, p)


def test_treated_conditions_are_not_targets():
    lisinopril = W.drugs["lisinopril"].rxnorm
    assert targets_of(W, facts(conditions=frozenset({HTN}))) == ["hypertension"]
    assert targets_of(W, facts(conditions=frozenset({HTN}), medications=frozenset({lisinopril}))) == []
