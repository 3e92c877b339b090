"""`clinrlhf report RUN_ID [--pdf]` renders the report afresh from MLflow and prints each path."""

from pathlib import Path

from clinrlhf.cli import main


def test_report_of_a_stage_run_writes_the_pipeline_report(sample, tmp_path, capsys):
    assert main(["report", sample.good.stages["reward"], "--out", str(tmp_path)]) == 0
    (html,) = capsys.readouterr().out.split()
    assert Path(html) == tmp_path / f"{sample.good.pipeline_run_id}.html"
    assert 'id="model-card"' in Path(html).read_text()


def test_default_folder_is_the_reports_folder_under_home(sample, capsys):
    assert main(["report", sample.good.pipeline_run_id]) == 0
    assert Path(capsys.readouterr().out.strip()).parent == sample.settings.resolved_home / "reports"


def test_pdf_flag_writes_a_pdf_too(sample, tmp_path, capsys):
    assert main(["report", sample.good.pipeline_run_id, "--pdf", "--out", str(tmp_path)]) == 0
    html, pdf = capsys.readouterr().out.split()
    assert Path(pdf).read_bytes().startswith(b"%PDF") and Path(html).suffix == ".html"


def test_unknown_run_is_one_line(sample, capsys):
    assert main(["report", "f" * 32]) == 2
    assert capsys.readouterr().err.count("\n") == 1
