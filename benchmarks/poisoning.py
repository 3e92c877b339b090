"""How much do adversarial raters poison the preference pairs, and how much does quarantine help?

    python benchmarks/poisoning.py --out poisoning.json

A simulated panel of 20 clinicians (clinrlhf.panel.clinicians.panel_of: the default panel's careful
and biased raters, repeated) in which 0, 1 or 2 are adversarial (0%, 5%, 10%) reviews pairs of
historical-practice suggestions on fresh synthetic patients, two reviewers per card, as the live panel does. Adversaries rate backwards,
or (the last row) are "contraindication-blind": honest except that a contraindicated drug looks
first-line to them. For each panel it reports the *label error of the training pairs*: the share of
preference pairs whose chosen response is worse than the rejected one by the world's guideline,
with and without the defence (the pipeline's screening: Dawid–Skene reliability outliers and the
guideline check of safety-critical choices, clinrlhf.feedback.safety, flagged clinicians' pairs left
out), and whom each of the two checks flagged.

What this measures, honestly: the quality of the data the reward model would be trained on, not
the aligned policy's concordance (that needs the full loop: minutes per run on 2 cores). It runs in
under a minute on one thread, with no server, no store and no training.
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path

import torch

from clinrlhf.feedback.judgment import Judgment, from_ndjson
from clinrlhf.feedback.reliability import dawid_skene, flag_outliers, preference_labels
from clinrlhf.feedback.safety import SafetyCheckConfig, safety_counts, safety_table
from clinrlhf.feedback.screening import exclude
from clinrlhf.panel.clinicians import Clinician, panel_of
from clinrlhf.panel.offline import practice_pair_reviews
from clinrlhf.reward.pairs import pairs_from_judgments
from clinrlhf.rlaif.rubric import facts_from_prompt, grade
from clinrlhf.text.prompt import parse_drug, parse_target
from clinrlhf.world.scoring import score, utility
from clinrlhf.world.world import World, load_world

TODAY = date(2025, 6, 1)


PANELS = ((0, "backwards"), (1, "backwards"), (2, "backwards"), (2, "contraindication-blind"))


def reviews(world: World, raters: list[Clinician], patients: int, seed: int) -> list[Judgment]:
    return practice_pair_reviews(world, raters, patients, seed, TODAY)


def label_error(world: World, judgments: list[Judgment]) -> tuple[float, int]:
    """Share of pairs whose chosen response has lower guideline utility than the rejected one."""
    pairs = pairs_from_judgments(judgments, world=world)
    wrong = 0
    for p in pairs:
        target, facts = parse_target(world, p.prompt), facts_from_prompt(world, p.prompt)
        assert target is not None
        u = [utility(score(world, facts, target, parse_drug(world, r))) for r in (p.chosen, p.rejected)]
        wrong += u[0] < u[1]
    return (wrong / len(pairs) if pairs else float("nan")), len(pairs)


def run(patients: int, seed: int) -> list[dict]:
    world, rows = load_world(), []
    for adversaries, kind in PANELS:
        judgments = reviews(world, panel_of(20, adversaries, kind), patients, seed)
        by_reliability = [f.rater for f in flag_outliers(dawid_skene(preference_labels(judgments)))]
        checked = safety_table(safety_counts(judgments, lambda p, r: grade(world, p, r)), SafetyCheckConfig())
        by_guideline = [r.clinician for r in checked if r.flagged]
        flagged = sorted({*by_reliability, *by_guideline})
        kept = exclude(judgments, flagged)
        err, n = label_error(world, judgments)
        err_def, n_def = label_error(world, kept)
        rows.append(
            {
                "adversarial_share": adversaries / 20,
                "adversary_kind": kind,
                "flagged_by_reliability": sorted(by_reliability),
                "flagged_by_guideline": sorted(by_guideline),
                "flagged": flagged,
                "pairs": n,
                "label_error": err,
                "pairs_defended": n_def,
                "label_error_defended": err_def,
            }
        )
    return rows


def screen_homes(homes: list[Path]) -> list[dict]:
    """Both checks on the snapshot each finished pipeline home trained on (CLINRLHF_HOME/snapshots:
    clinicians the run quarantined are already out of it). Clinicians are pseudonyms."""
    world, rows = load_world(), []
    for home in homes:
        found = sorted((home / "snapshots").glob("*.ndjson"))
        if not found:
            raise SystemExit(f"{home}: no snapshot under {home / 'snapshots'}; did a pipeline finish there?")
        judgments = from_ndjson(found[-1].read_bytes())
        checked = safety_table(safety_counts(judgments, lambda p, r: grade(world, p, r)), SafetyCheckConfig())
        rows.append(
            {
                "home": str(home),
                "flagged_by_reliability": sorted(
                    f.rater for f in flag_outliers(dawid_skene(preference_labels(judgments)))
                ),
                "flagged_by_guideline": sorted(r.clinician for r in checked if r.flagged),
                "unsafe_shares": {r.clinician: [r.unsafe_choices, r.items] for r in checked},
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("poisoning.json"))
    parser.add_argument(
        "--homes",
        type=Path,
        nargs="+",
        help="instead: run both checks on the snapshots of these finished pipeline homes "
        "(e.g. benchmarks/poisoning_loop.py's variants)",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.homes:
        screened = screen_homes(args.homes)
        args.out.write_text(json.dumps(screened, indent=2))
        for r in screened:
            print(
                f"{r['home']}: flagged by reliability {len(r['flagged_by_reliability'])}, by the guideline "
                f"check {len(r['flagged_by_guideline'])}; highest unsafe shares "
                + ", ".join(
                    f"{k}/{n}" for k, n in sorted(r["unsafe_shares"].values(), key=lambda x: -x[0] / x[1])[:3]
                )
            )
        return
    rows = run(args.patients, args.seed)
    args.out.write_text(json.dumps(rows, indent=2))
    for r in rows:
        print(
            f"{r['adversary_kind']} adversaries {r['adversarial_share']:.0%}: label error "
            f"{r['label_error']:.3f} ({r['pairs']} pairs) -> defended {r['label_error_defended']:.3f} "
            f"({r['pairs_defended']} pairs); flagged by reliability {r['flagged_by_reliability']}, "
            f"by the guideline check {r['flagged_by_guideline']}"
        )


if __name__ == "__main__":
    main()
