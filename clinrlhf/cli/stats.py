"""`clinrlhf stats`: JSON counts of what the store holds."""

from __future__ import annotations

import argparse
import json

from clinrlhf.cli import CLIError


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "stats",
        help="print JSON counts of stored cases, cards, feedback and reviews",
        description="Print JSON counts of what the store in $CLINRLHF_DATABASE_URL holds: cases, cards, feedback, "
        "reviews, then finer breakdowns.",
    )
    parser.set_defaults(func=run)


def run(_args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from clinrlhf.settings import load_settings
    from clinrlhf.store import counts, deployment_store

    settings = load_settings()
    try:
        with deployment_store(settings)() as session:
            result = counts(session)
    except SQLAlchemyError as err:
        raise CLIError(f"cannot read the store ({type(err).__name__})") from None
    print(json.dumps(result, indent=2))
    return 0
