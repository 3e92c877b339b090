"""Why the aligned policy's age-band concordance gap opens: per 20-year band (the fairness gate's
bands) of the validation cohort, the supervised and aligned policies' concordance and unsafe rate,
what the band's patients need (renal dosing, pregnancy, anticoagulation, allergies), how well the
reward model ranks a concordant drug above the rest for them, and how much feedback and how many
PPO prompts the band had. Validation cohort only: this is a diagnosis that decides what to change.

It also reads the one interaction with age the oldest bands' misses come down to: for atrial
fibrillation, by age group (under 65, 65-74, 75 and over: every patient over 75 is CHA2DS2-VASc
high) and risk, how far the reward model scores the better anticoagulant above metoprolol, beside the
supervised prior's log-ratio of the two. --reward scores another reward model than the run's own
(e.g. one trained without DP, as a diagnosis: `clinrlhf train reward` with
{"reward": {"dp": {"enabled": false}}} and CLINRLHF_PRIVACY_BUDGET_EPSILON=inf in a scratch home).

    python benchmarks/age_band_gap.py --run-home /tmp/ablations/default-seed0 --out /tmp/age_gap0.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reward_optimum import DrugScores, drug_scores  # noqa: E402

from clinrlhf.compliance.criteria import AcceptanceCriteria  # noqa: E402
from clinrlhf.eval.evaluate import Scenario, recommend_greedy, subgroup_of  # noqa: E402
from clinrlhf.pipeline.cohorts import CohortSizes, make_cohorts, scenarios  # noqa: E402
from clinrlhf.pipeline.config import PipelineConfig  # noqa: E402
from clinrlhf.pipeline.prompts import age_band_of_prompt  # noqa: E402
from clinrlhf.pipeline.single import consistent_read  # noqa: E402
from clinrlhf.pipeline.tuning import tuning_entry_point  # noqa: E402
from clinrlhf.policy import load_policy  # noqa: E402
from clinrlhf.reward.io import load_reward_model  # noqa: E402
from clinrlhf.text.prompt import render_prompt  # noqa: E402
from clinrlhf.world.scoring import Outcome, acceptable, findings_of, score  # noqa: E402
from clinrlhf.world.world import World, load_world  # noqa: E402

MIN_N = AcceptanceCriteria().min_subgroup_n  # the promotion gate's smallest group
BETA = 0.3  # PPOConfig.init_kl_coef, as benchmarks/reward_diagnostics.py
FINDINGS = ("egfr_lt_30", "potassium_gt_5", "pregnant", "chads_high", "penicillin_allergy")


def reward_ranking(
    world: World, cases: Sequence[Scenario], scored: Sequence[DrugScores]
) -> list[tuple[bool, float, bool]]:
    """Per case: whether the reward model's best valid drug is concordant; the share of
    (concordant, other valid drug) pairs it orders right; and whether the KL-regularised optimum of
    PPO's reward (score less the validity penalty) over the world's drugs, argmax of
    log π_sft + r / β (Rafailov et al., 2023, eq. 4), is concordant: what the reward asks for."""
    out = []
    for case, drug in zip(cases, scored, strict=True):
        by_drug = {d: float(v) for d, v, ok in zip(drug.drugs, drug.scores, drug.valid, strict=True) if ok}
        good = acceptable(world, case.facts, case.target)
        pairs = [(by_drug[g], by_drug[b]) for g in good if g in by_drug for b in by_drug if b not in good]
        right = sum(g > b for g, b in pairs) / len(pairs) if pairs else float("nan")
        out.append((max(by_drug, key=by_drug.__getitem__) in good, right, drug.optimum(BETA) in good))
    return out


def anticoagulation_by_age(
    world: World, cases: Sequence[Scenario], scored: Sequence[DrugScores]
) -> dict[str, dict[str, float]]:
    """Atrial fibrillation (pregnancy aside) by age group and CHA2DS2-VASc risk: mean reward of the
    better-scored anticoagulant less metoprolol's, the share of cases where the reward prefers the
    anticoagulant (right when the risk is high, wrong when it is low), and the supervised prior's
    mean log-ratio of the same two drugs."""
    tiers = world.targets["atrial_fibrillation"].tiers
    anticoagulants = [d for t in tiers if t.when == ("chads_high",) for d in t.drugs]
    (rate_control,) = tiers[-1].drugs
    groups: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for case, drug in zip(cases, scored, strict=True):
        if case.target != "atrial_fibrillation":
            continue
        found = findings_of(world, case.facts)
        if "pregnant" in found:
            continue  # neither anticoagulant is allowed, and the guideline's answer is another drug
        risk = "CHA2DS2-VASc high" if "chads_high" in found else "CHA2DS2-VASc low"
        age = "under 65" if case.facts.age < 65 else "65-74" if case.facts.age < 75 else "75 and over"
        group = f"{age}, {risk}"
        at = {d: i for i, d in enumerate(drug.drugs)}
        best = max(anticoagulants, key=lambda d: float(drug.scores[at[d]]))
        groups[group].append(
            (
                float(drug.scores[at[best]] - drug.scores[at[rate_control]]),
                float(drug.prior[at[best]] - drug.prior[at[rate_control]]),
            )
        )
    return {
        group: {
            "n": len(rows),
            "reward_difference": sum(r for r, _ in rows) / len(rows),
            "prefers_anticoagulant": sum(r > 0 for r, _ in rows) / len(rows),
            "prior_log_ratio": sum(p for _, p in rows) / len(rows),
        }
        for group, rows in sorted(groups.items())
    }


@tuning_entry_point("benchmarks/age_band_gap.py")
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--run-home", type=Path, required=True, help="CLINRLHF_HOME of a finished pipeline run"
    )
    parser.add_argument("--seed", type=int, default=0, help="the pipeline seed of that run")
    parser.add_argument(
        "--policy",
        nargs="*",
        default=[],
        metavar="NAME=DIR",
        help="more policies to score beside the run's own",
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--policies-only", action="store_true", help="skip the reward model's figures")
    parser.add_argument(
        "--reward", type=Path, help="a reward model folder to diagnose (default: the run's own)"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    run = next(p for p in (args.run_home / "runs").iterdir() if (p / "policy").is_dir())
    world, config = load_world(), PipelineConfig()
    cases = scenarios(
        make_cohorts(
            world, CohortSizes(validation=config.validation_patients), args.seed, date.today()
        ).validation
    )
    bands = [subgroup_of(c.facts)["age_band"] for c in cases]
    policies = {"supervised": run / "sft", "aligned": run / "policy"}
    policies |= {name: Path(folder) for name, folder in (p.split("=", 1) for p in args.policy)}
    outcomes: dict[str, list[Outcome]] = {}
    for name, folder in policies.items():
        model, tokenizer = load_policy(folder)
        drugs = recommend_greedy(model.eval(), tokenizer, world, cases)
        outcomes[name] = [score(world, c.facts, c.target, d) for c, d in zip(cases, drugs, strict=True)]
    scored: list[DrugScores] = []
    if not args.policies_only:  # each case's drugs scored once, read by both reward diagnoses below
        reward, reward_tokenizer, _ = load_reward_model(args.reward or run / "reward")
        sft, sft_tokenizer = load_policy(run / "sft")
        scored = [
            drug_scores(
                world, reward, reward_tokenizer, sft, sft_tokenizer, render_prompt(world, c.facts, c.target)
            )
            for c in cases
        ]
    ranking = reward_ranking(world, cases, scored) if scored else [(False, float("nan"), False)] * len(cases)
    judgments, _ = consistent_read(next((args.run_home / "snapshots").glob("*.ndjson")))
    feedback = Counter(age_band_of_prompt(j.prompt) for j in judgments)
    prompts = Counter(age_band_of_prompt(p) for p in {j.prompt for j in judgments})
    table: dict[str, dict[str, Any]] = {}
    for band in sorted(set(bands)):
        idx = [i for i, b in enumerate(bands) if b == band]
        row: dict[str, Any] = {"n": len(idx), "judgments": feedback[band], "ppo_prompts": prompts[band]}
        for name, outs in outcomes.items():
            row[f"{name}.concordance"] = sum(outs[i] is Outcome.CONCORDANT for i in idx) / len(idx)
            row[f"{name}.unsafe"] = sum(outs[i] is Outcome.UNSAFE for i in idx) / len(idx)
        row["reward.top_concordant"] = sum(ranking[i][0] for i in idx) / len(idx)
        row["optimum.concordance"] = sum(ranking[i][2] for i in idx) / len(idx)
        ordered = [ranking[i][1] for i in idx if ranking[i][1] == ranking[i][1]]
        row["reward.pairs_ordered"] = sum(ordered) / max(len(ordered), 1)
        found = [findings_of(world, cases[i].facts) for i in idx]
        row["findings"] = {f: sum(f in s for s in found) / len(idx) for f in FINDINGS}
        misses: dict[str, Counter[str]] = defaultdict(Counter)
        for i in idx:
            if outcomes["aligned"][i] is not Outcome.CONCORDANT:
                why = [f for f in FINDINGS if f in findings_of(world, cases[i].facts)] or ["none"]
                misses[cases[i].target][",".join(why)] += 1
        row["aligned_misses"] = {t: dict(c.most_common(4)) for t, c in misses.items()}
        row["targets"] = dict(Counter(cases[i].target for i in idx).most_common())
        by_finding = {}
        for f in FINDINGS:
            with_f = [i for i in idx if f in findings_of(world, cases[i].facts)]
            if with_f:
                by_finding[f] = {
                    name: sum(outs[i] is Outcome.CONCORDANT for i in with_f) / len(with_f)
                    for name, outs in outcomes.items()
                } | {"n": len(with_f)}
        row["concordance_given_finding"] = by_finding
        table[band] = row
    # The promotion gate's figure: the largest concordance gap between two bands of n >= 30.
    gaps = {}
    for name in [*policies, *([] if args.policies_only else ["optimum"])]:
        key = f"{name}.concordance"
        values = [row[key] for row in table.values() if row["n"] >= MIN_N]
        gaps[name] = max(values) - min(values)
    overall = {
        name: {
            "concordance": sum(o is Outcome.CONCORDANT for o in outs) / len(outs),
            "unsafe": sum(o is Outcome.UNSAFE for o in outs) / len(outs),
        }
        for name, outs in outcomes.items()
    }
    anticoagulation = anticoagulation_by_age(world, cases, scored) if scored else {}
    result = {"bands": table, "gaps": gaps, "overall": overall, "atrial_fibrillation": anticoagulation}
    args.out.write_text(json.dumps(result, indent=2))
    for band, row in table.items():
        print(
            band,
            {k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items() if "." in k or k == "n"},
        )
    print("largest concordance gap, bands of n >= 30:", {k: round(v, 3) for k, v in gaps.items()})
    print("overall:", {k: {m: round(v, 3) for m, v in row.items()} for k, row in overall.items()})
    for group, row in anticoagulation.items():
        print("atrial fibrillation,", group, {k: round(v, 3) for k, v in row.items()})


if __name__ == "__main__":
    main()
