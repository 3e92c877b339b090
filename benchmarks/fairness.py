"""The loop's fairness audit: subgroup performance of one finished run, and what steering does to
who gets judged.

    OMP_NUM_THREADS=1 python benchmarks/fairness.py audit --home $CLINRLHF_HOME --out fairness_audit.json
    OMP_NUM_THREADS=1 python benchmarks/fairness.py steering --out fairness_steering.json
    OMP_NUM_THREADS=1 python benchmarks/fairness.py steering --attribute age_band --patients 300 --floor 0.15
    OMP_NUM_THREADS=1 python benchmarks/fairness.py loop --work /tmp/fairness --out fairness_loop.json  # ~15 min

audit (reads a finished run, trains and writes nothing in the home)
  Given a CLINRLHF_HOME where `clinrlhf quickstart` or `clinrlhf pipeline` has finished, it opens the
  home's MLflow store (sqlite:///HOME/mlflow.db) with MlflowClient, takes the newest FINISHED
  pipeline run (or --run-id: a pipeline run or any of its stages) and walks to its `eval` stage with
  clinrlhf.lineage.chain.load_chain, as `clinrlhf report` does. Its metrics are read back with
  clinrlhf.compliance.evalmetrics.parse_eval_run, as `clinrlhf promote` does: the aligned policy under
  `eval.`, the supervised baseline under `eval.before.`, 95% percentile-bootstrap bounds as
  `<metric>_ci_low` / `<metric>_ci_high`. Nothing is re-evaluated: the figures are the run's own.
  Reported per attribute (sex, age band, OMB race and ethnicity) and group: the held-out scenarios n,
  concordance and unsafe rate with their intervals, supervised and aligned. Then per metric the
  largest gap between two groups of one attribute, counting only groups with n >= min_subgroup_n
  (30 by default): the figure is clinrlhf.compliance.evalmetrics.max_gap's, the one the promotion gate
  uses, and the two groups behind it are named. Last, the gate's own verdict
  (clinrlhf.compliance.criteria.check_criteria) on its two subgroup-gap criteria for the aligned policy.
  Smaller groups are listed but marked "(n < 30: not in the gap)".
  Not measured: whether a gap is statistically real (the gate compares point estimates; the
  intervals are per group, not of the difference), and attributes the eval run did not log.

steering (no server, no training: a few seconds)
  What clinrlhf.feedback.steering does to feedback collection. The feedback cohort is drawn exactly
  as the pipeline draws it (clinrlhf.pipeline.cohorts.make_cohorts with PipelineConfig() sizes and
  seed; the pipeline uses date.today(), here a fixed --date so the output reproduces), and each
  patient is grouped as PanelSession.selection groups them: subgroup_of(facts)[attribute], "unknown"
  where missing. With a budget of N patients (default: half the cohort) four arms choose whom to send:
    unsteered      the first N: what the panel does with no steering (PanelConfig.steering None) if
                   it stops after N. generate_patients draws every patient independently, so the
                   first N are a proportional sample (their ratios to the population share are ~1).
    population     steered_order aimed at the population's own shares: the steered code path with
                   nothing to correct: it should stay proportional (ratios ~1), a check that
                   steering reaches the shares it is given.
    equal shares   SteeringConfig(attribute, patients=N): target_shares empty, equal over groups seen.
    floor F        every group's target at least F (--floor), the rest proportional (water-filling).
  Each steered arm is drawn once per --seeds value (random.Random(seed), as the session seeds it); per
  group it reports patients sent (mean, [min-max] over seeds), share of the budget and its ratio to
  the group's population share, and how many the smallest group got. A group smaller than its
  target is exhausted: steering cannot send patients the cohort does not have.
  What steered_order converges to: it draws a group with probability ∝ target × target / observed
  share, whose fixed point is observed = target (clinrlhf.feedback.steering). An earlier version drew
  ∝ target / observed and settled at observed ∝ √target, compressing 60/30/10 to about 47/33/19;
  this benchmark's "population" arm is what showed it. The targets table lists each arm's target
  beside the share it got (mean over seeds), so any such drift shows. Beside them, the
  held-out scenarios per group in the pipeline's held-out cohort (what the eval's n will be) with
  the worst-case half-width of a 95% normal interval, 1.96 * sqrt(0.25 / n): it ignores that one
  patient's scenarios are correlated, so real intervals are wider. That width is why steering exists.
  Not measured: what steering does to the reward model or to the aligned policy's subgroup gaps
  (that needs pipeline runs with PanelConfig.steering set), judgments per patient (steered_order
  assumes one judged card per patient), or rater behaviour.

loop (two real pipeline runs, ~8 min each at the default budget)
  What steering does to the aligned policy, which `steering` cannot say. Two `clinrlhf pipeline` runs
  (benchmarks/pipeline_runs.py), each in its own home under --work, with the same budget of N
  feedback patients (default: half the cohort) and everything else the quickstart's:
    unsteered  feedback_patients N: the cohort's first N, a proportional sample
    steered    the whole cohort offered, PanelConfig.steering {attribute, patients: N}: equal shares
  Paired as poisoning_loop.py --sequential pairs its variants: the panel posts one patient at a time
  and both arms pseudonymise with one key (synthetic patients only), so the supervised policy, the
  held-out patients and the reward-model split are the same, and the arms differ only in whom the
  panel judged. Each arm is then read back with `audit` (its own eval run): per group of the
  attribute, the patients sent (as the panel draws them: the first N, or steered_order seeded with
  PanelConfig.seed), held-out n, supervised and aligned concordance and unsafe rate with intervals;
  the aligned policy's largest gap within the attribute; and the promotion gate's verdict (which
  covers every attribute). Not measured: run-to-run spread (one seed), and whether a change in a gap
  is larger than the intervals of the groups behind it.

Output: a Markdown table on stdout, the same content as JSON at --out (null for a missing figure).
A bad home, run or option exits non-zero with one line saying why.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import write_json  # noqa: E402
from fairness_report import audit_markdown, loop_markdown, steering_markdown  # noqa: E402
from fairness_runs import DEFAULT_DATE, DEFAULT_SEEDS, audit, loop, steering  # noqa: E402

from clinrlhf.compliance.criteria import AcceptanceCriteria, load_criteria  # noqa: E402
from clinrlhf.pipeline.config import PipelineConfig  # noqa: E402

ATTRIBUTES = ("sex", "age_band", "race", "ethnicity")


def _criteria(path: Path | None) -> AcceptanceCriteria:
    try:
        return load_criteria(path)
    except (OSError, ValueError, TypeError) as err:
        raise SystemExit(f"cannot use criteria file {path}: {str(err).splitlines()[0]}") from None


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text}") from None


# Each command's one-line help and its description.
COMMANDS = {
    "audit": (
        "subgroup table, largest gaps and the promotion gate's verdict for one finished run",
        "Read a finished pipeline run's eval metrics from HOME/mlflow.db and report subgroup "
        "concordance and unsafe rate (supervised and aligned, 95% bootstrap intervals), the largest gap "
        "per metric among groups with n >= min_subgroup_n, and the promotion gate's subgroup-gap verdict.",
    ),
    "steering": (
        "who gets judged with and without steering, on the pipeline's feedback cohort (no training)",
        "Draw the pipeline's feedback cohort and compare, for a budget of N patients, the "
        "patients sent per group: unsteered (the first N), steered to population shares, to equal "
        "shares, and to a floor.",
    ),
    "loop": (
        "steering's effect on the aligned policy: two paired pipeline runs, unsteered and steered",
        "Run the pipeline twice with the same budget of N feedback patients, unsteered (the "
        "cohort's first N) and steered to equal shares of ATTRIBUTE, paired (one patient at a time, one "
        "de-identification key), and compare the aligned policies' subgroup figures and gaps. ~15 min.",
    ),
}


def _out(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("--out", type=Path, default=Path(default), help="JSON output (default: %(default)s)")


def _budget(parser: argparse.ArgumentParser, attribute: str, seed_help: str) -> None:
    """The options steering and loop share: the budget, the attribute steered on, the pipeline seed."""
    parser.add_argument(
        "--patients", type=int, default=None, metavar="N", help="budget (default: half the feedback cohort)"
    )
    parser.add_argument(
        "--attribute",
        choices=ATTRIBUTES,
        default=attribute,
        help="attribute to steer on (default: %(default)s)",
    )
    parser.add_argument(
        "--seed", type=int, default=PipelineConfig().seed, help=f"{seed_help} (default: %(default)s)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fairness.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    a = sub.add_parser("audit", help=COMMANDS["audit"][0], description=COMMANDS["audit"][1])
    a.add_argument("--home", type=Path, required=True, help="a CLINRLHF_HOME where a pipeline finished")
    a.add_argument(
        "--run-id", default=None, help="a pipeline run or one of its stages (default: newest finished)"
    )
    a.add_argument(
        "--criteria",
        type=Path,
        default=None,
        metavar="FILE",
        help="acceptance criteria JSON, as for `clinrlhf promote`",
    )
    _out(a, "fairness_audit.json")
    s = sub.add_parser("steering", help=COMMANDS["steering"][0], description=COMMANDS["steering"][1])
    _budget(s, "race", "the pipeline's cohort seed")
    s.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=list(DEFAULT_SEEDS),
        help="seeds of the steering draws (default: 0 1 2)",
    )
    s.add_argument(
        "--floor",
        type=float,
        default=0.1,
        help="least target share per group in the floor arm (default: %(default)s)",
    )
    s.add_argument(
        "--date",
        type=_date,
        default=DEFAULT_DATE,
        help="the cohorts' date; the pipeline uses its run's (default: %(default)s)",
    )
    _out(s, "fairness_steering.json")
    lp = sub.add_parser("loop", help=COMMANDS["loop"][0], description=COMMANDS["loop"][1])
    lp.add_argument("--work", type=Path, required=True, help="one CLINRLHF_HOME per arm under here")
    _budget(lp, "age_band", "pipeline seed")
    lp.add_argument(
        "--criteria", type=Path, default=None, metavar="FILE", help="acceptance criteria JSON for the gate"
    )
    _out(lp, "fairness_loop.json")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "audit":
        report = audit(args.home, args.run_id, _criteria(args.criteria))
        text = audit_markdown(report)
    elif args.command == "loop":
        criteria = _criteria(args.criteria)
        report = loop(args.attribute, args.work, patients=args.patients, seed=args.seed, criteria=criteria)
        text = loop_markdown(report)
    else:
        if args.floor < 0:
            raise SystemExit("--floor must be at least 0")
        report = steering(
            args.attribute,
            patients=args.patients,
            seed=args.seed,
            seeds=args.seeds,
            floor=args.floor,
            day=args.date,
        )
        text = steering_markdown(report)
    write_json(args.out, report, newline=True)
    print(text)
    print(f"\nJSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
