"""Reward against KL: what each nat of drift from the supervised policy buys, for several KL targets.

    python benchmarks/ppo_frontier.py                       # ~5 min on one thread
    python benchmarks/ppo_frontier.py --targets 0.5 2 --seeds 0 1 2

The task is the tests' tiny one (tests/clinrlhf/ppo/conftest.py): a 1-layer GPT-2 warm-started on
historical prescriptions, habits and errors included, with the world's utility as the reward (+1
concordant, 0 off-target or none, -2 unsafe), so the reward is exact and the frontier is PPO's alone,
not a reward model's. For each target the adaptive controller steers beta; we record the final KL
(fresh samples after training), the final mean reward, and greedy concordance and unsafe rate on
the validation cohort (patients PPO never saw; the frontier chooses settings, so never
the test cohort). The supervised policy is the point at KL 0.

Writes the JSON (--out) and the figure (--plot, docs/ppo_frontier.png by default).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "clinrlhf" / "ppo"))  # the tiny task lives beside its tests

from conftest import Task, make_task  # noqa: E402

from clinrlhf.eval.evaluate import Scenario, evaluate_policy  # noqa: E402
from clinrlhf.pipeline.cohorts import CohortSizes, make_cohorts, scenarios  # noqa: E402
from clinrlhf.pipeline.tuning import tuning_entry_point  # noqa: E402
from clinrlhf.ppo import PPOConfig, train_ppo  # noqa: E402


@tuning_entry_point("benchmarks/ppo_frontier.py")
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--targets", type=float, nargs="+", default=[0.25, 0.5, 1.0, 2.0, 4.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--validation-patients", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path("ppo_frontier.json"))
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "ppo_frontier.png")
    args = parser.parse_args()
    torch.set_num_threads(1)
    task = make_task()
    # The validation cohort of pipeline seed 0: this frontier chooses PPO's settings, so never test.
    validation = scenarios(
        make_cohorts(task.world, CohortSizes(validation=args.validation_patients), 0, date.today()).validation
    )
    rows = [_supervised(task, validation)]
    for seed in args.seeds:
        for target in args.targets:
            rows.append(_run(task, validation, target, seed, args.steps))
            print(json.dumps(rows[-1]))
    args.out.write_text(json.dumps({"validation_scenarios": len(validation), "runs": rows}, indent=2))
    _plot(rows, args.plot)
    print(f"wrote {args.out} and {args.plot}")


def _config(target: float, seed: int, steps: int) -> PPOConfig:
    return PPOConfig(
        steps=steps,
        batch_size=64,
        mini_batches=2,
        ppo_epochs=4,
        lr=5e-4,
        response_length=16,
        init_kl_coef=0.1,
        kl_target=target,
        # ~6% change of beta per step at most (Ziegler et al.'s clip of 0.2 x 64 / 200): enough to
        # steer within a short run, where their 10,000-episode horizon would barely move it.
        kl_horizon=200,
        target_approx_kl=None,
        kl_cap=None,  # the frontier's far end is the point; a cap would cut it off
        final_kl_samples=256,
        seed=seed,
    )


def _run(task: Task, validation: list[Scenario], target: float, seed: int, steps: int) -> dict:
    policy, ref, value = task.models(seed)
    tick = time.perf_counter()
    result = train_ppo(
        policy, ref, value, task.reward, task.tokenizer, task.prompts, _config(target, seed, steps)
    )
    evaluation = evaluate_policy(result.policy, task.tokenizer, task.world, validation)
    return {
        "kl_target": target,
        "seed": seed,
        "final_kl": result.final_kl,
        "final_reward": result.metrics["ppo.final_reward_mean"],
        "final_kl_coef": result.final_kl_coef,
        "validation_concordance": evaluation.concordance,
        "validation_unsafe_rate": evaluation.unsafe_rate,
        "seconds": time.perf_counter() - tick,
    }


def _supervised(task: Task, validation: list[Scenario]) -> dict:
    """The starting point: KL 0 by definition, its sampled reward, its validation greedy rates."""
    policy, ref, value = task.models(0)
    measured = train_ppo(
        policy, ref, value, task.reward, task.tokenizer, task.prompts, _config(1.0, 0, 0)
    )  # 0 steps: only the final measurement runs
    evaluation = evaluate_policy(policy, task.tokenizer, task.world, validation)
    return {
        "kl_target": 0.0,
        "seed": 0,
        "final_kl": measured.final_kl,
        "final_reward": measured.metrics["ppo.final_reward_mean"],
        "final_kl_coef": 0.0,
        "validation_concordance": evaluation.concordance,
        "validation_unsafe_rate": evaluation.unsafe_rate,
        "seconds": 0.0,
    }


def _plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trained = [r for r in rows if r["kl_target"] > 0]
    targets = sorted({r["kl_target"] for r in trained})
    colors = dict(
        zip(targets, plt.get_cmap("viridis")(torch.linspace(0, 0.9, len(targets)).tolist()), strict=True)
    )
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), constrained_layout=True)
    for ax, key, label in (
        (axes[0], "final_reward", "mean reward (world utility), sampled"),
        (axes[1], "validation_concordance", "validation greedy concordance"),
        (axes[2], "validation_unsafe_rate", "validation greedy unsafe rate"),
    ):
        ax.scatter([rows[0]["final_kl"]], [rows[0][key]], marker="s", color="black", label="supervised")
        for target in targets:
            runs = [r for r in trained if r["kl_target"] == target]
            ax.scatter(
                [r["final_kl"] for r in runs],
                [r[key] for r in runs],
                color=colors[target],
                label=f"PPO, target {target:g}",
            )
        ax.set_xlabel("final KL(policy || reference), nats/response")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    seeds = len({r["seed"] for r in trained})
    fig.suptitle(f"Reward vs KL: tiny GPT-2, world utility as reward, {seeds} seed(s) per KL target")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
