"""PPO stage variants on one finished run's supervised policy, reward model and snapshot prompts,
scored greedily on validation patients: the experiments behind the PPO defaults (issue 22).

Only the PPO stage runs, so a variant costs one PPO run (a few CPU minutes), and two variants differ
only in what their overrides change. Two validation sets, neither ever the test cohort: the run's
own validation cohort (`Cohorts.validation` of `--pipeline-seed`) and `--val-patients` fresh patients
from `--val-seed`, a seed no pipeline cohort uses (the study began before `Cohorts.validation`
existed, so its first variants were compared on those).

    python benchmarks/ppo_gap.py --run-home DIR --name base --seeds 0 1 2 \
        --set '{"steps": 120}' --out /tmp/ppo_gap/base.json

--set overrides the loop's PPOConfig (formulary rollouts); sampled PPO as it was the loop's default
until formulary rollouts: --set '{"rollouts": "sampled", "steps": 120, "mini_batches": 2, "ppo_epochs": 4}'.
Each row also scores the greedy choice of its reward's KL-regularised optimum over the formulary at
the run's final β (reward_optimum.formulary_optimum): what PPO is asked to reach.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

import torch

from clinrlhf.compliance.criteria import AcceptanceCriteria
from clinrlhf.compliance.evalmetrics import parse_rates
from clinrlhf.eval.evaluate import evaluate_policy
from clinrlhf.pipeline.cohorts import CohortSizes, make_cohorts, scenarios
from clinrlhf.pipeline.config import PipelineConfig
from clinrlhf.pipeline.policy_reward import INVALID_PENALTY
from clinrlhf.pipeline.prompts import balance_by_age_band, ppo_prompts
from clinrlhf.pipeline.seeds import derive_seed
from clinrlhf.pipeline.single import consistent_read
from clinrlhf.pipeline.stages import run_ppo
from clinrlhf.pipeline.tuning import tuning_entry_point
from clinrlhf.policy import load_policy
from clinrlhf.reward.io import load_reward_model
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.scoring import Outcome, score
from clinrlhf.world.world import load_world

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reward_optimum import formulary_optimum  # noqa: E402

VAL_SEED = 900_001  # pipeline cohorts use seeds 3*seed + {0, 1, 2}; this one is far from them


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@tuning_entry_point("benchmarks/ppo_gap.py")
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run-home", type=Path, required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument(
        "--set", default="{}", help="overrides of the loop's PPOConfig (PipelineConfig().ppo) as JSON"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--val-patients", type=int, default=400)
    parser.add_argument("--val-seed", type=int, default=VAL_SEED)
    parser.add_argument("--pipeline-seed", type=int, default=0, help="the finished run's pipeline seed")
    parser.add_argument(
        "--invalid-penalty",
        type=float,
        default=INVALID_PENALTY,
        help=f"PPO's validity penalty (the pipeline's validity_penalty; 0: off; default {INVALID_PENALTY})",
    )
    parser.add_argument(
        "--derived-seed",
        action="store_true",
        help="train with the PPO seed the pipeline derives from --pipeline-seed (as its own run did), not --seeds",
    )
    parser.add_argument(
        "--prompt-balance",
        type=float,
        default=0.0,
        help="the pipeline's ppo_prompt_balance: PPO's prompts reweighted by age band (0: as they come)",
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    world = load_world()
    run = next(p for p in (args.run_home / "runs").iterdir() if (p / "reward").is_dir())
    sft, tokenizer = load_policy(run / "sft")
    reward, _, _ = load_reward_model(run / "reward")
    judgments, _ = consistent_read(next((args.run_home / "snapshots").glob("*.ndjson")))
    prompts = balance_by_age_band(ppo_prompts("feedback", judgments, []), args.prompt_balance)
    val = scenarios(generate_patients(world, args.val_patients, args.val_seed, date.today()))
    sizes = CohortSizes(validation=800)
    validation = scenarios(make_cohorts(world, sizes, args.pipeline_seed, date.today()).validation)
    rows = []
    for seed in [derive_seed(args.pipeline_seed, "ppo")] if args.derived_seed else args.seeds:
        overrides = {**json.loads(args.set), "seed": seed, "checkpoint_every": 10**9}
        config = replace(PipelineConfig().ppo, **overrides)
        cpu, wall = cpu_seconds(), time.monotonic()
        result = run_ppo(
            world=world,
            sft_model=sft,
            tokenizer=tokenizer,
            reward=reward,
            prompts=prompts,
            config=config,
            lora=None,
            checkpoint_dir=None,
            invalid_penalty=args.invalid_penalty,
        )
        cpu, wall = cpu_seconds() - cpu, time.monotonic() - wall
        ev = evaluate_policy(result.policy, tokenizer, world, val)
        cohort = evaluate_policy(result.policy, tokenizer, world, validation)
        row = {
            "seed": seed,
            "concordance": ev.concordance,
            "unsafe_rate": ev.unsafe_rate,
            "validation_concordance": cohort.concordance,
            "validation_unsafe_rate": cohort.unsafe_rate,
            "final_kl": result.final_kl,
            "final_reward": result.metrics["ppo.final_reward_mean"],
            "final_kl_coef": result.final_kl_coef,
            "cpu_s": cpu,
            "wall_s": wall,
            "history": result.history[:: max(1, len(result.history) // 12)],
        }
        chosen = formulary_optimum(
            world, reward, sft, tokenizer, validation, result.final_kl_coef, args.invalid_penalty
        )
        outcomes = [score(world, c.facts, c.target, d) for c, d in zip(validation, chosen, strict=True)]
        row["validation_optimum_concordance"] = outcomes.count(Outcome.CONCORDANT) / len(outcomes)
        row["validation_optimum_unsafe_rate"] = outcomes.count(Outcome.UNSAFE) / len(outcomes)
        row["invalid_penalty"] = args.invalid_penalty
        row["prompt_balance"] = args.prompt_balance
        row["validation_age_band_gap"] = parse_rates(cohort.metrics()).gap(
            "concordance", "age_band", AcceptanceCriteria().min_subgroup_n
        )
        rows.append(row)
        print(
            f"{args.name} seed {seed}: conc {ev.concordance:.3f} unsafe {ev.unsafe_rate:.3f} "
            f"validation cohort {cohort.concordance:.3f} / {cohort.unsafe_rate:.3f} "
            f"(its reward's optimum {row['validation_optimum_concordance']:.3f}) "
            f"kl {result.final_kl:.2f} reward {row['final_reward']:.2f} beta {result.final_kl_coef:.2f} "
            f"cpu {cpu:.0f}s",
            flush=True,
        )
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            json.dumps(
                {"name": args.name, "set": json.loads(args.set), "n": len(val), "rows": rows}, indent=1
            )
        )


if __name__ == "__main__":
    main()
