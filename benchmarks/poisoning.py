"""How much do adversarial raters poison the preference pairs, and how much does quarantine help?

    python benchmarks/poisoning.py --out poisoning.json

A simulated panel of 20 clinicians (the default panel's careful and biased raters, repeated) in
which 0, 1 or 2 are adversarial (0%, 5%, 10%) reviews pairs of historical-practice suggestions on
fresh synthetic patients, two reviewers per card, as the live panel does. For each share it reports
the *label error of the training pairs*: the share of preference pairs whose chosen response is
worse than the rejected one by the world's guideline, with and without the defence (Dawid–Skene
reliability, outlier flagging, quarantined clinicians' pairs left out).

What this measures, honestly: the quality of the data the reward model would be trained on, not
the aligned policy's concordance (that needs the full loop: minutes per run on 2 cores). It runs in
under a minute on one thread, with no server, no store and no training.
"""

from __future__ import annotations

import argparse
import json
import random
from datetime import date
from pathlib import Path

import torch

from clinrlhf.feedback.judgment import Judgment
from clinrlhf.feedback.reliability import dawid_skene, flag_outliers, preference_labels
from clinrlhf.feedback.screening import exclude
from clinrlhf.panel.clinicians import Clinician, default_panel, review_pair
from clinrlhf.reward.pairs import pairs_from_judgments
from clinrlhf.rlaif.rubric import facts_from_prompt
from clinrlhf.text.prompt import parse_drug, parse_target, render_prompt, render_response
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.practice import historical_choice
from clinrlhf.world.scoring import score, utility
from clinrlhf.world.world import World, load_world

TODAY = date(2025, 6, 1)


def panel(adversaries: int) -> list[Clinician]:
    """20 honest raters (the default panel's honest ten, twice), then `adversaries` of them replaced."""
    honest = [c for c in default_panel() if not c.adversarial]
    raters = [Clinician(f"{c.id}-{k}", c.noise, c.bias) for k in range(2) for c in honest][:20]
    for i in range(adversaries):
        raters[i] = Clinician(f"adversary-{i}", noise=0.2, adversarial=True)
    return raters


def reviews(world: World, raters: list[Clinician], patients: int, seed: int) -> list[Judgment]:
    rng, out = random.Random(seed), []
    for n, p in enumerate(generate_patients(world, patients, seed, TODAY)):
        for t in p.targets:
            a, b = historical_choice(world, p.facts, t, rng), historical_choice(world, p.facts, t, rng)
            if a == b:
                continue
            shown = (render_response(world, a), render_response(world, b))
            prompt = render_prompt(world, p.facts, t)
            for c in rng.sample(raters, 2):
                choice = review_pair(world, c, p.facts, t, a, b, rng).choice
                preferred = {"a": 0, "b": 1, "tie": None}[choice]
                out.append(Judgment("pairwise", f"card{n}-{t}", f"p{n}", c.id, prompt, shown, preferred))
    return out


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
    for adversaries in (0, 1, 2):
        judgments = reviews(world, panel(adversaries), patients, seed)
        flagged = [f.rater for f in flag_outliers(dawid_skene(preference_labels(judgments)))]
        kept = exclude(judgments, flagged)
        err, n = label_error(world, judgments)
        err_def, n_def = label_error(world, kept)
        rows.append(
            {
                "adversarial_share": adversaries / 20,
                "flagged": flagged,
                "pairs": n,
                "label_error": err,
                "pairs_defended": n_def,
                "label_error_defended": err_def,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("poisoning.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = run(args.patients, args.seed)
    args.out.write_text(json.dumps(rows, indent=2))
    for r in rows:
        print(
            f"adversaries {r['adversarial_share']:.0%}: label error {r['label_error']:.3f} "
            f"({r['pairs']} pairs) -> defended {r['label_error_defended']:.3f} ({r['pairs_defended']} pairs); "
            f"quarantined {r['flagged']}"
        )


if __name__ == "__main__":
    main()
