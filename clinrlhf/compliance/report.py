"""The compliance report: one self-contained HTML file per pipeline run, and its PDF, rendered from
what MLflow and the audit trail hold for the run."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from mlflow.tracking import MlflowClient
from sqlalchemy.orm import Session, sessionmaker

from clinrlhf.compliance.criteria import AcceptanceCriteria
from clinrlhf.compliance.evidence import gather
from clinrlhf.compliance.pdf import html_to_pdf
from clinrlhf.compliance.report_context import report_context
from clinrlhf.lineage.chain import Chain, load_chain


@dataclass(frozen=True)
class Criterion:
    name: str
    required: str
    measured: str
    passed: bool


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("clinrlhf.compliance", "templates"), autoescape=select_autoescape(["html"])
    )


def render_report(context: dict[str, Any]) -> str:
    context = {"generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), **context}
    return _environment().get_template("report.html").render(**context)


def write_report(context: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(context), encoding="utf-8")
    return path


@dataclass(frozen=True)
class ReportFiles:
    html: Path
    pdf: Path | None


def build_report(
    client: MlflowClient,
    chain: Chain,
    tracking_uri: str,
    criteria: AcceptanceCriteria | None = None,
    sessions: sessionmaker[Session] | None = None,
) -> str:
    """The report's HTML for the pipeline run of `chain`, from MLflow (and the audit trail, to
    confirm approvals, when `sessions` is given)."""
    evidence = gather(client, chain, tracking_uri)
    return render_report(report_context(client, evidence, criteria or AcceptanceCriteria(), sessions))


def write_run_report(html: str, folder: Path, run_id: str, *, pdf: bool = False) -> ReportFiles:
    """Write `<run_id>.html` (and `<run_id>.pdf`) under `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{run_id}.html"
    path.write_text(html, encoding="utf-8")
    return ReportFiles(path, html_to_pdf(html, folder / f"{run_id}.pdf") if pdf else None)


def report_for_run(
    client: MlflowClient,
    run_id: str,
    tracking_uri: str,
    folder: Path,
    *,
    sessions: sessionmaker[Session] | None = None,
    criteria: AcceptanceCriteria | None = None,
    pdf: bool = False,
) -> ReportFiles:
    """Load the chain of `run_id` (a pipeline run or any of its stages), render and write its report."""
    chain = load_chain(client, run_id)
    html = build_report(client, chain, tracking_uri, criteria, sessions)
    return write_run_report(html, folder, chain.pipeline.info.run_id, pdf=pdf)
