"""Where an aligned policy misses, target by target: for each finished pipeline home, per target
problem of its validation cohort, the number of scenarios, the aligned policy's concordance and unsafe
rate, and its most common misses (the outcome, the drug it chose, the drugs the guideline accepts for
that patient, how often). A diagnosis that decides what to change next, so validation only.

    python benchmarks/misses.py --run-home DIR/seed0 --run-home DIR/seed1 --out F

Each run's validation cohort is re-drawn from the config and start date it logged (its pipeline seed
included), as benchmarks/pipeline_seeds.py --cohort validation does.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from finished_run import cohort_scenarios, locate_run  # noqa: E402

from clinrlhf.eval.evaluate import Scenario, recommend_greedy  # noqa: E402
from clinrlhf.pipeline.tuning import tuning_entry_point  # noqa: E402
from clinrlhf.policy import load_policy  # noqa: E402
from clinrlhf.world.scoring import Outcome, acceptable, score  # noqa: E402
from clinrlhf.world.world import World, load_world  # noqa: E402


def misses_by_target(
    world: World, cases: Sequence[Scenario], drugs: Sequence[str | None], top: int = 3
) -> dict[str, dict[str, Any]]:
    """{target: {n, concordance, unsafe, misses: [{outcome, chose, accepted, n}]}}, targets with the
    most misses first; `drugs[i]` is the policy's choice for `cases[i]` (None: nothing parseable)."""
    n: Counter[str] = Counter()
    outcomes: dict[str, Counter[Outcome]] = defaultdict(Counter)
    missed: dict[str, Counter[tuple[str, str, tuple[str, ...]]]] = defaultdict(Counter)
    for case, drug in zip(cases, drugs, strict=True):
        outcome = score(world, case.facts, case.target, drug)
        n[case.target] += 1
        outcomes[case.target][outcome] += 1
        if outcome is not Outcome.CONCORDANT:
            accepted = tuple(sorted(acceptable(world, case.facts, case.target)))
            missed[case.target][(outcome.value, drug or "(none)", accepted)] += 1
    order = sorted(n, key=lambda t: (outcomes[t][Outcome.CONCORDANT] - n[t], t))
    return {
        target: {
            "n": n[target],
            "concordance": outcomes[target][Outcome.CONCORDANT] / n[target],
            "unsafe": outcomes[target][Outcome.UNSAFE] / n[target],
            "misses": [
                {"outcome": o, "chose": d, "accepted": list(a), "n": k}
                for (o, d, a), k in missed[target].most_common(top)
            ],
        }
        for target in order
    }


@tuning_entry_point("benchmarks/misses.py")
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--run-home",
        type=Path,
        action="append",
        required=True,
        help="CLINRLHF_HOME of a finished pipeline run (repeat for several)",
    )
    parser.add_argument("--top", type=int, default=3, help="misses listed per target")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    world = load_world()
    report: dict[str, Any] = {}
    for home in args.run_home:
        run = locate_run(home)  # its logged config and start date re-draw exactly its validation cohort
        key = f"seed {run.config.seed}"
        if key in report:
            raise SystemExit(f"{home}: a second run of pipeline {key}; give each seed once")
        cases = cohort_scenarios(world, run.config, run.run_date, "validation")
        model, tokenizer = load_policy(run.policy)
        table = misses_by_target(
            world, cases, recommend_greedy(model.eval(), tokenizer, world, cases), args.top
        )
        report[key] = table
        print(f"{key} ({run.home}, run {run.run_id}):")
        for target, row in table.items():
            listed = (
                "; ".join(
                    f"{m['n']}× {m['chose']} ({m['outcome']}; accepted {', '.join(m['accepted']) or 'none'})"
                    for m in row["misses"]
                )
                or "no misses"
            )
            print(
                f"  {target}: n {row['n']}, concordance {row['concordance']:.3f}, unsafe {row['unsafe']:.3f}; {listed}"
            )
    args.out.write_text(json.dumps(report, indent=2))
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
