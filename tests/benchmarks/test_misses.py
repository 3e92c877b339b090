"""benchmarks/misses.py counts each target's misses by what was chosen and what the guideline
accepts, on the real world and real validation scenarios."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from misses import misses_by_target  # noqa: E402

from clinrlhf.pipeline.cohorts import CohortSizes, make_cohorts, scenarios  # noqa: E402
from clinrlhf.world.scoring import acceptable, contraindicated  # noqa: E402
from clinrlhf.world.world import load_world  # noqa: E402


def test_misses_are_counted_by_target_choice_and_what_was_accepted() -> None:
    world = load_world()
    cases = scenarios(make_cohorts(world, CohortSizes(validation=200), 0, date(2026, 12, 7)).validation)
    right = [sorted(acceptable(world, c.facts, c.target))[0] for c in cases]
    assert all(
        row["concordance"] == 1.0 and not row["misses"]
        for row in misses_by_target(world, cases, right).values()
    )

    # every patient with a contraindication gets a drug they must not take; everyone else nothing
    wrong = [
        sorted(contraindicated(world, c.facts))[0] if contraindicated(world, c.facts) else None for c in cases
    ]
    table = misses_by_target(world, cases, wrong, top=50)
    for target, row in table.items():
        mine = [(c, d) for c, d in zip(cases, wrong, strict=True) if c.target == target]
        unsafe = sum(d is not None for _, d in mine)
        assert row["n"] == len(mine) and row["concordance"] == 0.0
        assert row["unsafe"] == unsafe / len(mine)
        assert sum(m["n"] for m in row["misses"]) == len(mine)
        assert sum(m["n"] for m in row["misses"] if m["outcome"] == "missed") == len(mine) - unsafe
    first = next(iter(table.values()))
    assert first["n"] == max(r["n"] for r in table.values())  # most misses (all of them, here) first
