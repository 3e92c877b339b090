"""`clinrlhf report RUN_ID [--pdf]`: render a pipeline run's compliance report from MLflow."""

from __future__ import annotations

import argparse
from pathlib import Path

from clinrlhf.cli import CLIError, load_run_chain


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "report",
        help="render a pipeline run's compliance report (HTML, and PDF with --pdf); print its path",
        description="Render the compliance report of a pipeline run (or of any of its stages) from what MLflow "
        "recorded and the audit trail confirms: outcome with bootstrap intervals, acceptance criteria, approvals, "
        "model card, ONC HTI-1 source attributes, lineage, privacy and its ledger, de-identification, feedback, "
        "training curves, subgroup performance, and the change record and CHAI Applied Model Card of each promoted version. It is rendered afresh each time, so it shows approvals and "
        "promotions made after training. Prints the path of each file written.",
    )
    parser.add_argument(
        "run_id", metavar="RUN_ID", help="an MLflow run id of a pipeline or one of its stages"
    )
    parser.add_argument("--pdf", action="store_true", help="also write the report as PDF (A4)")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder for the files (default: $CLINRLHF_HOME/reports)",
    )
    parser.add_argument(
        "--criteria",
        type=Path,
        default=None,
        metavar="FILE",
        help="acceptance criteria JSON, as for `promote`",
    )
    parser.add_argument(
        "--records",
        action="store_true",
        help="also export the change record and CHAI Applied Model Card of each promoted version of the run, "
        "and the change record of the latest rollback to it (JSON and Markdown, from MLflow's "
        "clinrlhf-compliance experiment)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlflow.tracking import MlflowClient
    from sqlalchemy.exc import SQLAlchemyError

    from clinrlhf.cli.promote import load_criteria_arg
    from clinrlhf.compliance.pdf import PdfUnavailableError
    from clinrlhf.compliance.promotion_records import RecordsUnreadable, export_records
    from clinrlhf.compliance.registry import versions_of_run
    from clinrlhf.compliance.report import build_report, write_run_report
    from clinrlhf.settings import load_settings
    from clinrlhf.store import deployment_store, record_audit, transaction

    criteria = load_criteria_arg(args.criteria)
    settings = load_settings()
    chain = load_run_chain(args.run_id)
    run_id = chain.pipeline.info.run_id
    try:
        sessions = deployment_store(settings)
        html = build_report(MlflowClient(), chain, settings.mlflow_tracking_uri, criteria, sessions)
        with transaction(sessions) as session:  # a report reads the feedback's aggregates: audited
            record_audit(session, actor="cli", action="R", entity_type="Report", entity_id=run_id)
    except SQLAlchemyError as err:
        raise CLIError(f"cannot read the audit trail ({type(err).__name__})") from None
    folder = args.out or settings.resolved_home / "reports"
    try:
        files = write_run_report(html, folder, run_id, pdf=args.pdf)
        records = (
            export_records(MlflowClient(), versions_of_run(MlflowClient(), run_id), folder)
            if args.records
            else []
        )
    except PdfUnavailableError as err:
        raise CLIError(str(err)) from None
    except RecordsUnreadable as err:
        raise CLIError(f"cannot export the records: {err}") from None
    except OSError as err:
        raise CLIError(f"cannot write the report ({err.strerror})") from None
    print(files.html)
    if files.pdf:
        print(files.pdf)
    for path in records:
        print(path)
    return 0
