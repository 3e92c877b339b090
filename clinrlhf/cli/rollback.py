"""`clinrlhf rollback --token TOKEN`: a compliance officer puts back the policy that was in production before the current one."""

from __future__ import annotations

import argparse

from clinrlhf.cli import CLIError
from clinrlhf.cli.identity_arg import add_token_argument, required_principal


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "rollback",
        help="move the production alias back to the previously promoted version",
        description="Set the alias `production` of clinrlhf-policy back to the version promoted before the current "
        "one, without re-checking it (it passed and was approved when it was promoted). Serving switches on its "
        "next request. The token must carry the compliance role. The rollback is an audit event, and its change "
        "record (the restored version against the one taken out) goes to MLflow's clinrlhf-compliance experiment.",
    )
    add_token_argument(parser, "the compliance officer's")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlflow.tracking import MlflowClient
    from sqlalchemy.exc import SQLAlchemyError

    from clinrlhf.compliance.governance import RECORDS_FILE
    from clinrlhf.compliance.promotion import PromotionRefused, rollback
    from clinrlhf.compliance.registry import VersionNotFound
    from clinrlhf.lineage.runs import configure_mlflow
    from clinrlhf.policy.pointers import PolicyNotFoundError
    from clinrlhf.settings import load_settings
    from clinrlhf.store import deployment_store

    settings = load_settings()
    principal = required_principal(settings, args.token, "rollback")
    configure_mlflow(settings)
    try:
        done = rollback(
            MlflowClient(),
            deployment_store(settings),
            settings,
            principal,
            records=settings.resolved_home / RECORDS_FILE,
        )
    except (PromotionRefused, VersionNotFound, PolicyNotFoundError) as err:
        raise CLIError(f"refused: {err}") from None
    except SQLAlchemyError as err:
        raise CLIError(f"cannot write the audit trail ({type(err).__name__})") from None
    print(
        f"version {done.version} is in production again (was version {done.previous}); audit event {done.event_id}"
    )
    return 0
