"""`clinrlhf report RUN_ID`: where the compliance report of a run is."""

from __future__ import annotations

import argparse

from clinrlhf.cli import CLIError
from clinrlhf.settings import load_settings


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "report",
        help="print the path of a pipeline run's compliance report (HTML)",
        description="Find the compliance report of a pipeline run (or of any of its stages).",
    )
    parser.add_argument(
        "run_id", metavar="RUN_ID", help="an MLflow run id of a pipeline or one of its stages"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlflow.tracking import MlflowClient

    from clinrlhf.lineage.chain import RunNotFound, load_chain
    from clinrlhf.lineage.runs import configure_mlflow

    settings = load_settings()
    configure_mlflow(settings)
    try:
        chain = load_chain(MlflowClient(), args.run_id)
    except RunNotFound as err:
        raise CLIError(str(err)) from None
    path = settings.resolved_home / "reports" / f"{chain.pipeline.info.run_id}.html"
    if not path.exists():
        raise CLIError(f"run {chain.pipeline.info.run_id} has no report under {path.parent}")
    print(path)
    return 0
