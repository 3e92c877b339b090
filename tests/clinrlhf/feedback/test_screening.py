"""Per-clinician and per-case-type agreement, and the statistics of screening a snapshot: sources,
reliability, flags (quarantine in the store: tests/clinrlhf/pipeline/test_screening.py)."""

from __future__ import annotations

import random

import pytest

from clinrlhf.feedback.clinician_agreement import (
    majority_of_others,
    pairwise_choices,
    per_case_type,
    per_clinician,
)
from clinrlhf.feedback.judgment import Judgment
from clinrlhf.feedback.screening import MixedSourcesError, ScreeningConfig, check_sources, exclude, screen

FIRST, SECOND = "amlodipine 5 mg", "lisinopril 10 mg"  # sorted order: FIRST < SECOND


def _j(card: str, clinician: str, choice: str, target: str = "hypertension", source: str = "clinician"):
    preferred = {"first": 0, "second": 1, "tie": None}[choice]
    return Judgment(
        kind="pairwise",
        card=card,
        patient=f"p-{card}",
        clinician=clinician,
        prompt=f"sex female age 50-54 ; treat {target} ->",
        responses=(FIRST, SECOND),
        preferred=preferred,
        source=source,
    )


def _hand_example() -> list[Judgment]:
    votes = {
        "i1": ("first", "first", "first"),
        "i2": ("second", "second", "second"),
        "i3": ("first", "first", "second"),
        "i4": ("second", "second", "first"),
    }
    return [_j(item, r, v) for item, vs in votes.items() for r, v in zip("abc", vs, strict=True)]


def test_majority_of_others_skips_ties_among_the_others():
    assert majority_of_others({"a": "first", "b": "first", "c": "second"}, "c") == "first"
    assert majority_of_others({"a": "first", "b": "second", "c": "second"}, "c") is None
    assert majority_of_others({"c": "first"}, "c") is None


def test_per_clinician_kappa_by_hand():
    choices, _ = pairwise_choices(_hand_example())
    rows = {r.clinician: r for r in per_clinician(choices, n_boot=200)}
    # c against a/b (who always agree): observed 1/2, chance 1/2 -> κ = 0.
    assert rows["c"].items == 4 and rows["c"].observed == 0.5
    assert rows["c"].kappa.estimate == pytest.approx(0.0)
    # a against b and c: i3 and i4 are ties among the others; on i1 and i2 a agrees: κ = 1.
    assert rows["a"].items == 2 and rows["a"].kappa.estimate == pytest.approx(1.0)
    assert per_clinician(choices, n_boot=200)[0].clinician == "c"  # lowest κ first


def test_per_case_type_fleiss_by_hand():
    judgments = [
        *(_j(f"h{i}", r, v, "hypertension") for i, v in enumerate(("first", "second")) for r in "ab"),
        *(
            _j(f"d{i}", r, v, "diabetes")
            for i, (x, y) in enumerate(
                (("first", "first"), ("second", "second"), ("first", "second"), ("second", "first"))
            )
            for r, v in zip("ab", (x, y), strict=True)
        ),
    ]
    choices, types = pairwise_choices(judgments)
    result = per_case_type(choices, types, n_boot=200)
    assert result["hypertension"].estimate == pytest.approx(1.0)
    # P_i = 1, 1, 0, 0 -> P̄ = ½; shares ½, ½ -> P_e = ½; κ = 0
    assert result["diabetes"].estimate == pytest.approx(0.0)
    assert result["diabetes"].items == 4


def test_mixed_sources_are_refused_unless_asked_for():
    judgments = [_j("c1", "a", "first"), _j("c1", "rubric", "first", source="ai")]
    with pytest.raises(MixedSourcesError, match="ai \\(1\\), clinician \\(1\\)"):
        check_sources(judgments)
    assert check_sources(judgments, allow_mixed=True) == {"ai": 1, "clinician": 1}
    assert exclude(judgments, ["a", "rubric"]) == [judgments[1]]


def _panel_judgments(seed: int = 0) -> list[Judgment]:
    """Four careful raters (accuracy 0.9) and one adversary (0.1), two or three per card."""
    rng = random.Random(seed)
    accuracy = {"good-1": 0.9, "good-2": 0.9, "good-3": 0.85, "good-4": 0.9, "adversary": 0.1}
    judgments = []
    for card in range(150):
        truth = rng.choice(["first", "second"])
        for rater in rng.sample(sorted(accuracy), rng.choice([2, 3])):
            right = rng.random() < accuracy[rater]
            judgments.append(
                _j(f"card{card}", rater, truth if right else {"first": "second", "second": "first"}[truth])
            )
    return judgments


def test_screen_flags_the_adversary_without_touching_a_store():
    found = screen(_panel_judgments(), ScreeningConfig())
    assert set(found.flags) == {"adversary"} and "rater reliability" in found.flags["adversary"]
    assert found.safety is None  # no guideline given: the safety check does not run
    assert {row.rater for row in found.reliability} == {"good-1", "good-2", "good-3", "good-4", "adversary"}
