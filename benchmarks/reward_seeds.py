"""Reward-model variants over several pipeline seeds, scored by what PPO is asked to reach: the
experiments behind the reward and feedback defaults (issue 22). Validation cohort only.

For each seed's finished run under --work (benchmarks/pipeline_seeds.py made them), a real
`clinrlhf train reward` retrains the DP reward model from the run's own supervised policy on the
run's snapshot with the --set overrides, in a scratch home (the run's own home and ledger are not
touched); `--extra-snapshots K` adds the snapshots of the next K seeds' runs (other patients, other
clinicians' pseudonyms, the same world), a stand-in for K+1 times the feedback. Then, on that seed's
validation cohort, the greedy choice of the KL-regularised optimum of the reward, π*(y|x) ∝
π_sft(y|x)·exp(r(x, y)/β) over the formulary's drugs (Rafailov et al., 2023, eq. 4; the reward as
PPO sees it, less the validity penalty), at several β: its concordance, unsafe rate, KL(π*‖π_sft)
and the largest age-band concordance gap (bands of n >= 30). PPO ends within a few points of this
optimum (docs/results.md), so it measures the reward without the cost and noise of a PPO run.

The DP noise is secret (never seeded), so two trainings of one variant on one seed differ: compare
variants by their distribution over seeds, not seed by seed.

    python benchmarks/reward_seeds.py --work /tmp/seeds --seeds 0 1 2 3 4 --name default \\
        --set '{}' --jobs 2 --out /tmp/reward_seeds/default.json
    python benchmarks/reward_seeds.py --work /tmp/seeds --name twice-the-feedback \\
        --extra-snapshots 1 --set '{}' --out /tmp/reward_seeds/data2.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reward_optimum import drug_scores  # noqa: E402

from clinrlhf.compliance.criteria import AcceptanceCriteria  # noqa: E402
from clinrlhf.eval.evaluate import subgroup_of  # noqa: E402
from clinrlhf.pipeline.cohorts import CohortSizes, make_cohorts, scenarios  # noqa: E402
from clinrlhf.pipeline.config import PipelineConfig  # noqa: E402
from clinrlhf.pipeline.tuning import tuning_entry_point  # noqa: E402
from clinrlhf.policy import load_policy  # noqa: E402
from clinrlhf.reward.io import load_reward_model  # noqa: E402
from clinrlhf.text.prompt import render_prompt  # noqa: E402
from clinrlhf.world.scoring import Outcome, score  # noqa: E402
from clinrlhf.world.world import load_world  # noqa: E402

BETAS = (1.0, 0.5, 0.3, 0.2, 0.1)  # 0.3 is PPOConfig.init_kl_coef
MIN_N = AcceptanceCriteria().min_subgroup_n  # the promotion gate's smallest group


def run_dir(home: Path) -> Path:
    return next(p for p in sorted((home / "runs").iterdir()) if (p / "sft").is_dir())


def snapshot_of(home: Path) -> Path:
    return next((home / "snapshots").glob("*.ndjson"))


def train(home: Path, seed: int, extra: list[Path], overrides: dict, scratch: Path) -> Path:
    """Retrain the reward model of `home`'s run in `scratch`; returns its folder."""
    snapshot = snapshot_of(home)
    if extra:
        snapshot = scratch / "snapshot.ndjson"
        snapshot.write_bytes(b"".join(p.read_bytes() for p in [snapshot_of(home), *extra]))
    (scratch / "config.json").write_text(json.dumps(overrides))
    env = os.environ | {
        "CLINRLHF_HOME": str(scratch / "home"),
        "CLINRLHF_DEID_KEY": f"pipeline-seeds-synthetic-only-{seed}",  # as pipeline_seeds.py
        # A scratch ledger for synthetic data only: each variant is a fresh training, not a release.
        "CLINRLHF_PRIVACY_BUDGET_EPSILON": "1000",
        "OMP_NUM_THREADS": "1",
    }
    (scratch / "home").mkdir(parents=True, exist_ok=True)
    if (home / "keys").is_dir():
        shutil.copytree(home / "keys", scratch / "home" / "keys", dirs_exist_ok=True)
    out = scratch / "reward"
    cmd = [
        str(Path(sys.executable).with_name("clinrlhf")), "train", "reward",
        "--policy", str(run_dir(home) / "sft"), "--snapshot", str(snapshot),
        "--out", str(out), "--config", str(scratch / "config.json"),
    ]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"seed {seed}: clinrlhf train reward failed: {done.stderr.strip().splitlines()[-1]}")
    return out


