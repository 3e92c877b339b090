"""Read an eval run's metrics back into overall and per-subgroup values.

CONTRACT names them `eval.<metric>` and `eval.<metric>.<attribute>.<group>`; the supervised
baseline is logged in the same run under `eval.before.`, and bootstrap bounds are metrics named
`<metric>_ci_low` and `<metric>_ci_high` (see clinrlhf.eval.bootstrap.interval_metrics).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

BEFORE = "before"


@dataclass
class Rates:
    overall: dict[str, float] = field(default_factory=dict)  # metric -> value
    subgroups: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # attr -> group -> metric

    def get(self, metric: str, default: float = float("nan")) -> float:
        return self.overall.get(metric, default)

    def groups(self, min_n: int = 0) -> list[tuple[str, str, dict[str, float]]]:
        """(attribute, group, metrics) for each subgroup with at least `min_n` scenarios, sorted."""
        return [
            (attribute, group, values)
            for attribute, groups in sorted(self.subgroups.items())
            for group, values in sorted(groups.items())
            if values.get("n", 0.0) >= min_n
        ]

    def gap(self, metric: str, attribute: str, min_n: int) -> float | None:
        """The largest difference in `metric` between two groups of `attribute` with at least
        `min_n` scenarios (the promotion gate's figure); None if fewer than two such groups."""
        values = [v[metric] for a, _, v in self.groups(min_n) if a == attribute and metric in v]
        return max(values) - min(values) if len(values) >= 2 else None


def parse_rates(metrics: Mapping[str, float], prefix: str = "eval.") -> Rates:
    """The metrics under `prefix`, leaving out those of the baseline (`eval.before.`)."""
    rates = Rates()
    for key, value in metrics.items():
        if not key.startswith(prefix) or key.startswith(f"{prefix}{BEFORE}."):
            continue
        parts = key[len(prefix) :].split(".", 2)  # group names may hold dots; metric names never do
        if len(parts) == 1:
            rates.overall[parts[0]] = value
        elif len(parts) == 3:
            metric, attribute, group = parts
            rates.subgroups.setdefault(attribute, {}).setdefault(group, {})[metric] = value
    return rates


def parse_eval_run(metrics: Mapping[str, float]) -> dict[str, Rates]:
    """{"after": the aligned policy, "before": the supervised baseline} from one eval run."""
    return {"after": parse_rates(metrics, "eval."), "before": parse_rates(metrics, f"eval.{BEFORE}.")}


def max_gap(rates: Rates, metric: str, min_n: int) -> tuple[float, str] | None:
    """The largest difference in `metric` between two groups of the same attribute, counting only
    groups with at least `min_n` scenarios, and that attribute; None if no attribute has two."""
    gaps = [(rates.gap(metric, a, min_n), a) for a in sorted(rates.subgroups)]
    found = [(gap, attribute) for gap, attribute in gaps if gap is not None]
    return max(found, key=lambda g: g[0]) if found else None
