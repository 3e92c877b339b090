"""`clinrlhf audit verify`: check the audit trail's hash chain and the rows it vouches for."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from clinrlhf.cli import CLIError

if TYPE_CHECKING:  # the store pulls in SQLAlchemy: imported when the command runs, not for --help
    from clinrlhf.store import Anchor, AuditReport, Head


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "audit",
        help="verify the hash-chained audit trail",
        description="Commands over the audit trail in $CLINRLHF_DATABASE_URL.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    verify = actions.add_parser(
        "verify",
        help="walk the hash chain; exit 1 naming the first bad entry",
        description="Walk the audit trail's keyed hash chain (HMAC under $CLINRLHF_AUDIT_KEY) and check every "
        "stored case, card, feedback entry and review against the event that created it. Prints one "
        "line: `audit OK: ...` (exit 0), or `audit FAILED: ...` naming the first changed, deleted or "
        "unaudited entry (exit 1). Events cut from the end of the trail are caught by the heads "
        "remembered outside the database: the head every pipeline run records in MLflow, and the "
        "witness file ($CLINRLHF_AUDIT_ANCHOR, default $CLINRLHF_HOME/audit/witness.json) where each "
        "verification remembers the head it saw.",
    )
    verify.add_argument(
        "--no-witness",
        action="store_true",
        help="neither check nor remember the witness file's head (MLflow's heads are still checked)",
    )
    verify.set_defaults(func=run_verify)


def _read_witnesses(path: Path) -> dict[str, dict[str, object]]:
    if not path.exists():
        return {}
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError):
        raise CLIError(f"cannot read {path}; remove it to start a new witness") from None
    if not isinstance(loaded, dict):
        raise CLIError(f"{path} is not a witness file; remove it to start a new witness")
    return loaded


def _witness(entry: object) -> Head | None:
    from clinrlhf.store import Head

    if isinstance(entry, dict) and isinstance(entry.get("seq"), int) and isinstance(entry.get("hash"), str):
        return Head(entry["seq"], entry["hash"])
    return None


def _remember(path: Path, witnesses: dict[str, dict[str, object]], store: str, head: Head) -> None:
    witnesses[store] = {"seq": head.seq, "hash": head.hash}
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(witnesses, indent=2, sort_keys=True) + "\n")
    os.replace(partial, path)  # a crash mid-write never leaves a truncated witness


def summary(report: AuditReport) -> str:
    if report.head is None:
        return f"audit OK: the trail is empty, {report.rows} recorded rows"
    return (
        f"audit OK: {report.events} events, chain intact through seq {report.head.seq} "
        f"(head {report.head.hash[:12]}), {report.rows} recorded rows unchanged"
    )


def _mlflow_anchors() -> list[Anchor]:
    from mlflow.tracking import MlflowClient

    from clinrlhf.lineage.audit_anchors import mlflow_anchors
    from clinrlhf.lineage.runs import configure_mlflow
    from clinrlhf.settings import load_settings

    configure_mlflow(load_settings())
    try:
        return mlflow_anchors(MlflowClient())
    except Exception as err:  # noqa: BLE001 - any store failure is one line, never a traceback
        raise CLIError(f"cannot read the audit heads recorded in MLflow ({type(err).__name__})") from None


def run_verify(args: argparse.Namespace) -> int:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from clinrlhf.settings import load_settings
    from clinrlhf.store import consistent_read, deployment_store, verify_audit

    settings = load_settings()
    url = settings.resolved_database_url
    store = make_url(url).render_as_string(hide_password=True)
    path = settings.audit_anchor_path
    witnesses = {} if args.no_witness else _read_witnesses(path)
    anchors = _mlflow_anchors()
    try:
        with consistent_read(deployment_store(settings)) as session:
            report = verify_audit(session, _witness(witnesses.get(store)), anchors)
    except SQLAlchemyError as err:
        raise CLIError(f"cannot read the store ({type(err).__name__})") from None
    if not report.ok:
        print(f"audit FAILED: {report.problem}", file=sys.stderr)
        return 1
    if report.head is not None and not args.no_witness:
        _remember(path, witnesses, store, report.head)
    print(summary(report))
    return 0
