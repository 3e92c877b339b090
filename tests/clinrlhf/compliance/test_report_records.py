"""The compliance report shows the change record and the CHAI Applied Model Card of each promoted
version of its run, and `clinrlhf report RUN_ID --records` exports both as JSON and Markdown."""

from __future__ import annotations

import json
from pathlib import Path

from clinrlhf.cli import main
from clinrlhf.compliance.approval import approve
from clinrlhf.compliance.criteria import AcceptanceCriteria
from clinrlhf.compliance.promotion import promote, rollback
from clinrlhf.compliance.registry import EVAL_RUN, MODEL_NAME
from clinrlhf.compliance.report import build_report
from clinrlhf.identity import Principal
from clinrlhf.lineage.chain import load_chain

OFFICER = Principal(sub="officer-1", role="compliance", scopes=frozenset(), issuer="test", name="Dr. Ada Lee")
LENIENT = AcceptanceCriteria(min_concordance=0.4, max_unsafe_rate=0.2, max_subgroup_gap=0.5)


def _promote(sample, version) -> None:
    approve(sample.client, sample.sessions, version, OFFICER, sample.settings.deid_secret, criteria=LENIENT)
    promote(sample.client, sample.sessions, sample.settings, version, LENIENT, OFFICER)


def _html(sample, run) -> str:
    chain = load_chain(sample.client, run.pipeline_run_id)
    return build_report(sample.client, chain, sample.settings.mlflow_tracking_uri, LENIENT, sample.sessions)


def test_before_any_promotion_the_report_says_the_records_are_written_at_promotion(sample) -> None:
    html = _html(sample, sample.good)
    assert 'id="change-records"' in html and 'id="chai-card"' in html
    assert "No version of this run has been promoted yet; a change record" in html


def test_the_report_shows_the_change_record_with_the_previous_versions_subgroups_and_the_chai_card(
    sample,
) -> None:
    _promote(sample, sample.good.version)
    _promote(sample, sample.poor.version)
    html = _html(sample, sample.poor)
    records = html.split('id="change-records"', 1)[1].split('id="chai-card"', 1)[0]
    assert f"replaces version {sample.good.version} in production" in records
    assert "Promoted by Dr. Ada Lee (compliance)" in records
    old = sample.client.get_run(
        sample.client.get_model_version(MODEL_NAME, sample.good.version).tags[EVAL_RUN]
    ).data.metrics
    new = sample.client.get_run(
        sample.client.get_model_version(MODEL_NAME, sample.poor.version).tags[EVAL_RUN]
    ).data.metrics
    row = records.split("<td>sex female</td>", 1)[1].split("</tr>", 1)[0]
    before, after = old["eval.concordance.sex.female"], new["eval.concordance.sex.female"]
    assert f"<td>{before:.3f}</td><td>{after:.3f}</td><td>{after - before:+.3f}</td>" in row
    card = html.split('id="chai-card"', 1)[1].split('<h2 id="lineage">', 1)[0]
    for section in ("ReleaseInfo", "UsesAndDirections", "Warnings", "TrustIngredients", "KeyMetrics"):
        assert f"<h3>{section}</h3>" in card
    assert f"clinrlhf-policy v{sample.poor.version}" in card


def test_report_records_exports_both_records_as_json_and_markdown(sample, tmp_path: Path, capsys) -> None:
    _promote(sample, sample.good.version)
    assert main(["report", sample.good.pipeline_run_id, "--records", "--out", str(tmp_path)]) == 0
    printed = [Path(p) for p in capsys.readouterr().out.split()]
    stem = f"{MODEL_NAME}-v{sample.good.version}"
    expected = {
        f"{stem}-{n}" for n in ("change-record.json", "change-record.md", "chai-card.json", "chai-card.md")
    }
    assert {p.name for p in printed[1:]} == expected and all(p.parent == tmp_path for p in printed)
    record = json.loads((tmp_path / f"{stem}-change-record.json").read_text())
    assert record["previous_version"] == "none" and record["version"] == sample.good.version
    assert (tmp_path / f"{stem}-chai-card.md").read_text().startswith("# CHAI Applied Model Card")


def test_report_records_of_a_run_never_promoted_exports_nothing(sample, tmp_path: Path, capsys) -> None:
    assert main(["report", sample.good.pipeline_run_id, "--records", "--out", str(tmp_path)]) == 0
    assert [Path(p).suffix for p in capsys.readouterr().out.split()] == [".html"]


def test_report_records_exports_the_rollback_record_of_a_version_rolled_back_to(
    sample, tmp_path: Path, capsys
) -> None:
    _promote(sample, sample.good.version)
    _promote(sample, sample.poor.version)
    rollback(sample.client, sample.sessions, sample.settings, OFFICER)
    assert main(["report", sample.good.pipeline_run_id, "--records", "--out", str(tmp_path)]) == 0
    names = {Path(p).name for p in capsys.readouterr().out.split()}
    stem = f"{MODEL_NAME}-v{sample.good.version}"
    assert {f"{stem}-rollback-change-record.json", f"{stem}-rollback-change-record.md"} <= names
    record = json.loads((tmp_path / f"{stem}-rollback-change-record.json").read_text())
    assert record["change"] == "rollback" and record["previous_version"] == sample.poor.version
    promotion = json.loads((tmp_path / f"{stem}-change-record.json").read_text())
    assert promotion["change"] == "promotion" and promotion["previous_version"] == "none"
