"""Figures over pipeline seeds: per seed, mean ± sd, and the worst run, as the multi-seed table shows.

Pure functions of the per-seed rows that benchmarks/pipeline_seeds.py collects. "Worst" is per
metric, in the direction that would fail a target: the lowest concordance, the highest unsafe rate,
KL, gap, ε or time."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

# metric -> (column label, format, True where higher is better)
COLUMNS: dict[str, tuple[str, str, bool]] = {
    "concordance": ("concordance", ".3f", True),
    "unsafe_rate": ("unsafe", ".3f", False),
    "unseen_concordance": ("unseen-prompt conc.", ".3f", True),
    "unseen_n": ("unseen n", ".0f", True),
    "kl": ("final KL", ".2f", False),
    "kl_over_target": ("KL / target", ".2f", False),
    "age_band_gap": ("age-band gap", ".3f", False),
    "sex_gap": ("sex gap", ".3f", False),
    "epsilon": ("ε", ".2f", False),
    "wall_seconds": ("wall s", ".0f", False),
    "cpu_seconds": ("CPU s", ".0f", False),
}


def _finite(values: Sequence[Any]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def aggregate(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float | None]]:
    """{metric: {mean, sd, worst, n}} over the rows (one per seed). sd is the sample standard
    deviation (n − 1), None for a single run; a metric no row has a finite value of is left out."""
    out: dict[str, dict[str, float | None]] = {}
    for metric, (_, _, higher_is_better) in COLUMNS.items():
        values = _finite([row.get(metric) for row in rows])
        if not values:
            continue
        out[metric] = {
            "mean": statistics.fmean(values),
            "sd": statistics.stdev(values) if len(values) > 1 else None,
            "worst": min(values) if higher_is_better else max(values),
            "n": float(len(values)),
        }
    return out


def _cell(value: Any, fmt: str) -> str:
    return "–" if value is None or not math.isfinite(float(value)) else format(float(value), fmt)


def markdown(rows: Sequence[Mapping[str, Any]], cohort: str) -> str:
    """The table: one line per seed, then mean ± sd and worst."""
    stats = aggregate(rows)
    metrics = [m for m in COLUMNS if m in stats]
    head = "| seed | " + " | ".join(COLUMNS[m][0] for m in metrics) + " |"
    lines = [f"Cohort: {cohort}; {len(rows)} pipeline seeds.", "", head, "|---" * (len(metrics) + 1) + "|"]
    for row in rows:
        lines.append(
            f"| {row['seed']} | " + " | ".join(_cell(row.get(m), COLUMNS[m][1]) for m in metrics) + " |"
        )

    def spread(m: str) -> str:
        s = stats[m]
        sd = "" if s["sd"] is None else f" ± {_cell(s['sd'], COLUMNS[m][1])}"
        return _cell(s["mean"], COLUMNS[m][1]) + sd

    lines.append("| mean ± sd | " + " | ".join(spread(m) for m in metrics) + " |")
    lines.append("| worst | " + " | ".join(_cell(stats[m]["worst"], COLUMNS[m][1]) for m in metrics) + " |")
    return "\n".join(lines)
