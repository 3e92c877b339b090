"""benchmarks/misses.py counts each target's misses by what was chosen and what the guideline
accepts, on the real world and real validation scenarios."""

from __future__ import annotations

import sys
from collections import Counter
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from misses import misses_by_target  # noqa: E402

from clinrlhf.pipeline.cohorts import CohortSizes, make_cohorts, scenarios  # noqa: E402
from clinrlhf.world.scoring import Outcome, acceptable, contraindicated, score  # noqa: E402
from clinrlhf.world.world import load_world  # noqa: E402

WORLD = load_world()
CASES = scenarios(make_cohorts(WORLD, CohortSizes(validation=200), 0, date(2026, 12, 7)).validation)
RIGHT = [sorted(acceptable(WORLD, c.facts, c.target))[0] for c in CASES]


def test_a_policy_that_is_always_right_has_no_misses() -> None:
    assert all(
        r["concordance"] == 1.0 and not r["misses"] for r in misses_by_target(WORLD, CASES, RIGHT).values()
    )


def test_misses_are_counted_by_target_choice_and_what_was_accepted() -> None:
    # patients with a contraindication get a drug they must not take; the rest get metoprolol
    # (off-target for most targets, concordant for some atrial fibrillation); nobody is right by design
    wrong = [min(contraindicated(WORLD, c.facts), default="metoprolol") for c in CASES]
    table = misses_by_target(WORLD, CASES, wrong, top=100)
    expected: Counter[tuple[str, str, str, tuple[str, ...]]] = Counter()
    for case, drug in zip(CASES, wrong, strict=True):
        outcome = score(WORLD, case.facts, case.target, drug)
        if outcome is not Outcome.CONCORDANT:
            accepted = tuple(sorted(acceptable(WORLD, case.facts, case.target)))
            expected[(case.target, outcome.value, drug, accepted)] += 1
    found = Counter(
        {
            (t, m["outcome"], m["chose"], tuple(m["accepted"])): m["n"]
            for t, row in table.items()
            for m in row["misses"]
        }
    )
    assert found == expected and {k[1] for k in expected} >= {"unsafe", "off-target"}
    for target, row in table.items():
        mine = [(c, d) for c, d in zip(CASES, wrong, strict=True) if c.target == target]
        outcomes = [score(WORLD, c.facts, c.target, d) for c, d in mine]
        assert row["n"] == len(mine)
        assert row["concordance"] == sum(o is Outcome.CONCORDANT for o in outcomes) / len(mine)
        assert row["unsafe"] == sum(o is Outcome.UNSAFE for o in outcomes) / len(mine)


def test_targets_are_ordered_by_their_misses_and_top_keeps_the_commonest() -> None:
    # the most common target is answered right, every other wrong: it must come last despite its size
    biggest = Counter(c.target for c in CASES).most_common(1)[0][0]
    chosen = [r if c.target == biggest else "metoprolol" for c, r in zip(CASES, RIGHT, strict=True)]
    table = misses_by_target(WORLD, CASES, chosen, top=1)
    assert list(table)[-1] == biggest
    missed = [row["n"] * (1 - row["concordance"]) for row in table.values()]
    assert missed == sorted(missed, reverse=True)
    full = misses_by_target(WORLD, CASES, chosen, top=100)
    for target, row in table.items():
        assert len(row["misses"]) <= 1
        if row["misses"]:
            assert row["misses"][0]["n"] == max(m["n"] for m in full[target]["misses"])
