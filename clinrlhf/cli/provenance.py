"""`clinrlhf provenance RUN_ID [--out FILE]`: a run's lineage as a FHIR R4 Bundle, its models as HL7
AI Transparency AI-Devices and the aligned policy's model card as an AI-ModelCard DocumentReference."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from clinrlhf.cli import CLIError, load_run_chain


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "provenance",
        help="export a run's lineage as a FHIR R4 Bundle of Provenance, Device, DocumentReference and AuditEvent",
        description="Export the lineage of a pipeline run (every training stage) or of one training run as a FHIR "
        "R4 Bundle (type collection): a Device per model (HL7 AI Transparency AI-Device profile), the aligned "
        "policy's model card (an AI-ModelCard DocumentReference), a Provenance per training run (target: the model; "
        "entities: its datasets by SHA-256 and the models it started from; agents: who launched it, the software "
        "and who approved the model) and the AuditEvents that approved, promoted or rolled back its registered "
        "versions. The Bundle is validated with fhir.resources before it is written.",
    )
    parser.add_argument(
        "run_id", metavar="RUN_ID", help="an MLflow run id of a pipeline or one of its stages"
    )
    parser.add_argument(
        "--out", type=Path, default=None, metavar="FILE", help="write the Bundle here instead of stdout"
    )
    parser.set_defaults(func=run)


def _stages(chain, run_id: str) -> tuple[str, ...]:  # noqa: ANN001 - a Chain, imported lazily
    from clinrlhf.compliance.provenance import TRAINING_STAGES

    for stage, run in chain.stages.items():
        if run.info.run_id == run_id:
            if stage not in TRAINING_STAGES:
                raise CLIError(f"run {run_id} is the {stage} run; export its pipeline run or a training run")
            return (stage,)
    return TRAINING_STAGES


def run(args: argparse.Namespace) -> int:
    from mlflow.tracking import MlflowClient
    from pydantic import ValidationError
    from sqlalchemy.exc import SQLAlchemyError

    from clinrlhf.compliance.ai_transparency import model_card_markdown, model_card_title
    from clinrlhf.compliance.evidence import gather
    from clinrlhf.compliance.modelcard import model_card
    from clinrlhf.compliance.provenance import policy_identity, provenance_bundle, registry_events
    from clinrlhf.compliance.registry import versions_of_run
    from clinrlhf.settings import load_settings
    from clinrlhf.store import consistent_read, deployment_store

    settings = load_settings()
    chain = load_run_chain(args.run_id)
    client = MlflowClient()
    versions = versions_of_run(client, chain.pipeline.info.run_id)
    stages = _stages(chain, args.run_id)
    ppo = chain.stage("ppo")
    card = None
    if ppo is not None and "ppo" in stages:  # the model card the compliance report prints
        title = model_card_title(policy_identity(ppo, versions))
        card = model_card_markdown(title, model_card(gather(client, chain, settings.mlflow_tracking_uri)))
    try:
        # Built inside the read: the events' attributes expire when the snapshot ends.
        with consistent_read(deployment_store(settings)) as session:
            events = registry_events(session, versions)
            bundle = provenance_bundle(chain, versions, events, stages, model_card=card)
    except SQLAlchemyError as err:
        raise CLIError(f"cannot read the audit trail ({type(err).__name__})") from None
    except ValidationError as err:  # a bug, but say which element rather than dump a traceback
        raise CLIError(f"the Bundle does not validate as FHIR R4: {str(err).splitlines()[0]}") from None
    text = json.dumps(bundle, indent=2) + "\n"
    if args.out is None:
        print(text, end="")
        return 0
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
    except OSError as err:
        raise CLIError(f"cannot write {args.out} ({err.strerror})") from None
    print(args.out)
    return 0
