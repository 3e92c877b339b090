"""The report context and `summary.json` for one pipeline run."""

from __future__ import annotations

from collections import Counter
from typing import Any

from clinrlhf.eval.evaluate import Evaluation
from clinrlhf.lineage import plots
from clinrlhf.lineage.report import Criterion


def subgroup_rows(before: Evaluation, after: Evaluation) -> list[dict[str, Any]]:
    rows = []
    for attribute, groups in after.subgroups.items():
        for group, values in groups.items():
            b = before.subgroups[attribute][group]
            rows.append(
                {
                    "attribute": attribute,
                    "group": group,
                    "n": int(values["n"]),
                    "before_concordance": b["concordance"],
                    "after_concordance": values["concordance"],
                    "before_unsafe": b["unsafe_rate"],
                    "after_unsafe": values["unsafe_rate"],
                }
            )
    return rows


def subgroup_plots(rows: list[dict[str, Any]]) -> list[str]:
    images = []
    for attribute in sorted({r["attribute"] for r in rows}):
        mine = [r for r in rows if r["attribute"] == attribute]
        images.append(
            plots.before_after_bars(
                [f"{attribute}={r['group']}" for r in mine],
                [r["before_concordance"] for r in mine],
                [r["after_concordance"] for r in mine],
                "concordance",
            )
        )
    return images


def criteria(
    before: Evaluation,
    after: Evaluation,
    epsilon: float,
    delta: float,
    n_pairs: int,
    kl: float,
    kl_target: float,
) -> list[Criterion]:
    gain = after.concordance - before.concordance
    return [
        Criterion("concordance gain over supervised", ">= 0.15", f"{gain:+.3f}", gain >= 0.15),
        Criterion(
            "unsafe rate vs supervised",
            "<= 50%",
            f"{after.unsafe_rate:.3f} vs {before.unsafe_rate:.3f}",
            after.unsafe_rate <= 0.5 * before.unsafe_rate,
        ),
        Criterion("privacy: epsilon", "<= 8", f"{epsilon:.3f}", epsilon <= 8.0),
        Criterion(
            "privacy: delta",
            f"<= 1/n = {1 / max(n_pairs, 1):.2e}",
            f"{delta:.2e}",
            delta <= 1 / max(n_pairs, 1),
        ),
        Criterion("final KL vs target", f"<= 1.5 x {kl_target:g}", f"{kl:.3f}", kl <= 1.5 * kl_target),
    ]


def deid_counts(counts: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counts.items())
