"""What `clinrlhf quickstart` prints at the end: the test cohort's outcome, and apart from it the
outcome on the test scenarios whose prompt no trainer read."""

from __future__ import annotations

from rich.console import Console

from clinrlhf.cli.quickstart import print_summary

SUMMARY = {
    "before": {"concordance": 0.58, "unsafe_rate": 0.2},
    "after": {"concordance": 0.83, "unsafe_rate": 0.04},
    "unseen_prompts": {"concordance": 0.79, "unsafe_rate": 0.05, "n": 612.0},
    "epsilon": 8.0,
    "delta": 1e-6,
    "kl": 1.1,
    "kl_target": 1.0,
    "seconds": 540.0,
    "report": "/home/report.html",
    "mlflow_run_id": "abc",
    "mlflow_tracking_uri": "sqlite:///home/mlflow.db",
}


def test_the_summary_names_the_test_cohort_and_the_unseen_prompt_figures() -> None:
    console = Console(record=True, width=200)
    print_summary(SUMMARY, console)
    text = console.export_text()
    assert "test cohort" in text and "held-out" not in text
    assert "on the 612 test scenarios whose prompt no trainer read: concordance 0.790, unsafe 0.050" in text


def test_a_summary_without_unseen_figures_still_prints() -> None:
    console = Console(record=True, width=200)
    print_summary({k: v for k, v in SUMMARY.items() if k != "unseen_prompts"}, console)
    assert "no trainer read" not in console.export_text()
