"""summary.json keeps working when CLINRLHF_HOME is copied to another folder."""

import json
import shutil
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from clinrlhf.pipeline.sample_run import record_sample_run
from clinrlhf.pipeline.summary import HOME_RELATIVE, read_summary, with_home_relative
from clinrlhf.settings import Settings


@pytest.fixture
def written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict]:
    """A summary.json as `clinrlhf quickstart` writes it, for a sample run in a home."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings = Settings(home=tmp_path / "original")
    home = settings.resolved_home
    run = record_sample_run(settings)
    report = home / "reports" / f"{run.pipeline_run_id}.html"
    report.parent.mkdir()
    report.write_text("<html>report</html>")
    summary = with_home_relative(
        {
            "mlflow_run_id": run.pipeline_run_id,
            "mlflow_tracking_uri": settings.mlflow_tracking_uri,
            "policy_dir": str(run.policy_dir),
            "report": str(report),
            "report_pdf": None,
        },
        home,
    )
    out = home / "quickstart" / "summary.json"
    out.parent.mkdir()
    out.write_text(json.dumps(summary))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # set_tracking_uri exported the original
    return home, summary


def test_the_contracts_keys_stay_absolute_and_relative_companions_ride_along(written):
    home, summary = written
    assert Path(summary["policy_dir"]).is_absolute() and Path(summary["report"]).is_absolute()
    assert summary[HOME_RELATIVE] == {
        "policy_dir": str(Path(summary["policy_dir"]).relative_to(home)),
        "report": str(Path(summary["report"]).relative_to(home)),
        "mlflow_tracking_uri": "mlflow.db",
    }


def test_a_copied_home_resolves_its_summary_in_the_copy(written, tmp_path):
    home, summary = written
    copy = tmp_path / "elsewhere" / "home"
    shutil.copytree(home, copy)
    home.rename(tmp_path / "gone")
    resolved = read_summary(copy / "quickstart" / "summary.json", copy)
    assert (Path(resolved["policy_dir"]) / "config.json").is_file()
    assert Path(resolved["report"]).read_text() == "<html>report</html>"
    assert resolved["mlflow_tracking_uri"] == f"sqlite:///{copy / 'mlflow.db'}"
    assert (
        MlflowClient(resolved["mlflow_tracking_uri"]).get_run(summary["mlflow_run_id"]).info.status
        == "FINISHED"
    )
    assert resolved["report_pdf"] is None
