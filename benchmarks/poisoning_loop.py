"""Poisoned panels, end to end: the aligned policy's held-out concordance with 0%, 5%, 10% and 30%
adversarial raters, with and without the defence.

    python benchmarks/poisoning_loop.py --work /tmp/poisoning --out poisoning_loop.json   # ~90 min
    python benchmarks/poisoning_loop.py --work /tmp/poisoning --only clean,10%-defended     # a subset

Each variant is one real `clinrlhf pipeline` run in its own CLINRLHF_HOME, with the quickstart's
settings except the panel: 20 clinicians (the default panel's nine honest raters, twice, less the
adversaries), 0, 1, 2 or 6 of them (0%, 5%, 10%, 30%) rating backwards. Feedback goes over HTTP as in
the quickstart. The defence is what the pipeline does by default: screening that quarantines
outlier raters (`screening.auto_quarantine`: Dawid–Skene reliability, and since a683d4e the
guideline check of safety-critical choices, clinrlhf.feedback.safety), each remaining clinician's
labels weighted by their accuracy (`reward.rater_weighting = "dawid-skene"`), and a flip rate per
clinician learned inside the reward model (`reward.rater_buckets`, clinrlhf.reward.raters).
"flip-rates-only" turns the first two off; "undefended" turns them all off. The adversaries rate backwards, except in the "blind"
variants: honest raters to whom a contraindicated drug looks first-line, a targeted error that only
touches the cases where safety is at stake; and "clean-69%-feedback", a clean panel with as much
feedback as the 30%-defended run keeps, to tell lost feedback from residual poisoning. Everything else, seed included, is the same, so the variants
differ only in who rated and what was done about it (and in the feedback's order: the panel posts
concurrently, so two runs of one variant differ too; see the README's run-to-run spread).

Reported per variant: held-out concordance and unsafe rate after alignment, with 95% Wilson
intervals over the held-out scenarios, the supervised policy's figures, and who was quarantined.
The target (issue "Feedback you can trust") is a drop of at most 2 points against the clean panel
with the defence on.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pipeline_runs import SEQUENTIAL, PipelineRun, count_test_scenarios, merged, run_pipeline, wilson  # noqa: E402

_NO_SCREENING = {"screening": {"auto_quarantine": False}, "reward": {"rater_weighting": "none"}}
_NOTHING = {
    "screening": {"auto_quarantine": False},
    "reward": {"rater_weighting": "none", "rater_buckets": None},
}


def _panel(adversaries: int, kind: str = "backwards") -> dict:
    return {"panel": {"clinicians": 20, "adversaries": adversaries, "adversary_kind": kind}}


VARIANTS: dict[str, dict] = {
    "clean": _panel(0),
    "5%-defended": _panel(1),
    "5%-flip-rates-only": {**_panel(1), **_NO_SCREENING},
    "5%-undefended": {**_panel(1), **_NOTHING},
    "10%-defended": _panel(2),
    "10%-flip-rates-only": {**_panel(2), **_NO_SCREENING},
    "10%-undefended": {**_panel(2), **_NOTHING},
    "30%-defended": _panel(6),
    "30%-undefended": {**_panel(6), **_NOTHING},
    # The 30%-defended run trains on the 69% of judgments its screening keeps. A clean panel given
    # 69% of the feedback patients (the cohort's first 1,035 of 1,500) loses as much feedback and no
    # accuracy: what it loses against "clean" is the price of less feedback, the rest is poisoning.
    "clean-69%-feedback": {**_panel(0), "feedback_patients": 1035},
    # Targeted: honest raters who do not see contraindications (clinrlhf.panel.clinicians).
    "10%-blind-defended": _panel(2, "contraindication-blind"),
    "10%-blind-undefended": {**_panel(2, "contraindication-blind"), **_NOTHING},
}
TEST_SCENARIOS_KEY = "test_scenarios"


def shared_key(seed: int) -> str:
    """The one de-identification key of paired (`--sequential`) runs: synthetic patients only."""
    return f"poisoning-loop-synthetic-only-{seed}"


def _quality(home: Path) -> dict:
    """Who the screening quarantined, from the reward run's feedback-quality artifact."""
    found = sorted(home.glob("mlartifacts/**/feedback/quality.json"))
    if not found:
        return {}
    quality = json.loads(found[-1].read_text())
    return {"quarantined": quality.get("quarantined", [])}


def figures(run: PipelineRun, n: int) -> dict:
    after, before = run.summary["after"], run.summary["before"]
    return {
        "concordance": after["concordance"],
        "concordance_95ci": wilson(after["concordance"], n),
        "unsafe_rate": after["unsafe_rate"],
        "unsafe_rate_95ci": wilson(after["unsafe_rate"], n),
        "sft_concordance": before["concordance"],
        "sft_unsafe_rate": before["unsafe_rate"],
        "kl": run.summary["kl"],
        "epsilon": run.summary["epsilon"],
        "seconds": round(run.seconds),
        **_quality(run.home),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", type=Path, required=True, help="one CLINRLHF_HOME per variant under here")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--sequential",
        action="store_true",
        help="paired runs: the panel posts one patient at a time (panel.concurrency 1) and every variant "
        "uses one de-identification key, so the feedback, its order and the pseudonyms are the same in "
        "every variant up to who rated (slower feedback stage)",
    )
    parser.add_argument(
        "--only",
        default=",".join(VARIANTS),
        help=f"comma-separated subset of {list(VARIANTS)}".replace("%", "%%"),
    )
    args = parser.parse_args()
    chosen = [v.strip() for v in args.only.split(",") if v.strip()]
    unknown = sorted(set(chosen) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    n = count_test_scenarios(args.seed)
    report: dict[str, dict] = {}
    for name in chosen:
        print(f"{name}: running the pipeline …", file=sys.stderr, flush=True)
        overrides = merged(VARIANTS[name], SEQUENTIAL) if args.sequential else VARIANTS[name]
        key = shared_key(args.seed) if args.sequential else None
        run = run_pipeline(name, overrides, args.work, args.seed, shared_key=key)
        report[name] = figures(run, n)
        print(f"{name}: {json.dumps(report[name])}", file=sys.stderr, flush=True)
    if "clean" in report:
        clean = report["clean"]["concordance"]
        for row in report.values():
            row["drop_vs_clean_points"] = round(100 * (clean - row["concordance"]), 1)
    output = {TEST_SCENARIOS_KEY: n, "seed": args.seed, "sequential": args.sequential, "variants": report}
    print(json.dumps(output, indent=2))
    if args.out:
        args.out.write_text(json.dumps(output, indent=2))


if __name__ == "__main__":
    main()
