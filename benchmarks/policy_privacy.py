"""What it costs for the aligned policy, not only the reward model, to be differentially private in
the feedback: paired pipeline runs with PPO on the feedback snapshot's prompts (the default) and on
the historical-practice corpus's (`ppo_prompts: "history"`).

    OMP_NUM_THREADS=1 python benchmarks/policy_privacy.py --work /tmp/policy-privacy --out policy_privacy.json
    python benchmarks/policy_privacy.py --work /tmp/pp --seeds 0 1 2    # ~20 min a seed

PPO reads its prompts in the clear. On the feedback's own prompts the policy is DP in what the
clinicians chose but not in which patient descriptions the snapshot holds; on the practice corpus's
prompts, which supervised training has read in the clear already, the feedback reaches the policy
only through the DP reward model (clinrlhf.pipeline.prompts, docs/privacy.md). Both arms of a seed
are the same pipeline run, paired (one patient at a time, one de-identification key), so they
share the supervised policy, the feedback snapshot and the reward model bit for bit and differ only
in PPO's prompts. Reported per seed and arm: the aligned policy's held-out concordance and unsafe
rate with 95% Wilson intervals, its KL from the supervised policy, and the number of prompts.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pipeline_runs import SEQUENTIAL, PipelineRun, count_test_scenarios, merged, run_pipeline, wilson  # noqa: E402

ARMS = {"feedback prompts": {}, "history prompts": {"ppo_prompts": "history"}}


def shared_key(seed: int) -> str:
    """The one de-identification key of a seed's two runs: synthetic patients only."""
    return f"policy-privacy-synthetic-only-{seed}"


def _prompts(run: PipelineRun) -> int:
    """How many distinct prompts PPO sampled from, from the PPO run's logged params."""
    import mlflow

    client = mlflow.MlflowClient(run.summary["mlflow_tracking_uri"])
    parent = client.get_run(run.summary["mlflow_run_id"])
    query = f"tags.mlflow.parentRunId = '{parent.info.run_id}' and tags.`clinrlhf.stage` = 'ppo'"
    ppo = client.search_runs([parent.info.experiment_id], query)
    return int(ppo[0].data.params["ppo.prompts"]) if ppo else -1


def figures(run: PipelineRun, n: int) -> dict:
    after = run.summary["after"]
    return {
        "concordance": after["concordance"],
        "concordance_ci": wilson(after["concordance"], n),
        "unsafe_rate": after["unsafe_rate"],
        "unsafe_rate_ci": wilson(after["unsafe_rate"], n),
        "supervised_concordance": run.summary["before"]["concordance"],
        "kl": run.summary["kl"],
        "epsilon": run.summary["epsilon"],
        "prompts": _prompts(run),
        "seconds": round(run.seconds),
    }


def markdown(results: dict) -> str:
    rows = [
        "| seed | PPO prompts | prompts | aligned concordance | unsafe rate | KL | supervised |",
        "|---|---|---|---|---|---|---|",
    ]
    for seed, arms in results["seeds"].items():
        for arm, f in arms.items():
            low, high = f["concordance_ci"]
            rows.append(
                f"| {seed} | {arm} | {f['prompts']} | {f['concordance']:.3f} ({low:.3f}–{high:.3f}) | "
                f"{f['unsafe_rate']:.3f} | {f['kl']:.2f} | {f['supervised_concordance']:.3f} |"
            )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Paired pipeline runs: PPO on the feedback's prompts vs on the practice corpus's, "
        "the choice that decides whether the policy carries the reward model's DP guarantee. ~20 min a seed."
    )
    parser.add_argument("--work", type=Path, required=True, help="one CLINRLHF_HOME per run under here")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="pipeline seeds (default: 0)")
    parser.add_argument("--out", type=Path, default=Path("policy_privacy.json"), help="JSON output")
    args = parser.parse_args()
    results: dict = {"arms": ARMS, "seeds": {}}
    for seed in args.seeds:
        n = count_test_scenarios(seed)
        results["seeds"][seed] = {}
        for arm, overrides in ARMS.items():
            print(f"seed {seed}, {arm}: running the pipeline (~10 min) …", file=sys.stderr, flush=True)
            name = f"seed{seed}-{arm.split()[0]}"
            run = run_pipeline(name, merged(SEQUENTIAL, overrides), args.work, seed, shared_key(seed))
            results["seeds"][seed][arm] = figures(run, n)
        args.out.write_text(json.dumps(results, indent=2))
    print(markdown(results))
    print(f"JSON: {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
