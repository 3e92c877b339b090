"""Issue 22's ablations: the default loop against the same loop with PPO's validity penalty off
(`{"validity_penalty": 0}`), with the guideline safety check in screening off
(`{"screening": {"safety": {"enabled": false}}}`) and with PPO's prompts balanced by age band
(`{"ppo_prompt_balance": 1.0}`), each a real `clinrlhf pipeline` per seed. The runs report on the
test cohort; benchmarks/age_band_gap.py reads each finished home on the validation cohort.

Paired: every variant of a seed sees the same patients, pseudonyms (one shared de-identification key)
and, with the panel posting one patient at a time (pipeline_runs.SEQUENTIAL), the same feedback
order; so two variants of one seed differ only in the switch. Each finished run is appended to
`--out` at once, so a long sweep can be read while it runs.

    python benchmarks/ablations.py --seeds 0 1 2 --jobs 1 --out /tmp/ablations
    python benchmarks/ablations.py --out /tmp/ablations --report   # the table for docs/results.md
    python benchmarks/ablations.py --out /tmp/screening --screening HOME [HOME ...]

`--screening` answers the safety-check ablation without retraining: it screens each finished run's
whole feedback (read from a copy of its store) with the check on and off. The screened
snapshot is the reward model's whole input, so where both leave out the same clinicians the switch
changes nothing the reward model or PPO sees (their figures still vary with the secret DP noise).
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pipeline_runs import SEQUENTIAL, merged, run_pipeline

VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "age-band-balanced": {"ppo_prompt_balance": 1.0},
    "no-validity-penalty": {"validity_penalty": 0},
    "no-safety-check": {"screening": {"safety": {"enabled": False}}},
}
SHARED_KEY = "ablations-shared-deid-key-synthetic-patients-only"  # synthetic patients only
METRICS = ("after.concordance", "after.unsafe_rate", "kl")


def _one(variant: str, seed: int, work: Path, results: Path, lock: threading.Lock) -> None:
    run = run_pipeline(
        f"{variant}-seed{seed}", merged(SEQUENTIAL, VARIANTS[variant]), work, seed, shared_key=SHARED_KEY
    )
    row = {"variant": variant, "seed": seed, "home": str(run.home), "seconds": run.seconds, **run.summary}
    with lock, results.open("a", encoding="utf-8") as out:
        out.write(json.dumps(row) + "\n")


def _value(row: dict[str, Any], metric: str) -> float:
    value: Any = row
    for key in metric.split("."):
        value = value[key]
    return float(value)


def report(results: Path) -> str:
    """Markdown: per variant, each metric's mean ± sd and worst run over the seeds it finished."""
    rows = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines() if line]
    lines = [
        "| variant | seeds | concordance mean ± sd | worst | unsafe mean ± sd | worst | KL mean ± sd |",
        "|---|---|---|---|---|---|---|",
    ]
    for variant in VARIANTS:
        mine = sorted((r for r in rows if r["variant"] == variant), key=lambda r: r["seed"])
        if not mine:
            continue
        cells = [variant, " ".join(str(r["seed"]) for r in mine)]
        for metric in METRICS:
            values = [_value(r, metric) for r in mine]
            sd = statistics.stdev(values) if len(values) > 1 else float("nan")
            cells.append(f"{statistics.fmean(values):.3f} ± {sd:.3f}")
            if metric != "kl":  # the worst run: least concordant, most unsafe
                cells.append(f"{(min if metric.endswith('concordance') else max)(values):.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def screening_ablation(home: Path, work: Path) -> dict[str, Any]:
    """Who the default screening leaves out of one finished run's feedback, with the guideline safety
    check on and off, and the SHA-256 of each screened snapshot. The store is copied first: opening
    a store migrates it, and the run's own home is not ours to write."""
    import shutil
    from dataclasses import replace
    from functools import partial

    from clinrlhf.feedback import snapshot_sha256
    from clinrlhf.feedback.canonical import canonical_judgments
    from clinrlhf.feedback.safety import SafetyCheckConfig
    from clinrlhf.feedback.screening import ScreeningConfig, exclude, screen
    from clinrlhf.rlaif import rubric
    from clinrlhf.store import consistent_read, open_store
    from clinrlhf.store.snapshot import export_judgments
    from clinrlhf.world.world import load_world

    work.mkdir(parents=True, exist_ok=True)
    copy = work / f"{home.parent.name}-{home.name}.db"
    shutil.copyfile(home / "clinrlhf.db", copy)
    world = load_world()
    with consistent_read(open_store(f"sqlite:///{copy}")) as session:
        judgments = canonical_judgments(export_judgments(session, world))
    row: dict[str, Any] = {"home": str(home), "judgments": len(judgments)}
    for name, enabled in (("on", True), ("off", False)):
        config = replace(ScreeningConfig(), safety=SafetyCheckConfig(enabled=enabled))
        found = screen(judgments, config, partial(rubric.grade, world))
        kept = exclude(judgments, found.flags)
        row[name] = {"left_out": sorted(found.flags), "snapshot_sha256": snapshot_sha256(kept)}
        if found.safety is not None:
            row[name]["safety_flagged"] = sorted(r.clinician for r in found.safety if r.flagged)
    row["same_snapshot"] = row["on"]["snapshot_sha256"] == row["off"]["snapshot_sha256"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--jobs", type=int, default=1, help="pipeline runs at once (each uses one thread)")
    parser.add_argument(
        "--out", type=Path, required=True, help="folder of the runs' homes and results.ndjson"
    )
    parser.add_argument("--report", action="store_true", help="only print the table of what has finished")
    parser.add_argument(
        "--screening",
        type=Path,
        nargs="+",
        metavar="HOME",
        help="screen finished runs' feedback, check on and off",
    )
    args = parser.parse_args()
    if args.screening:
        rows = [screening_ablation(home, args.out) for home in args.screening]
        print(json.dumps(rows, indent=2))
        return
    results = args.out / "results.ndjson"
    if args.report:
        print(report(results))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    lock = threading.Lock()
    # Seed-major: the variants of one seed finish together, so a cut-short sweep is still paired.
    jobs = [(v, s) for s in args.seeds for v in args.variants]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for done in [pool.submit(_one, v, s, args.out, results, lock) for v, s in jobs]:
            done.result()
    print(report(results))


if __name__ == "__main__":
    main()
