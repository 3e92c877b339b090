"""`clinrlhf report RUN_ID`: where the compliance report of a run is."""

from __future__ import annotations

import argparse

from clinrlhf.cli import CLIError, load_run_chain
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
    chain = load_run_chain(args.run_id)
    path = load_settings().resolved_home / "reports" / f"{chain.pipeline.info.run_id}.html"
    if not path.exists():
        raise CLIError(f"run {chain.pipeline.info.run_id} has no report under {path.parent}")
    print(path)
    return 0
