"""What DP costs the reward model per step: DP-SGD with per-sample hooks, with ghost clipping, under
the default judgment unit (per-pair hooks summed per judgment, then clipped), and no DP, on the same
model and about the same logical batch.

    python benchmarks/reward_dp_cost.py --out reward_dp_cost.json          # about 3 minutes
    python benchmarks/reward_dp_cost.py --quick                            # about 1 minute

Each mode runs in its own subprocess, so the peak resident memory (ru_maxrss) that the child
reports is that mode's alone. "steps' RSS growth" is ru_maxrss after the steps minus ru_maxrss just
before the first one: how far the steps pushed the peak beyond what building the model and data
needed (0 when they stayed below it). The model is the
pipeline's reward model (the default 2-block GPT-2 policy trunk plus a scalar head and per-rater
flip logits), the data the simulated panel's pairs (clinrlhf.reward.simulated), and every mode
takes the same fixed batch of rows (no Poisson sampling, so batch size is not a variable); the
judgment mode takes the first judgments whose pairs reach that many rows, and reports its rows.
One thread (torch.set_num_threads(1)); the first steps are warm-up and not timed.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

MODES: dict[str, dict[str, Any]] = {
    "non-DP": {"dp": {"enabled": False}, "privacy_unit": "pair"},
    "DP hooks": {"grad_sample_mode": "hooks", "privacy_unit": "pair"},
    "DP ghost": {"grad_sample_mode": "ghost", "privacy_unit": "pair"},
    "DP judgment": {"grad_sample_mode": "hooks", "privacy_unit": "judgment"},
}


def _rss_mb() -> float:
    """This process's peak resident set so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(mode: str, batch: int, steps: int, warmup: int, seed: int) -> dict:
    """Time `steps` optimizer steps of one mode on a fixed batch (run in a child process)."""
    from clinrlhf.policy import PolicyConfig, build_policy, build_tokenizer
    from clinrlhf.reward.config import RewardConfig
    from clinrlhf.reward.pairs import pairs_from_judgments
    from clinrlhf.reward.simulated import simulated_judgments
    from clinrlhf.reward.trainer import prepare_training
    from clinrlhf.text.prompt import vocabulary_corpus
    from clinrlhf.world.patients import generate_patients
    from clinrlhf.world.world import load_world
    from privacy.dp.opacus_config import DPConfig

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    world = load_world()
    tokenizer = build_tokenizer(vocabulary_corpus(world))
    judgments = simulated_judgments(world, generate_patients(world, 300, seed), reviewers_per_card=2)
    pairs = pairs_from_judgments(judgments, world=world)[: 4 * batch]
    settings = dict(MODES[mode])
    dp = DPConfig(**settings.pop("dp", {}))
    config = RewardConfig(batch_size=batch, seed=seed, dp=dp, **settings)
    run = prepare_training(pairs, build_policy(PolicyConfig(), tokenizer).transformer, tokenizer, config)
    enc = run.encoded
    rows = batch
    if run.units is not None:  # whole judgments, in order, until they hold `batch` pairs
        taken: list[int] = []
        rows = 0
        for unit, unit_rows in enumerate(run.units.rows):
            if rows >= batch:
                break
            taken.append(unit)
            rows += len(unit_rows)
        fixed = [torch.tensor(taken)]
    else:
        fixed = [
            enc.input_ids[:batch],
            enc.lengths[:batch],
            enc.margins[:batch],
            enc.raters[:batch],
            enc.accuracy[:batch],
        ]
    before = _rss_mb()
    times, cpu_times = [], []
    for i in range(warmup + steps):
        started, cpu_started = time.perf_counter(), time.process_time()
        run.step(fixed)
        if i >= warmup:
            times.append(time.perf_counter() - started)
            cpu_times.append(time.process_time() - cpu_started)
    return {
        "mode": mode,
        "batch": batch,
        "rows": rows,
        "steps": steps,
        "step_seconds_median": statistics.median(times),
        "step_seconds_mean": statistics.fmean(times),
        # CPU time of the one thread: what the step costs, less what other jobs on a shared machine take
        "step_cpu_seconds_median": statistics.median(cpu_times),
        "peak_rss_mb": _rss_mb(),
        "steps_rss_growth_mb": _rss_mb() - before,
        "trainable_parameters": sum(p.numel() for p in run.trained.parameters() if p.requires_grad),
        "noise_multiplier": run.noise_multiplier,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=256, help="logical batch (rows) of every step")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per mode")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="5 timed steps per mode")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    parser.add_argument("--child", choices=list(MODES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    steps = 5 if args.quick else args.steps
    if args.child:
        print(json.dumps(measure(args.child, args.batch, steps, args.warmup, args.seed)))
        return
    results = []
    for mode in MODES:  # one at a time, each in a fresh process
        command = [sys.executable, __file__, "--child", mode, "--batch", str(args.batch)]
        command += ["--steps", str(steps), "--warmup", str(args.warmup), "--seed", str(args.seed)]
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
        print(f"measured {mode}", file=sys.stderr, flush=True)
    base = results[0]
    for r in results:
        r["time_vs_non_dp"] = r["step_seconds_median"] / base["step_seconds_median"]
        r["cpu_vs_non_dp"] = r["step_cpu_seconds_median"] / base["step_cpu_seconds_median"]
        r["peak_rss_vs_non_dp"] = r["peak_rss_mb"] / base["peak_rss_mb"]
    print(f"trainable parameters: {base['trainable_parameters']:,}; batch {args.batch} rows; 1 thread")
    header = f"{'mode':<11} {'rows':>5} {'step s':>8} {'x non-DP':>9} {'CPU s':>7} {'x non-DP':>9} {'peak RSS MB':>12} {'x non-DP':>9} {'steps growth MB':>16}"
    print(header)
    for r in results:
        print(
            f"{r['mode']:<11} {r['rows']:>5} {r['step_seconds_median']:>8.3f} {r['time_vs_non_dp']:>9.2f} "
            f"{r['step_cpu_seconds_median']:>7.3f} {r['cpu_vs_non_dp']:>9.2f} "
            f"{r['peak_rss_mb']:>12.0f} {r['peak_rss_vs_non_dp']:>9.2f} {r['steps_rss_growth_mb']:>16.0f}"
        )
    if args.out:
        args.out.write_text(json.dumps({"batch": args.batch, "threads": 1, "results": results}, indent=2))


if __name__ == "__main__":
    main()