def optimum(sft_dir: Path, reward_dir: Path, seed: int) -> dict[str, Any]:
    """The reward's KL-regularised optimum on `seed`'s validation cohort, at each of BETAS."""
    world = load_world()
    sizes = CohortSizes(validation=PipelineConfig().validation_patients)
    cases = scenarios(make_cohorts(world, sizes, seed, date.today()).validation)
    reward, tokenizer, _ = load_reward_model(reward_dir)
    sft, sft_tokenizer = load_policy(sft_dir)
    per_case = [
        drug_scores(world, reward, tokenizer, sft, sft_tokenizer, render_prompt(world, c.facts, c.target))
        for c in cases
    ]
    bands = [subgroup_of(c.facts)["age_band"] for c in cases]
    out: dict[str, Any] = {}
    for beta in BETAS:
        outcomes, kls = [], []
        for case, drug in zip(cases, per_case, strict=True):
            base, tilted = torch.log_softmax(drug.prior, 0), drug.tilted(beta)
            kls.append(float((tilted.exp() * (tilted - base)).sum()))
            outcomes.append(score(world, case.facts, case.target, drug.optimum(beta)))
        by_band = {}
        for band in set(bands):
            idx = [i for i, b in enumerate(bands) if b == band]
            if len(idx) >= MIN_N:
                by_band[band] = sum(outcomes[i] is Outcome.CONCORDANT for i in idx) / len(idx)
        out[str(beta)] = {
            "concordance": sum(o is Outcome.CONCORDANT for o in outcomes) / len(outcomes),
            "unsafe": sum(o is Outcome.UNSAFE for o in outcomes) / len(outcomes),
            "kl": statistics.fmean(kls),
            "age_band_gap": max(by_band.values()) - min(by_band.values()),
        }
    return out


def one_seed(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    home = args.work / f"seed{seed}"
    extra = [snapshot_of(args.work / f"seed{args.seeds[(args.seeds.index(seed) + k) % len(args.seeds)]}")
             for k in range(1, args.extra_snapshots + 1)]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix=f"reward-seed{seed}-") as tmp:
        reward = train(home, seed, extra, json.loads(args.set), Path(tmp))
        curve = optimum(run_dir(home) / "sft", reward, seed)
    at = curve["0.3"]
    print(f"{args.name} seed {seed}: optimum at β 0.3: concordance {at['concordance']:.3f} "
          f"unsafe {at['unsafe']:.3f} KL {at['kl']:.2f} age-band gap {at['age_band_gap']:.3f}", flush=True)  # fmt: skip
    return {"seed": seed, "optimum": curve}


@tuning_entry_point("benchmarks/reward_seeds.py")
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", type=Path, required=True, help="the --work of benchmarks/pipeline_seeds.py")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--name", required=True)
    parser.add_argument(
        "--set", default="{}", help='pipeline config overrides, e.g. {"reward": {"epochs": 6}}'
    )
    parser.add_argument("--extra-snapshots", type=int, default=0, help="add the next K seeds' snapshots")
    parser.add_argument("--jobs", type=int, default=1, help="seeds trained at once (each one process)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(lambda s: one_seed(args, s), args.seeds))
    summary = {}
    for beta in map(str, BETAS):
        values = [r["optimum"][beta]["concordance"] for r in rows]
        summary[beta] = {
            "concordance_mean": statistics.fmean(values),
            "concordance_sd": statistics.stdev(values) if len(values) > 1 else 0.0,
            "concordance_worst": min(values),
            "unsafe_mean": statistics.fmean(r["optimum"][beta]["unsafe"] for r in rows),
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {"name": args.name, "set": json.loads(args.set), "extra_snapshots": args.extra_snapshots}
    args.out.write_text(json.dumps(result | {"rows": rows, "summary": summary}, indent=1))
    s = summary["0.3"]
    print(f"{args.name}: optimum concordance {s['concordance_mean']:.3f} ± {s['concordance_sd']:.3f} "
          f"(worst {s['concordance_worst']:.3f}), unsafe {s['unsafe_mean']:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
