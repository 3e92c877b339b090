"""`clinrlhf lineage RUN_ID`: the chain from a model back to the feedback and de-identification."""

from __future__ import annotations

import argparse

from clinrlhf.cli import CLIError
from clinrlhf.settings import load_settings


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "lineage",
        help="print model → PPO → reward → feedback snapshot → de-identification",
        description="Print the lineage chain of a pipeline run (or of any of its stage runs).",
    )
    parser.add_argument(
        "run_id", metavar="RUN_ID", help="an MLflow run id of a pipeline or one of its stages"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlflow.tracking import MlflowClient

    from clinrlhf.lineage.chain import RunNotFound, describe, load_chain
    from clinrlhf.lineage.runs import configure_mlflow

    configure_mlflow(load_settings())
    try:
        chain = load_chain(MlflowClient(), args.run_id)
    except RunNotFound as err:
        raise CLIError(str(err)) from None
    print("\n".join(describe(chain)))
    return 0
