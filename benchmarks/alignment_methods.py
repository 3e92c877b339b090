"""PPO vs DPO vs RLAIF, side by side, on one finished run's data and privacy ledger.

    OMP_NUM_THREADS=1 python benchmarks/alignment_methods.py --home $CLINRLHF_HOME --out alignment.json
    OMP_NUM_THREADS=1 python benchmarks/alignment_methods.py --home /tmp/qs5 --quick   # smoke run

Given a CLINRLHF_HOME where `clinrlhf quickstart` or `clinrlhf pipeline` has finished, it takes that
run's supervised policy (runs/<id>/sft), its PPO-aligned policy (runs/<id>/policy), the de-identified
snapshot its reward model trained on (snapshots/<sha256>.ndjson) and its privacy ledger, and compares
alignment methods that all start from the same supervised policy and the same snapshot:

  SFT                 the supervised policy, the reference every other method starts from.
  PPO (pipeline)      the run's own policy: DP reward model on clinicians' pairs, then KL-PPO.
  DPO (DP, ε=8)       Direct Preference Optimization (clinrlhf.dpo) on the clinicians' pairs of the
                      reward stage's training patients (the same split by patient), DP-SGD per pair.
  DPO (non-private)   the same without clipping or noise: what DP costs DPO (never for real data).
  RLAIF + PPO         AI feedback: a guideline rubric (clinrlhf.rlaif) labels the same cards, one
                      label per card, source "ai" (never mixed with clinicians'); a reward model is
                      trained on those pairs exactly as the pipeline's reward stage trains one (same
                      RewardConfig and patient split, rater weighting "none": the rubric is one
                      rater; DP on), then PPO with the pipeline's PPOConfig and reward function.

Every policy is scored with greedy recommendations on the pipeline's own held-out patients (the
same cohort seed and date as the run, so SFT and PPO (pipeline) reproduce the run's eval), with 95%
percentile-bootstrap intervals (clinrlhf.eval.bootstrap) and a paired interval of the change in
concordance from SFT. KL(π‖SFT) is estimated the same way for every policy: responses sampled from
π on held-out prompts at PPO's temperature, summed per-token log π − log π_SFT (k1, unbiased), nats
per response; "PPO final KL" is PPO's own measurement on its training prompts.

Privacy. The home's ledger has usually spent about ε = 8 of its budget on this snapshot already, so
it would (rightly) refuse further DP runs. The ledger file is therefore COPIED into the work folder
and the copy, with an unlimited budget, is charged instead: the output lists the snapshot's composed
ε after each charge, i.e. what a hospital would spend running these methods on the same data. The
RLAIF reward model is charged to the same snapshot: its labels come from a rubric, but its prompts
are the same patients' records. The home (ledger, MLflow, models) is only read, never written.

Output: a Markdown table on stdout, JSON at --out (null ε means no finite guarantee), and in the
work folder the ledger copy, the rubric's judgments (their own snapshot, source "ai") and the new
policies. One thread. The full run takes about 7 minutes on one idle core (PPO for RLAIF about 3,
each DPO about 1, the RLAIF reward model about 1, evaluations and KL estimates about 1); --quick
trains on at most 512 pairs for an epoch and PPO for 2 steps (about 1.5 minutes; its numbers show
only that everything runs, not how the methods compare).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import torch
from alignment_report import markdown, privacy_summary
from alignment_rows import Measure, add_differences, dpo_row, ppo_row, rlaif_row, settings_summary, sft_row
from common import write_json
from finished_run import cohort_scenarios, locate_run

from clinrlhf.alignment.ledger_copy import LedgerCopy, finite_or_none
from clinrlhf.alignment.settings import KL_SAMPLES, METHODS, NAMES, bench_settings, subsample
from clinrlhf.feedback.screening import check_sources
from clinrlhf.pipeline.single import consistent_read
from clinrlhf.policy import load_policy
from clinrlhf.reward.evaluate import HELDOUT_FRACTION, split_by_patient
from clinrlhf.reward.pairs import pairs_from_judgments
from clinrlhf.reward.units import count_units
from clinrlhf.settings import Settings
from clinrlhf.world.world import load_world


def _sha256(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def _log(message: str) -> None:
    print(f"[alignment_methods] {message}", file=sys.stderr, flush=True)


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(1)
    wall = time.monotonic()
    run = locate_run(args.home, args.run_id, args.run_date)
    config = run.config
    settings = bench_settings(
        config, quick=args.quick, dpo_epsilon=args.dpo_epsilon, kl_samples=args.kl_samples
    )
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise SystemExit(f"unknown method(s) {unknown}; choose from {', '.join(METHODS)}")
    work = (args.work or args.out.with_name(args.out.stem + "_work")).resolve()
    if work == run.home or run.home in work.parents:
        raise SystemExit(f"the work folder {work} must lie outside the home: the home is only read")
    work.mkdir(parents=True, exist_ok=True)
    home_ledger_before = _sha256(run.ledger)
    _log(f"run {run.run_id} of {run.home} (date {run.run_date}, {run.date_source}); work folder {work}")

    world = load_world()
    judgments, digest = consistent_read(run.snapshot)
    check_sources(judgments)
    if run.snapshot.stem != digest:
        _log(f"warning: {run.snapshot.name} does not hash to its name ({digest[:12]})")
    sft, tokenizer = load_policy(run.sft)
    sft.eval()
    scenarios = cohort_scenarios(world, config, run.run_date, "test")  # it reports
    prompts = sorted({j.prompt for j in judgments})  # PPO's prompts, as in the pipeline

    # The reward stage's split: by patient, a tenth held out; only the training side is trained on.
    pairs = pairs_from_judgments(judgments, world=world)
    train_pairs, heldout_pairs = split_by_patient(pairs, HELDOUT_FRACTION, config.reward.seed)
    if not train_pairs:
        train_pairs, heldout_pairs = pairs, []
    delta = config.reward.delta_for(count_units(train_pairs, config.reward.privacy_unit))
    ledger = LedgerCopy(run.ledger, work, digest, delta, config.reward.dp.accountant)
    _log(
        f"{len(judgments)} judgments, {len(pairs)} clinician pairs ({len(train_pairs)} training); "
        f"{len(scenarios)} held-out scenarios; snapshot ε so far {ledger.steps[0]['composed_epsilon']:.3f}"
    )

    rows: dict[str, dict[str, Any]] = {}
    measure = Measure(world, tokenizer, scenarios, sft, settings, config.seed, log=_log)

    if "sft" in methods:
        rows["sft"] = sft_row(measure("sft", sft, with_kl=False), run)
    if "ppo" in methods:
        rows["ppo"] = ppo_row(measure("ppo", load_policy(run.policy)[0]), run, ledger)
    dpo_train = subsample(train_pairs, settings.max_train_pairs, config.seed)
    for key in ("dpo-dp", "dpo"):
        if key in methods:
            _log(f"training {key} on {len(dpo_train)} clinician pairs")
            rows[key] = dpo_row(key, dpo_train, sft, tokenizer, settings, ledger, measure, work=work)
    if "rlaif" in methods:
        rows["rlaif"] = rlaif_row(
            world,
            run,
            judgments,
            pairs,
            heldout_pairs,
            sft,
            tokenizer,
            settings,
            prompts,
            ledger,
            measure,
            work=work,
            rubric_error_rate=args.rubric_error_rate,
            log=_log,
        )
    add_differences(rows, measure.outcomes, config.seed)

    privacy = privacy_summary(
        ledger, run.ledger, _sha256(run.ledger) == home_ledger_before, args.budget_epsilon
    )
    for row in rows.values():
        for key in ("epsilon", "accountant_epsilon", "snapshot_epsilon_after"):
            if key in row:
                row[key] = finite_or_none(row[key])
    return {
        "mode": "quick (smoke settings: the numbers show only that it runs)" if settings.quick else "full",
        "home": str(run.home),
        "run_id": run.run_id,
        "run_date": run.run_date.isoformat(),
        "run_date_source": run.date_source,
        "pipeline_config_source": run.config_source,
        "snapshot": str(run.snapshot),
        "judgments": len(judgments),
        "clinician_pairs": len(pairs),
        "clinician_train_pairs": len(train_pairs),
        "test_scenarios": len(scenarios),
        "settings": settings_summary(settings, args.rubric_error_rate),
        "methods": {NAMES[k].format(eps=args.dpo_epsilon): v for k, v in rows.items()},
        "privacy": privacy,
        "work": str(work),
        "seconds": time.monotonic() - wall,
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  OMP_NUM_THREADS=1 python benchmarks/alignment_methods.py --home ~/.clinrlhf --out alignment.json\n"
            "  python benchmarks/alignment_methods.py --home ~/.clinrlhf --methods sft,ppo,dpo-dp\n"
            "  python benchmarks/alignment_methods.py --home /tmp/qs5 --quick --out /tmp/quick.json\n"
        ),
    )
    parser.add_argument(
        "--home",
        type=Path,
        required=True,
        help="CLINRLHF_HOME of a finished `clinrlhf quickstart` or `pipeline`",
    )
    parser.add_argument("--run-id", help="which run under <home>/runs (default: the newest finished one)")
    parser.add_argument("--out", type=Path, default=Path("alignment_methods.json"), help="JSON results file")
    parser.add_argument(
        "--work",
        type=Path,
        help="folder for the ledger copy, the rubric's judgments and the new policies "
        "(default: <out stem>_work next to --out); never the home",
    )
    parser.add_argument(
        "--methods",
        default=",".join(METHODS),
        help=f"comma-separated subset of {','.join(METHODS)} (default: all)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke settings: ≤512 training pairs, 1 epoch of DPO and reward, 2 PPO steps, 128 KL samples",
    )
    parser.add_argument(
        "--dpo-epsilon", type=float, default=8.0, help="target ε of DP DPO (default 8, as the reward)"
    )
    parser.add_argument(
        "--kl-samples",
        type=int,
        help=f"responses per policy for the held-out KL (default {KL_SAMPLES}; quick 128)",
    )
    parser.add_argument(
        "--rubric-error-rate",
        type=float,
        default=0.0,
        help="share of rubric labels flipped (a fallible AI judge)",
    )
    parser.add_argument(
        "--budget-epsilon",
        type=float,
        default=Settings.model_fields["privacy_budget_epsilon"].default,
        help="the home's per-snapshot budget, to say which charges a real ledger would refuse (default: "
        "CLINRLHF_PRIVACY_BUDGET_EPSILON's default)",
    )
    parser.add_argument(
        "--run-date",
        type=date.fromisoformat,
        help="date the run drew its cohorts (YYYY-MM-DD); default: read from MLflow",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    result = run_benchmark(args)
    write_json(args.out, result)
    print(markdown(result))
    print(f"\nJSON: {args.out}   work folder: {result['work']}   {result['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
