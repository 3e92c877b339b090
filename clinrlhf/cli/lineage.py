"""`clinrlhf lineage RUN_ID`: the chain from a model back to the feedback and de-identification."""

from __future__ import annotations

import argparse

from clinrlhf.cli import load_run_chain


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
    from clinrlhf.lineage.chain import describe

    print("\n".join(describe(load_run_chain(args.run_id))))
    return 0
