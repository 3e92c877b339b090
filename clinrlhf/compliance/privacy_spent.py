"""The privacy ledger as the report shows it: every DP reward run in the experiment, what data it
read and what ε it spent, and the deployment's odometers.

Runs compose: a judgment may be read by every retrain, and a re-export of the same people is no
fresh budget. What bounds their joint spend is the deployment's odometer (clinrlhf.reward.ledger):
a Rényi filter over every charged run of a privacy unit (privacy.dp.renyi_filter), whose composed ε each
charged reward run logs as `ledger.epsilon` at the moment it was admitted. The report shows that
figure, from the newest charged run of each unit, never a sum of the runs' own ε.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from clinrlhf.lineage.odometer_names import LEDGER_BUDGET, LEDGER_DELTA, LEDGER_EPSILON, LEDGER_RUNS
from privacy.dp.guarantee import PRIVACY_UNITS, PrivacyGuarantee


@dataclass(frozen=True)
class SpentRun:
    run_id: str
    pipeline_run_id: str
    started: str
    snapshot_sha256: str
    epsilon: float
    delta: float
    unit: str
    dp: bool
    odometer_epsilon: float | None = None
    """The unit's composed ε right after this run was charged (None: not charged to an odometer)."""
    odometer_delta: float | None = None
    odometer_budget: float | None = None
    odometer_runs: int | None = None


@dataclass(frozen=True)
class Odometer:
    """One privacy unit's odometer, as the newest run charged to it left it."""

    unit: str
    epsilon: float
    """The Rényi filter's composed ε of every run charged to the unit so far, at `delta`."""
    delta: float
    budget: float
    runs: int
    run_id: str
    """The newest reward run charged to it (in this experiment)."""


def spent_runs(client: MlflowClient, experiment_id: str, limit: int = 200) -> list[SpentRun]:
    """The newest `limit` reward runs, oldest first: the search runs newest first, so a long history
    loses its oldest rows, never the latest retrain."""
    runs = client.search_runs(
        [experiment_id],
        "tags.`clinrlhf.stage` = 'reward'",
        max_results=limit,
        order_by=["attributes.start_time DESC"],
    )
    return [_entry(run) for run in reversed(runs)]


def _entry(run: Run) -> SpentRun:
    p, m, t = run.data.params, run.data.metrics, run.data.tags
    return SpentRun(
        run_id=run.info.run_id,
        pipeline_run_id=t.get("mlflow.parentRunId", ""),
        started=datetime.fromtimestamp(run.info.start_time / 1000, UTC).strftime("%Y-%m-%d %H:%M"),
        snapshot_sha256=t.get("clinrlhf.dataset_sha256", ""),
        epsilon=float(m.get("dp.epsilon", float("inf"))),
        delta=float(p.get("dp.delta", "nan")),
        unit=p.get("dp.privacy_unit", "?"),
        dp=p.get("dp.enabled", "True") != "False" and "dp.epsilon" in m,
        odometer_epsilon=m.get(LEDGER_EPSILON),
        odometer_delta=float(p[LEDGER_DELTA]) if LEDGER_DELTA in p else None,
        odometer_budget=float(p[LEDGER_BUDGET]) if LEDGER_BUDGET in p else None,
        odometer_runs=int(m[LEDGER_RUNS]) if LEDGER_RUNS in m else None,
    )


def odometers(entries: list[SpentRun]) -> list[Odometer]:
    """Each unit's odometer from the newest entry charged to it (entries oldest first)."""
    newest: dict[str, SpentRun] = {}
    for e in entries:
        if e.odometer_epsilon is not None:
            newest[e.unit] = e
    return [
        Odometer(
            unit=e.unit,
            epsilon=float(e.odometer_epsilon if e.odometer_epsilon is not None else math.inf),
            delta=float(e.odometer_delta if e.odometer_delta is not None else math.nan),
            budget=float(e.odometer_budget if e.odometer_budget is not None else math.nan),
            runs=int(e.odometer_runs or 0),
            run_id=e.run_id,
        )
        for e in sorted(newest.values(), key=lambda e: e.unit)
    ]


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
