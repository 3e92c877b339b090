"""`clinrlhf approve VERSION --token TOKEN`: a compliance officer approves a registered policy."""

from __future__ import annotations

import argparse
import sys

from sqlalchemy.exc import SQLAlchemyError

from clinrlhf.cli import CLIError
from clinrlhf.settings import load_settings


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "approve",
        help="record a compliance officer's approval of a registered policy version",
        description="Approve version VERSION of the registered model clinrlhf-policy for production. The token "
        "must carry the compliance role. The approval is recorded as tags on the MLflow model version and as an "
        "event in the audit trail, naming the approver by pseudonym and pinning the SHA-256 of the weights. "
        "`clinrlhf promote` needs it.",
    )
    parser.add_argument("version", metavar="VERSION", help="the model version, e.g. 3")
    parser.add_argument(
        "--token",
        required=True,
        metavar="TOKEN",
        help="the approver's bearer token (`-` reads it from stdin, keeping it out of shell history)",
    )
    parser.set_defaults(func=run)


def read_token(value: str) -> str:
    token = sys.stdin.readline().strip() if value == "-" else value.strip()
    if not token:
        raise CLIError("--token is empty")
    return token


def run(args: argparse.Namespace) -> int:
    from mlflow.tracking import MlflowClient

    from clinrlhf.identity import MemoryJtiCache, TokenError, verify_token
    from clinrlhf.lineage.approval import ApprovalError, approve
    from clinrlhf.lineage.registry import VersionNotFound
    from clinrlhf.lineage.runs import configure_mlflow
    from clinrlhf.store import deployment_store

    settings = load_settings()
    try:
        principal = verify_token(settings, read_token(args.token), MemoryJtiCache())
    except TokenError as err:
        raise CLIError(f"token rejected: {err}") from None
    configure_mlflow(settings)
    try:
        done = approve(
            MlflowClient(),
            deployment_store(settings),
            args.version,
            principal,
            settings.deid_secret,
        )
    except (ApprovalError, VersionNotFound) as err:
        raise CLIError(str(err)) from None
    except SQLAlchemyError as err:
        raise CLIError(f"cannot write the audit trail ({type(err).__name__})") from None
    print(f"approved version {done.version} as {done.actor} at {done.time} (audit event {done.event_id})")
    return 0
