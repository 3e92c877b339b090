"""The privacy ledger: every DP reward run in the experiment, what data it read and what ε it spent.

Each run's guarantee holds for its own snapshot. Snapshots grow, so a judgment may be read by every
run; runs compose, and the sum of their ε bounds what such a judgment has spent (basic composition,
Dwork & Roth 2014, Theorem 3.16; tighter accounting across runs would need their noise jointly).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from mlflow.tracking import MlflowClient

from privacy.dp.guarantee import PRIVACY_UNITS, PrivacyGuarantee


@dataclass(frozen=True)
class LedgerEntry:
    run_id: str
    pipeline_run_id: str
    started: str
    snapshot_sha256: str
    epsilon: float
    delta: float
    unit: str
    dp: bool


def ledger(client: MlflowClient, experiment_id: str, limit: int = 200) -> list[LedgerEntry]:
    runs = client.search_runs(
        [experiment_id],
        "tags.`clinrlhf.stage` = 'reward'",
        max_results=limit,
        order_by=["attributes.start_time ASC"],
    )
    entries = []
    for run in runs:
        p, m, t = run.data.params, run.data.metrics, run.data.tags
        entries.append(
            LedgerEntry(
                run_id=run.info.run_id,
                pipeline_run_id=t.get("mlflow.parentRunId", ""),
                started=datetime.fromtimestamp(run.info.start_time / 1000, UTC).strftime("%Y-%m-%d %H:%M"),
                snapshot_sha256=t.get("clinrlhf.dataset_sha256", ""),
                epsilon=float(m.get("dp.epsilon", float("inf"))),
                delta=float(p.get("dp.delta", "nan")),
                unit=p.get("dp.privacy_unit", "?"),
                dp=p.get("dp.enabled", "True") != "False" and "dp.epsilon" in m,
            )
        )
    return entries


def total_epsilon(entries: list[LedgerEntry]) -> float:
    """ε spent by all runs together on a judgment that every run read (an upper bound)."""
    return sum(e.epsilon for e in entries)


def guarantee_of(params: dict[str, str], epsilon: float) -> PrivacyGuarantee | None:
    """The run's guarantee rebuilt from its `dp.*` params, or None for a run trained without DP."""
    unit = params.get("dp.privacy_unit", "")
    if params.get("dp.enabled") == "False" or unit not in PRIVACY_UNITS or epsilon != epsilon:
        return None
    try:
        return PrivacyGuarantee(
            epsilon=epsilon,
            delta=float(params["dp.delta"]),
            unit=unit,  # type: ignore[arg-type]
            accountant=params.get("dp.accountant", "?"),
            noise_multiplier=float(params["dp.noise_multiplier"]),
            sample_rate=float(params["dp.sample_rate"]),
            steps=int(float(params["dp.steps"])),
        )
    except (KeyError, ValueError):
        return None
