"""`clinrlhf approve VERSION --token TOKEN`: a compliance officer approves a registered policy."""

from __future__ import annotations

import argparse
from pathlib import Path

from clinrlhf.cli import CLIError
from clinrlhf.cli.identity_arg import add_token_argument, required_principal


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "approve",
        help="record a compliance officer's approval of a registered policy version",
        description="Approve version VERSION of the registered model clinrlhf-policy for production. The token "
        "must carry the compliance role. The version must pass the acceptance criteria, or the approval needs "
        "--override-reason. The approval is recorded as tags on the MLflow model version and as an event in "
        "the audit trail, naming the approver by pseudonym (and display name, beside the trail), the criteria "
        "used and any override, and pinning the SHA-256 of the weights. `clinrlhf promote` needs it.",
    )
    parser.add_argument("version", metavar="VERSION", help="the model version, e.g. 3")
    add_token_argument(parser, "the approver's")
    add_governance_arguments(parser)
    parser.set_defaults(func=run)


def add_governance_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--criteria",
        type=Path,
        default=None,
        metavar="FILE",
        help="JSON object overriding the default criteria, e.g. "
        '{"min_concordance": 0.7, "max_unsafe_rate": 0.05, "max_subgroup_gap": 0.15, "max_epsilon": 8}; '
        "criteria that differ from the defaults are recorded and shown in the report",
    )
    parser.add_argument(
        "--override-reason",
        default=None,
        metavar="TEXT",
        help="accept a version that fails the criteria, for this written reason (recorded in the audit "
        "trail and on the MLflow version; never patient details)",
    )


def run(args: argparse.Namespace) -> int:
    from mlflow.tracking import MlflowClient
    from sqlalchemy.exc import SQLAlchemyError

    from clinrlhf.cli.promote import load_criteria_arg
    from clinrlhf.compliance.approval import ApprovalError, approve
    from clinrlhf.compliance.governance import RECORDS_FILE
    from clinrlhf.compliance.registry import VersionNotFound
    from clinrlhf.lineage.runs import configure_mlflow
    from clinrlhf.settings import load_settings
    from clinrlhf.store import deployment_store

    criteria = load_criteria_arg(args.criteria)
    settings = load_settings()
    principal = required_principal(settings, args.token, "approve")
    configure_mlflow(settings)
    try:
        done = approve(
            MlflowClient(),
            deployment_store(settings),
            args.version,
            principal,
            settings.deid_secret,
            criteria=criteria,
            override=args.override_reason,
            records=settings.resolved_home / RECORDS_FILE,
        )
    except (ApprovalError, VersionNotFound) as err:
        raise CLIError(str(err)) from None
    except SQLAlchemyError as err:
        raise CLIError(f"cannot write the audit trail ({type(err).__name__})") from None
    overridden = " OVERRIDING the failed criteria" if done.override_reason else ""
    print(
        f"approved version {done.version}{overridden} as {done.name} ({done.actor}) at {done.time} "
        f"(audit event {done.event_id})"
    )
    return 0
