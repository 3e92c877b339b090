"""The report's privacy ledger: every DP reward run of the experiment, newest always included, and
the deployment odometer's composed ε (the Rényi filter's figure, logged with each charged run),
never a sum of the runs' own ε."""

from __future__ import annotations

import re
import time
from pathlib import Path

import mlflow
import pytest

from clinrlhf.compliance.privacy_spent import odometers, spent_runs
from clinrlhf.compliance.report import build_report
from clinrlhf.lineage.chain import load_chain
from clinrlhf.lineage.runs import lineage_tags, stage_run
from clinrlhf.reward.ledger import LEDGER_FILE, Budget, PrivacyLedger
from privacy.dp.renyi_filter import Mechanism, filter_epsilon

DELTA = 1e-6
RUN = Mechanism(noise_multiplier=1.0, sample_rate=0.05, steps=200)


def _reward_run(odometer: PrivacyLedger | None, epsilon: float, digest: str = "e" * 64) -> str:
    """A reward run as reward_stage logs one: its own guarantee and, if charged, the odometer's figures."""
    with stage_run("reward", lineage=lineage_tags(digest, "d" * 64), nested=False) as run:
        mlflow.log_params(
            {
                "dp.enabled": True,
                "dp.noise_multiplier": RUN.noise_multiplier,
                "dp.sample_rate": RUN.sample_rate,
                "dp.steps": RUN.steps,
                "dp.delta": 1e-5,
                "dp.privacy_unit": "judgment",
            }
        )
        mlflow.log_metric("dp.epsilon", epsilon)
        if odometer is not None:
            odometer.charge(digest, RUN, delta=1e-5, epsilon=epsilon, n_units=1000, privacy_unit="judgment")
            params, metrics = odometer.odometer("judgment")
            mlflow.log_params(params)
            mlflow.log_metrics(metrics)
    time.sleep(0.01)  # distinct start times, so "newest" is well defined
    return run.info.run_id


def test_the_ledger_keeps_the_newest_runs_when_there_are_more_than_it_shows(sample) -> None:  # type: ignore[no-untyped-def]
    runs = [_reward_run(None, 1.0 + i) for i in range(4)]
    experiment_id = sample.client.get_run(runs[0]).info.experiment_id
    shown = [e.run_id for e in spent_runs(sample.client, experiment_id, limit=3)]
    assert shown == runs[-3:]  # oldest first, and the newest is never dropped


def test_the_report_shows_the_odometers_composed_epsilon_including_the_last_run(
    sample,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    odometer = PrivacyLedger(tmp_path / LEDGER_FILE, Budget(epsilon=1e6, delta=DELTA))
    own = [2.0, 3.0, 4.0]
    runs = [_reward_run(odometer, eps, digest=f"{i}" * 64) for i, eps in enumerate(own)]
    composed = filter_epsilon([RUN] * 3, DELTA)
    assert composed < sum(filter_epsilon([RUN], DELTA) for _ in own)

    entries = spent_runs(sample.client, sample.client.get_run(runs[0]).info.experiment_id)
    assert entries[-1].run_id == runs[-1]
    (judgment,) = [o for o in odometers(entries) if o.unit == "judgment"]
    assert judgment.epsilon == pytest.approx(composed) and judgment.run_id == runs[-1]
    assert judgment.runs == 3 and judgment.delta == pytest.approx(DELTA)

    chain = load_chain(sample.client, sample.good.pipeline_run_id)
    html = build_report(sample.client, chain, sample.settings.mlflow_tracking_uri, sessions=sample.sessions)
    section = html[html.index('id="privacy"') : html.index('id="deid"')]
    text = re.sub(r"<[^>]+>", " ", section)
    assert f"{composed:.2f}" in text and runs[-1][:12] in section
    assert "Rényi filter" in text
    assert "Sum of ε" not in text and f"{sum(own):.2f}" not in text
