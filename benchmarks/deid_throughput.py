"""Structured de-identification throughput on the Synthea bundles, in resources per second, one core.

    python benchmarks/deid_throughput.py --out deid_throughput.json

Each patient Bundle goes through `deidentify_with_report` with the default rule file: every
resource is either transformed or dropped, and every DocumentReference note is base64-decoded,
scrubbed and re-encoded. JSON parsing is outside the timed region; the rule tree is built before it.
Single process, no torch import.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from privacy.deid import DeidReport, default_rules, deidentify_with_report  # noqa: E402

SYNTHEA = Path(__file__).resolve().parents[2] / "shared" / "data" / "synthea-r4"
KEY = b"benchmark-key-not-a-secret-000000"


def patient_bundles(folder: Path) -> list[dict[str, Any]]:
    bundles = [json.loads(p.read_bytes()) for p in sorted(folder.glob("*.json"))]
    return [b for b in bundles if any(e["resource"]["resourceType"] == "Patient" for e in b.get("entry", []))]


def one_pass(bundles: Sequence[dict[str, Any]], today: date) -> tuple[float, DeidReport]:
    rules = default_rules()
    total = DeidReport(rules.name, rules.version, rules.sha256)
    started = time.perf_counter()
    for bundle in bundles:
        _, report = deidentify_with_report(bundle, key=KEY, today=today)
        total.merge(report)
    return time.perf_counter() - started, total


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SYNTHEA, help="folder of Synthea FHIR R4 bundles")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    bundles = patient_bundles(args.data)
    today = date(2026, 3, 1)
    one_pass(bundles[:1], today)  # warm-up: compiles the rule tree and the recognizers
    runs = [one_pass(bundles, today) for _ in range(args.repeats)]
    report = runs[0][1]
    seconds = [s for s, _ in runs]
    per_second = [report.resources_in / s for s in seconds]
    result = {
        "bundles": report.bundles,
        "resources": report.resources_in,
        "resources_kept": report.resources_out,
        "notes_scrubbed": report.by_identifier.get("free_text", 0),
        "repeats": args.repeats,
        "seconds_median": statistics.median(seconds),
        "resources_per_second_median": statistics.median(per_second),
        "resources_per_second_best": max(per_second),
        "processes": 1,
        "cpu": platform.processor() or platform.machine(),
        "cpus_visible": os.cpu_count(),
        "python": platform.python_version(),
        "rules_sha256": report.rules_sha256,
    }
    print(
        f"{'bundles':>8} {'resources':>10} {'kept':>6} {'notes':>6} {'median s':>9} {'res/s median':>13} {'res/s best':>11}"
    )
    print(
        f"{result['bundles']:8d} {result['resources']:10d} {result['resources_kept']:6d} "
        f"{result['notes_scrubbed']:6d} {result['seconds_median']:9.3f} "
        f"{result['resources_per_second_median']:13.0f} {result['resources_per_second_best']:11.0f}"
    )
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
