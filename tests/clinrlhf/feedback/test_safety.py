"""The guideline check of safety-critical choices: the binomial tail against hand values, the counts,
the flag rule, and on the simulated panel: contraindication-blind raters (whom Dawid–Skene does not
flag) are flagged, honest and biased raters are not (through the store: tests/clinrlhf/pipeline)."""

from __future__ import annotations

import math
from fractions import Fraction
from functools import partial

import pytest

from clinrlhf.feedback.judgment import Judgment
from clinrlhf.feedback.safety import (
    SafetyCheckConfig,
    binomial_tail,
    safety_counts,
    safety_table,
)
from clinrlhf.panel.clinicians import panel_of
from clinrlhf.panel.offline import practice_pair_reviews
from clinrlhf.rlaif.rubric import grade
from clinrlhf.world.world import World


@pytest.mark.parametrize(
    ("k", "n", "p", "expected"),
    [
        (8, 10, 0.5, 56 / 1024),  # C(10,8) + C(10,9) + C(10,10) = 45 + 10 + 1
        (1, 5, 0.2, 1 - 0.8**5),
        (3, 3, 0.1, 0.001),
        (0, 7, 0.3, 1.0),
        (8, 7, 0.3, 0.0),
        (2, 4, 0.0, 0.0),
        (2, 4, 1.0, 1.0),
    ],
)
def test_binomial_tail_matches_hand_values(k: int, n: int, p: float, expected: float) -> None:
    assert binomial_tail(k, n, p) == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_binomial_tail_far_in_the_tail_matches_exact_rational_arithmetic() -> None:
    p = Fraction(1, 100)
    exact = sum(math.comb(100, i) * p**i * (1 - p) ** (100 - i) for i in range(60, 101))
    assert binomial_tail(60, 100, 0.01) == pytest.approx(float(exact), rel=1e-9)
    assert 0.0 < float(exact) < 1e-90


def _pair(
    clinician: str, prefers_unsafe: bool | None, *, safe: str = "good", kind: str = "pairwise"
) -> Judgment:
    responses = ("unsafe drug", f"{safe} drug")
    preferred = None if prefers_unsafe is None else (0 if prefers_unsafe else 1)
    return Judgment(kind, "card", "p", clinician, "treat x ->", responses, preferred)


def _fake_grade(prompt: str, response: str) -> float:
    if response.startswith("unknown"):
        raise ValueError("no target")
    return -2.0 if response.startswith("unsafe") or response.startswith("also-unsafe") else 1.0


def test_counts_only_clinicians_pairwise_comparisons_with_exactly_one_unsafe_side() -> None:
    judgments = [
        _pair("a", True),
        _pair("a", False),
        _pair("a", None),  # a tie: a safety-critical comparison, the unsafe one not chosen
        _pair("b", True),
        _pair("b", True, safe="also-unsafe"),  # both unsafe: not safety-critical
        _pair("b", True, safe="unknown"),  # the guideline cannot grade it: skipped
        _pair("b", True, kind="rating"),
        Judgment("pairwise", "c", "p", "rubric", "treat x ->", ("unsafe drug", "good drug"), 0, source="ai"),
    ]
    assert safety_counts(judgments, _fake_grade) == {"a": (3, 1), "b": (1, 1)}


def test_flags_an_individual_far_above_the_panel_and_nobody_else() -> None:
    counts = {f"honest-{i}": (40, 1) for i in range(10)} | {"blind": (30, 9)}
    rows = {r.clinician: r for r in safety_table(counts, SafetyCheckConfig())}
    assert rows["blind"].flagged and rows["blind"].p_value < 1e-6
    assert rows["blind"].panel_rate == pytest.approx(10 / 400)
    assert not any(r.flagged for name, r in rows.items() if name != "blind")


def test_a_small_excess_is_not_flagged_however_significant() -> None:
    counts = {f"honest-{i}": (5000, 50) for i in range(10)} | {"sloppy": (5000, 300)}  # 6% vs 1%
    rows = {r.clinician: r for r in safety_table(counts, SafetyCheckConfig())}
    assert rows["sloppy"].p_value < 1e-30
    assert not rows["sloppy"].flagged


def test_a_panel_that_disagrees_with_the_guideline_as_a_whole_flags_nobody() -> None:
    counts = {f"c{i}": (40, 16 + i % 3) for i in range(10)}  # everyone ~40%
    assert not any(r.flagged for r in safety_table(counts, SafetyCheckConfig()))


def test_too_few_comparisons_are_never_tested() -> None:
    counts = {"new": (5, 5)} | {f"c{i}": (40, 0) for i in range(5)}
    row = next(r for r in safety_table(counts, SafetyCheckConfig(min_items=10)) if r.clinician == "new")
    assert not row.flagged and row.p_value == 1.0


@pytest.mark.parametrize("seed", [0, 1])
def test_on_the_simulated_panel_it_flags_exactly_the_blind_raters(world: World, seed: int) -> None:
    raters = panel_of(20, 2, "contraindication-blind")
    blind = {c.id for c in raters if c.blind_to_contraindications}
    judgments = practice_pair_reviews(world, raters, 1500, seed)
    rows = safety_table(safety_counts(judgments, partial(grade, world)), SafetyCheckConfig())
    assert {r.clinician for r in rows if r.flagged} == blind


@pytest.mark.parametrize("seed", [0, 1])
def test_on_an_honest_panel_it_flags_nobody(world: World, seed: int) -> None:
    judgments = practice_pair_reviews(world, panel_of(20, 0), 1500, seed)
    rows = safety_table(safety_counts(judgments, partial(grade, world)), SafetyCheckConfig())
    assert len(rows) == 20 and not any(r.flagged for r in rows)
