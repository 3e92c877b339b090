"""How good is a DP reward model for PPO? Train reward variants on one feedback snapshot and score them.

    python benchmarks/reward_diagnostics.py --run-home $CLINRLHF_HOME --out reward_diagnostics.json

For each variant (the defaults; without per-rater flip rates; training only the top block, the old
default) it trains on the quickstart's snapshot with its supervised policy as backbone, then
measures on the validation cohort (not the feedback cohort; a diagnosis decides what to change,
so it never reads the test cohort):

- train accuracy (the fit to the pairs), the learned flip rate of each clinician;
- the *KL-regularised optimum* of each reward: over the formulary, π*(y|x) ∝ π_sft(y|x)·exp(r(x,y)/β),
  the policy PPO converges to in the limit with a fixed KL coefficient β (Rafailov et al., 2023,
  eq. 4). Its greedy concordance and unsafe rate say what the reward *asks for*, separately from how
  far PPO gets; "concordance of the reward's own top drug among the target's drugs" likewise.

Uses one thread; about 4 minutes per variant on one idle core.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from datetime import date
from pathlib import Path

import torch

from clinrlhf.eval.evaluate import Scenario
from clinrlhf.pipeline.cohorts import CohortSizes, make_cohorts, scenarios
from clinrlhf.pipeline.config import PipelineConfig
from clinrlhf.pipeline.single import consistent_read
from clinrlhf.pipeline.tuning import tuning_entry_point
from clinrlhf.policy import load_policy
from clinrlhf.policy.generate import sequence_logprob
from clinrlhf.reward.config import RewardConfig
from clinrlhf.reward.evaluate import score_texts
from clinrlhf.reward.pairs import pairs_from_judgments
from clinrlhf.reward.trainer import train_reward
from clinrlhf.text.prompt import render_prompt, render_response
from clinrlhf.world.scoring import Outcome, score
from clinrlhf.world.world import World, load_world

VARIANTS = {
    "default": {},
    "no rater flip rates": {"rater_buckets": None},
    "top block only (old default)": {
        "trainable_blocks": 1,
        "learning_rate": 1e-2,
        "epochs": 5,
        "batch_size": 128,
    },
}
BETA = 0.3  # PPOConfig.init_kl_coef


def formulary_logprobs(policy, tokenizer, world: World, cases: list[Scenario]) -> list[torch.Tensor]:
    """log π_sft(drug | prompt) over the formulary, normalised over it, one row per case."""
    rows = []
    with torch.no_grad():
        for case in cases:
            prompt = render_prompt(world, case.facts, case.target)
            lp = torch.tensor(
                [sequence_logprob(policy, tokenizer, prompt, render_response(world, d)) for d in world.drugs]
            )
            rows.append(lp - torch.logsumexp(lp, 0))
    return rows


def optimum(
    world: World, model, tokenizer, cases: list[Scenario], prior: list[torch.Tensor]
) -> dict[str, float]:
    drugs, conc, unsafe, top = list(world.drugs), 0, 0, 0
    for case, lp in zip(cases, prior, strict=True):
        prompt = render_prompt(world, case.facts, case.target)
        with torch.no_grad():
            r = score_texts(
                model, tokenizer, [prompt] * len(drugs), [render_response(world, d) for d in drugs]
            )
        pick = drugs[int((lp + r / BETA).argmax())]
        outcome = score(world, case.facts, case.target, pick)
        conc += outcome is Outcome.CONCORDANT
        unsafe += outcome is Outcome.UNSAFE
        own = {d for tier in world.targets[case.target].tiers for d in tier.drugs}
        best = max(own, key=lambda d: float(r[drugs.index(d)]))
        top += score(world, case.facts, case.target, best) is Outcome.CONCORDANT
    n = len(cases)
    return {
        "optimum_concordance": conc / n,
        "optimum_unsafe_rate": unsafe / n,
        "reward_top_drug_concordance": top / n,
    }


@tuning_entry_point("benchmarks/reward_diagnostics.py")
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run-home", type=Path, required=True, help="CLINRLHF_HOME of a finished quickstart")
    parser.add_argument("--cases", type=int, default=300, help="validation cases to score")
    parser.add_argument("--out", type=Path, default=Path("reward_diagnostics.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    summary = json.loads((args.run_home / "quickstart" / "summary.json").read_text())
    snapshot = next((args.run_home / "snapshots").glob("*.ndjson"))
    policy, tokenizer = load_policy(Path(summary["policy_dir"]).parent / "sft")
    world, config = load_world(), PipelineConfig()
    sizes = CohortSizes(validation=config.validation_patients)
    cases = scenarios(make_cohorts(world, sizes, config.seed, date.today()).validation)[: args.cases]
    prior = formulary_logprobs(policy.eval(), tokenizer, world, cases)
    judgments, _ = consistent_read(snapshot)
    pairs = pairs_from_judgments(judgments, world=world)
    sft = {"optimum_concordance": 0.0, "optimum_unsafe_rate": 0.0}
    for case, lp in zip(cases, prior, strict=True):
        outcome = score(world, case.facts, case.target, list(world.drugs)[int(lp.argmax())])
        sft["optimum_concordance"] += (outcome is Outcome.CONCORDANT) / len(cases)
        sft["optimum_unsafe_rate"] += (outcome is Outcome.UNSAFE) / len(cases)
    results = {"supervised policy (no reward)": sft}
    for name, overrides in VARIANTS.items():
        started = time.monotonic()
        trained = train_reward(pairs, copy.deepcopy(policy.transformer), tokenizer, RewardConfig(**overrides))
        results[name] = {
            "train_accuracy": trained.metrics["reward.train_accuracy"],
            "epsilon": trained.epsilon,
            "seconds": time.monotonic() - started,
            "max_flip_rate": max(trained.rater_flip_rates.values(), default=None),
        } | optimum(world, trained.model, tokenizer, cases, prior)
        print(name, json.dumps(results[name]), flush=True)
    args.out.write_text(
        json.dumps({"pairs": len(pairs), "cases": len(cases), "beta": BETA} | results, indent=2)
    )
    print(f"{'variant':<32} {'fit':>5} {'conc*':>6} {'unsafe*':>8} {'top':>5}")
    for name, r in results.items():
        fit = f"{r['train_accuracy']:.2f}" if "train_accuracy" in r else "-"
        top = f"{r['reward_top_drug_concordance']:.2f}" if "reward_top_drug_concordance" in r else "-"
        print(
            f"{name:<32} {fit:>5} {r['optimum_concordance']:>6.3f} {r['optimum_unsafe_rate']:>8.3f} {top:>5}"
        )


if __name__ == "__main__":
    main()
