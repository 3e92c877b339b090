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
    from mlflow.tracking import MlflowClient

    from clinrlhf.compliance.approval import ACTOR_TAG, NAME_TAG
    from clinrlhf.compliance.registry import production_version, versions_of_run
    from clinrlhf.lineage.chain import describe, read_ingestion

    chain = load_run_chain(args.run_id)
    client = MlflowClient()
    lines = describe(chain, read_ingestion(client, chain.pipeline.info.run_id))
    production = production_version(client)
    for mv in versions_of_run(client, chain.pipeline.info.run_id):
        live = ", in production" if production and str(production.version) == str(mv.version) else ""
        name = mv.tags.get(NAME_TAG)
        who = f"{name} ({mv.tags.get(ACTOR_TAG)})" if name else mv.tags.get(ACTOR_TAG)
        approved = f"approved by {who}" if ACTOR_TAG in mv.tags else "not approved"
        lines.insert(1, f"  registered as {mv.name} v{mv.version} ({approved}{live})")
    print("\n".join(lines))
    return 0
