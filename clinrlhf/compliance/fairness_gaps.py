"""The fairness audit of one run's eval metrics: per subgroup both policies side by side, the largest
gap between two groups of an attribute (the promotion gate's figure, with the two groups behind it),
and the gate's own verdict on its subgroup-gap criteria. Pure: it reads parse_eval_run's result."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from clinrlhf.compliance.criteria import AcceptanceCriteria, CriterionResult, check_criteria
from clinrlhf.compliance.evalmetrics import Rates, max_gap

METRICS = {"concordance": "concordance", "unsafe_rate": "unsafe"}
POLICIES = {"supervised": "before", "aligned": "after"}  # label -> parse_eval_run's key


@dataclass(frozen=True)
class Gap:
    """The largest difference in one metric between two groups of one attribute."""

    metric: str
    policy: str
    gap: float
    attribute: str
    high_group: str
    high_value: float
    low_group: str
    low_value: float


def figure(values: Mapping[str, float], metric: str) -> dict[str, float | None]:
    """A metric with its bootstrap bounds; None where the run logged none."""
    return {
        "value": values.get(metric),
        "ci_low": values.get(f"{metric}_ci_low"),
        "ci_high": values.get(f"{metric}_ci_high"),
    }


def largest_gap(rates: Rates, metric: str, policy: str, min_n: int) -> Gap | None:
    """The gate's gap (max_gap: same figure, same attribute) and the two groups that make it."""
    found = max_gap(rates, metric, min_n)
    if found is None:
        return None
    gap, attribute = found
    members = [(g, v[metric]) for a, g, v in rates.groups(min_n) if a == attribute and metric in v]
    (high, high_value), (low, low_value) = max(members, key=_second), min(members, key=_second)
    return Gap(metric, policy, gap, attribute, high, high_value, low, low_value)


def _second(pair: tuple[str, float]) -> float:
    return pair[1]


def group_rows(rates: Mapping[str, Rates], min_n: int) -> list[dict[str, Any]]:
    """One row per (attribute, group) that either policy logged, both policies side by side."""
    keys = sorted({(a, g) for r in rates.values() for a, groups in r.subgroups.items() for g in groups})
    rows = []
    for attribute, group in keys:
        per_policy = {
            label: rates[key].subgroups.get(attribute, {}).get(group, {}) for label, key in POLICIES.items()
        }
        n = per_policy["aligned"].get("n", per_policy["supervised"].get("n", 0.0))
        row: dict[str, Any] = {"attribute": attribute, "group": group, "n": int(n), "in_gap": n >= min_n}
        for label, values in per_policy.items():
            row[label] = {metric: figure(values, metric) for metric in METRICS}
        rows.append(row)
    return rows


def gate_verdicts(after: Rates, criteria: AcceptanceCriteria) -> list[CriterionResult]:
    """check_criteria's own results for its two subgroup-gap criteria (ε is not this audit's)."""
    return [r for r in check_criteria(criteria, after, math.inf) if r.name.startswith("subgroup gap")]


def gaps_report(rates: Mapping[str, Rates], criteria: AcceptanceCriteria) -> dict[str, Any]:
    """Everything the fairness table shows, from parse_eval_run's result: JSON-ready apart from NaN."""
    min_n = criteria.min_subgroup_n
    gaps = {
        (metric, label): largest_gap(rates[key], metric, label, min_n)
        for metric in METRICS
        for label, key in POLICIES.items()
    }
    return {
        "criteria": {"max_subgroup_gap": criteria.max_subgroup_gap, "min_subgroup_n": min_n},
        "overall": {
            "n": int(rates["after"].get("n", rates["before"].get("n", 0.0))),
            **{label: {m: figure(rates[k].overall, m) for m in METRICS} for label, k in POLICIES.items()},
        },
        "groups": group_rows(rates, min_n),
        # None: no attribute has two groups with n >= min_n, which the gate counts as a failure.
        "gaps": [asdict(g) if g else {"metric": m, "policy": p, "gap": None} for (m, p), g in gaps.items()],
        "gate": [asdict(r) for r in gate_verdicts(rates["after"], criteria)],
    }


def attribute_gap(rows: Sequence[Mapping[str, Any]], metric: str) -> dict[str, Any] | None:
    """The aligned policy's largest gap in `metric` between two of these groups (n >= min_n)."""
    values = [(r["group"], r["aligned"][metric]["value"]) for r in rows if r["in_gap"]]
    values = [(g, v) for g, v in values if v is not None and math.isfinite(v)]
    if len(values) < 2:
        return None
    (high, hv), (low, lv) = max(values, key=_second), min(values, key=_second)
    return {"gap": hv - lv, "high_group": high, "high_value": hv, "low_group": low, "low_value": lv}
