"""Every benchmark's `--help` works: the scripts are run by hand, rarely, so an import that rotted
when the library moved on, or a help text argparse cannot format, would otherwise go unseen until
someone tries to reproduce a figure in the README."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
# Modules with no command line of their own: imported by the scripts, or served by uvicorn.
LIBRARIES = {
    "alignment_report.py",
    "alignment_rows.py",
    "common.py",
    "deid_notes.py",
    "fairness_report.py",
    "fairness_runs.py",
    "feedback_bare.py",
    "feedback_load.py",
    "finished_run.py",
    "pipeline_runs.py",
    "reward_optimum.py",
    "seed_table.py",
}
SCRIPTS = sorted(p for p in BENCHMARKS.glob("*.py") if p.name not in LIBRARIES)


def test_every_benchmark_is_checked() -> None:
    assert len(SCRIPTS) >= 10  # the glob found the directory


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_help_prints_usage_and_exits_zero(
    script: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", [str(script), "--help"])
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # the scripts import their sibling modules
    with pytest.raises(SystemExit) as exited:
        runpy.run_path(str(script), run_name="__main__")
    assert exited.value.code == 0
    assert "usage:" in capsys.readouterr().out
