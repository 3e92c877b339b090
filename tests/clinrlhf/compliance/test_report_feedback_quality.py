"""The compliance report shows the rater reliability table, per-clinician and per-case-type
agreement, and the race and ethnicity audit."""

from __future__ import annotations

import json
import random

import pytest

from clinrlhf.compliance import report as report_module
from clinrlhf.compliance import report_context
from clinrlhf.compliance.report import build_report
from clinrlhf.feedback.judgment import Judgment
from clinrlhf.feedback.reliability import dawid_skene, preference_labels, rater_table
from clinrlhf.feedback.safety import SafetyRow
from clinrlhf.feedback.screening import ScreeningConfig, quality_report
from clinrlhf.feedback.screening_release import released_quality
from clinrlhf.lineage.chain import load_chain


def _quality(safety: list[SafetyRow] | None = None) -> dict:
    rng = random.Random(0)
    acc = {"good-a": 0.9, "good-b": 0.9, "good-c": 0.9, "bad-z": 0.05}
    judgments = []
    for card in range(80):
        truth = rng.randrange(2)
        target = "hypertension" if card % 2 else "cystitis"
        for rater in rng.sample(sorted(acc), 3):
            pick = truth if rng.random() < acc[rater] else 1 - truth
            judgments.append(
                Judgment(
                    "pairwise",
                    f"c{card}",
                    f"p{card}",
                    rater,
                    f"age 40-44 ; treat {target} ->",
                    ("a x", "b y"),
                    pick,
                )
            )
    result = dawid_skene(preference_labels(judgments))
    config = ScreeningConfig(n_boot=100)
    return json.loads(
        json.dumps(
            quality_report(
                judgments, result, rater_table(result, config.outliers), config, ["bad-z"], 80, safety
            )
        )
    )


def test_quality_rows_format_the_tables():
    rows = report_context.quality_rows(_quality())
    by = {r["clinician"]: r for r in rows["raters"]}
    assert by["bad-z"]["status"] == "quarantined" and "accuracy" in by["bad-z"]["why"]
    assert by["good-a"]["status"] == "ok" and float(by["good-a"]["accuracy"]) > 0.8
    assert float(by["bad-z"]["kappa"]) < 0 and "–" in by["bad-z"]["kappa_ci"]
    assert [c["case"] for c in rows["cases"]] == ["cystitis", "hypertension"]
    assert rows["excluded"] == 80 and rows["quarantined"] == ["bad-z"]


def test_quality_rows_carry_the_guideline_check_when_it_ran():
    assert report_context.quality_rows(_quality())["safety_checked"] is False
    safety = [
        SafetyRow("good-a", 30, 1, 0.03, 0.6, False),
        SafetyRow("bad-z", 28, 9, 0.02, 1e-8, True),
    ]
    rows = report_context.quality_rows(_quality(safety))
    by = {r["clinician"]: r for r in rows["raters"]}
    assert rows["safety_checked"] is True
    assert by["bad-z"]["unsafe"] == "9 / 28" and "guideline-unsafe response in 9 of 28" in by["bad-z"]["why"]
    assert by["good-a"]["unsafe"] == "1 / 30" and "guideline" not in by["good-a"]["why"]
    assert by["good-b"]["unsafe"] == "–"  # not among the clinicians checked


@pytest.fixture
def html(sample, monkeypatch):
    quality = json.dumps(_quality())
    real_read, real_gather = report_context.read_artifact_text, report_module.gather

    def read(client, run_id, path):
        return quality if path == report_context.QUALITY_ARTIFACT else real_read(client, run_id, path)

    def gather(*args, **kwargs):
        ev = real_gather(*args, **kwargs)
        after = ev.rates["after"].subgroups
        after["race"] = {
            "black": {"concordance": 0.71, "unsafe_rate": 0.04, "n": 120.0},
            "white": {"concordance": 0.83, "unsafe_rate": 0.02, "n": 590.0},
        }
        return ev

    monkeypatch.setattr(report_context, "read_artifact_text", read)
    monkeypatch.setattr(report_module, "gather", gather)
    chain = load_chain(sample.client, sample.good.pipeline_run_id)
    return build_report(sample.client, chain, sample.settings.mlflow_tracking_uri, sessions=sample.sessions)


def test_report_carries_reliability_agreement_and_race(html):
    assert 'id="rater-reliability"' in html and 'id="case-agreement"' in html and 'id="fairness"' in html
    assert "<code>bad-z</code>" in html and "quarantined" in html
    assert "Dawid-Skene" in html
    assert "<th>unsafe chosen</th>" in html and "check of safety-critical choices did not run" in html
    fairness = html[html.index('id="fairness"') :]
    assert "<td>race</td><td>black</td><td>120</td><td>0.710</td>" in fairness


def test_report_without_quality_or_race_says_so(sample):
    chain = load_chain(sample.client, sample.good.pipeline_run_id)
    html = build_report(sample.client, chain, sample.settings.mlflow_tracking_uri)
    assert 'id="rater-reliability"' not in html
    assert "logged no race or ethnicity subgroups" in html


def test_released_quality_renders_roster_rows_or_counts_only():
    roster = ["good-a", "good-b", "good-c", "bad-z", "new-d"]  # new-d enrolled, never judged
    rows = report_context.quality_rows(released_quality(_quality(), "pair", roster))
    assert [r["clinician"] for r in rows["raters"]] == roster
    assert {r["clinician"]: r for r in rows["raters"]}["new-d"]["status"] == "no data"
    withheld = report_context.quality_rows(released_quality(_quality(), "clinician", roster))
    assert withheld["raters"] == [] and withheld["quarantined"] == []
    assert "clinician" in withheld["withheld"] and "clinicians quarantined 1" in withheld["counts"]
