"""`clinrlhf promote VERSION --token TOKEN [--criteria FILE] [--override-reason TEXT]`: a compliance
officer puts an approved, passing policy in production."""

from __future__ import annotations

import argparse
from pathlib import Path

from clinrlhf.cli import CLIError
from clinrlhf.cli.approve import add_governance_arguments
from clinrlhf.cli.identity_arg import add_token_argument, required_principal


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "promote",
        help="move the production alias to a version that passes acceptance criteria and is approved",
        description="Check version VERSION of clinrlhf-policy against the acceptance criteria (its eval run's "
        "concordance, unsafe rate and subgroup gaps, and its reward run's ε, as MLflow recorded them), require an "
        "approval by the compliance role (`clinrlhf approve`), then set the alias `production` to it. The token "
        "must carry the compliance role; a failing version needs --override-reason. Serving switches to it on "
        "its next request. Refusals and promotions are audit events, with the criteria used and any override.",
    )
    parser.add_argument("version", metavar="VERSION", help="the model version, e.g. 3")
    add_token_argument(parser, "the compliance officer's")
    add_governance_arguments(parser)
    parser.set_defaults(func=run)


def load_criteria_arg(path: Path | None):  # noqa: ANN201 - AcceptanceCriteria; imported lazily
    from clinrlhf.compliance.criteria import load_criteria

    try:
        return load_criteria(path)
    except FileNotFoundError:
        raise CLIError(f"criteria file not found: {path}") from None
    except (OSError, ValueError, TypeError) as err:
        raise CLIError(f"cannot use criteria file {path}: {str(err).splitlines()[0]}") from None


def run(args: argparse.Namespace) -> int:
    from mlflow.tracking import MlflowClient
    from sqlalchemy.exc import SQLAlchemyError

    from clinrlhf.compliance.governance import RECORDS_FILE
    from clinrlhf.compliance.promotion import PromotionRefused, promote
    from clinrlhf.compliance.registry import VersionNotFound
    from clinrlhf.lineage.runs import configure_mlflow
    from clinrlhf.policy.pointers import PolicyNotFoundError
    from clinrlhf.settings import load_settings
    from clinrlhf.store import deployment_store

    criteria = load_criteria_arg(args.criteria)
    settings = load_settings()
    principal = required_principal(settings, args.token, "promote")
    configure_mlflow(settings)
    try:
        done = promote(
            MlflowClient(),
            deployment_store(settings),
            settings,
            args.version,
            criteria,
            principal,
            override=args.override_reason,
            records=settings.resolved_home / RECORDS_FILE,
        )
    except (PromotionRefused, VersionNotFound, PolicyNotFoundError) as err:
        raise CLIError(f"refused: {err}") from None
    except SQLAlchemyError as err:
        raise CLIError(f"cannot write the audit trail ({type(err).__name__})") from None
    was = f" (was version {done.previous})" if done.previous else ""
    print(
        f"version {done.version} is in production{was}; audit event {done.event_id}; serving {done.policy_dir}"
    )
    return 0
