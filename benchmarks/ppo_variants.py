"""PPO settings against one quickstart's reward: what moves held-out concordance and unsafe rate?

    python benchmarks/ppo_variants.py --run-home $CLINRLHF_HOME --ppo '{"lr": 1e-4}'
    python benchmarks/ppo_variants.py --run-home $CLINRLHF_HOME --history-prompts
    python benchmarks/ppo_variants.py --run-home $CLINRLHF_HOME --indication-penalty 2.0

Retrains the run's DP reward model on its snapshot (the same defaults, so the same reward up to
thread scheduling), then runs PPO from the run's supervised policy with the given overrides, and
evaluates greedy recommendations on the same 800 held-out patients as the quickstart. One thread;
about 5 minutes on one idle core.

- `--history-prompts` adds the historical cohort's prompts to PPO's (no labels needed: PPO only
  samples from prompts).
- `--indication-penalty P` subtracts P from the reward of a drug not listed for the problem in any
  guideline tier (a formulary indication check, not the patient-specific rules).
"""

from __future__ import annotations

import argparse
import copy
import json
import re
from datetime import date
from pathlib import Path

import torch

from clinrlhf.eval.evaluate import evaluate_policy
from clinrlhf.pipeline.cohorts import make_cohorts, scenarios
from clinrlhf.pipeline.config import PipelineConfig
from clinrlhf.pipeline.single import read_snapshot
from clinrlhf.pipeline.stages import FORMAT_PENALTY
from clinrlhf.policy import load_policy
from clinrlhf.ppo.config import PPOConfig
from clinrlhf.ppo.trainer import train_ppo
from clinrlhf.reward.evaluate import score_texts
from clinrlhf.reward.pairs import pairs_from_judgments
from clinrlhf.reward.trainer import train_reward
from clinrlhf.text.prompt import parse_drug, render_prompt
from clinrlhf.world.world import load_world

_TARGET = re.compile(r"treat (\S+) ->")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run-home", type=Path, required=True, help="CLINRLHF_HOME of a finished quickstart")
    parser.add_argument("--ppo", default="{}", help="JSON overrides of PPOConfig")
    parser.add_argument("--history-prompts", action="store_true")
    parser.add_argument("--indication-penalty", type=float, default=0.0)
    parser.add_argument("--out", type=Path, default=Path("ppo_variant.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    summary = json.loads((args.run_home / "quickstart" / "summary.json").read_text())
    sft, tokenizer = load_policy(Path(summary["policy_dir"]).parent / "sft")
    world, config, today = load_world(), PipelineConfig(), date.today()
    sizes = (config.history_patients if args.history_prompts else 0, 0, config.heldout_patients)
    cohorts = make_cohorts(world, sizes, config.seed, today)
    judgments, _ = read_snapshot(next((args.run_home / "snapshots").glob("*.ndjson")))
    reward = train_reward(
        pairs_from_judgments(judgments, world=world), copy.deepcopy(sft.transformer), tokenizer
    )
    prompts = {j.prompt for j in judgments}
    if args.history_prompts:
        prompts |= {render_prompt(world, p.facts, t) for p in cohorts.history for t in p.targets}
    indicated = {key: {d for tier in t.tiers for d in tier.drugs} for key, t in world.targets.items()}

    def reward_fn(batch_prompts: list[str], responses: list[str]) -> torch.Tensor:
        scores = score_texts(reward.model, tokenizer, batch_prompts, responses)
        penalties = []
        for prompt, response in zip(batch_prompts, responses, strict=True):
            drug, target = parse_drug(world, response), _TARGET.search(prompt)
            penalty = FORMAT_PENALTY if drug is None else 0.0
            if drug is not None and target and drug not in indicated.get(target.group(1), {drug}):
                penalty += args.indication_penalty
            penalties.append(penalty)
        return scores - torch.tensor(penalties)

    ppo = PPOConfig(**json.loads(args.ppo))
    result = train_ppo(
        copy.deepcopy(sft),
        copy.deepcopy(sft).eval(),
        copy.deepcopy(reward.model),
        reward_fn,
        tokenizer,
        sorted(prompts),
        ppo,
    )
    cases = scenarios(cohorts.heldout)
    before, after = (evaluate_policy(m, tokenizer, world, cases) for m in (sft, result.policy))
    figures = {
        "ppo": json.loads(args.ppo),
        "history_prompts": args.history_prompts,
        "indication_penalty": args.indication_penalty,
        "prompts": len(prompts),
        "final_kl": result.final_kl,
        "before": {"concordance": before.concordance, "unsafe_rate": before.unsafe_rate},
        "after": {"concordance": after.concordance, "unsafe_rate": after.unsafe_rate},
    }
    args.out.write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
