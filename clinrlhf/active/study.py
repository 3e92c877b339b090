"""The whole study, per seed: the fixed parts, every strategy's curve, and the figures over seeds."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from clinrlhf.active.best_of_n import baselines
from clinrlhf.active.curves import judgments_to_reach, mean_curve, needs_by_target, ratio, ratios
from clinrlhf.active.pool import build_pool, heldout_candidates, pool_options, supervised_policy
from clinrlhf.active.strategy import run_strategy
from clinrlhf.active.study_settings import TODAY, StudySettings
from clinrlhf.eval.evaluate import evaluate_policy
from clinrlhf.pipeline.cohorts import CohortSizes, make_cohorts
from clinrlhf.pipeline.tuning import tuning_entry_point
from clinrlhf.world.world import load_world


@tuning_entry_point("clinrlhf/active/study.py")  # it chooses an acquisition rule
def run(settings: StudySettings, policy_dir: Path | None = None, log: Callable[[str], None] = print) -> dict:
    world = load_world()
    per_seed: list[dict[str, Any]] = []
    for seed in settings.seeds:
        started = time.monotonic()
        sizes = CohortSizes(settings.history_patients, settings.pool_patients, settings.validation_patients)
        cohorts = make_cohorts(world, sizes, seed, TODAY)
        policy, tokenizer = supervised_policy(world, cohorts.history, settings, seed, policy_dir)
        pool = build_pool(world, policy, tokenizer, cohorts.feedback, seed)
        held = heldout_candidates(world, policy, tokenizer, cohorts.validation, settings.candidates, seed)
        if "thompson" in settings.strategies:
            pool_options(world, policy, tokenizer, pool, settings.candidates, seed)
        base = baselines(world, held)
        floor, ceiling = base["random_pick"], base["oracle"]
        greedy = evaluate_policy(policy, tokenizer, world, held.scenarios).concordance
        log(
            f"seed {seed}: {len(pool.cases)} cards in the pool, {len(held.scenarios)} validation scenarios; "
            f"supervised greedy {greedy:.3f}, best-of-{settings.candidates} random pick {floor:.3f}, "
            f"oracle {ceiling:.3f} ({time.monotonic() - started:.0f} s)"
        )
        curves = {
            name: run_strategy(name, world, policy, tokenizer, pool, held, settings, seed, log)
            for name in settings.strategies
        }
        needs = {name: judgments_to_reach(c, settings.target) for name, c in curves.items()}
        per_seed.append(
            {
                "seed": seed,
                "pool_cards": len(pool.cases),
                "validation_scenarios": len(held.scenarios),
                "supervised_greedy_concordance": greedy,
                "random_pick_concordance": floor,
                "oracle_concordance": ceiling,
                "curves": curves,
                "judgments_to_target": needs,
                "ratios": ratios(needs),
            }
        )
    means = {name: mean_curve([s["curves"][name] for s in per_seed]) for name in settings.strategies}
    needs = {name: judgments_to_reach(c, settings.target) for name, c in means.items()}
    return {
        "what": "validation-cohort concordance of the best-of-n policy: the reward model's choice among n samples "
        "of the supervised policy (not a PPO run)",
        "reward_training": "DP-SGD (project trainer), per-model epsilon as reported"
        if settings.dp
        else "non-private (--no-dp)",
        "settings": asdict(settings),
        "seeds": per_seed,
        "mean_curves": means,
        "target": settings.target,
        "judgments_to_target": needs,
        "by_target": needs_by_target(means),
        "ratios": ratios(needs),
        "ratio_random_over_active": ratio(needs.get("random"), needs.get("active")),
    }
