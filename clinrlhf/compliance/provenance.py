"""Export a pipeline run's lineage as FHIR R4: a Bundle of Device resources (the models, as HL7 AI
Transparency AI-Devices, the registered policy's with its model card as an AI-ModelCard
DocumentReference), one Provenance per training run (target: the model it made; entities: the datasets it read and the
models it started from; agents: who launched it, the software, and who approved the model), and the
AuditEvents that approved, promoted or rolled back its registered versions.

https://hl7.org/fhir/R4/provenance.html, https://hl7.org/fhir/R4/auditevent.html. Validated with
fhir.resources' R4B models (R4B changed neither resource from R4).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion
from sqlalchemy import select
from sqlalchemy.orm import Session

from clinrlhf import __version__
from clinrlhf.compliance.ai_transparency import as_ai_device, model_card_document, model_card_id
from clinrlhf.compliance.approval import ACTOR_TAG, APPROVAL, NAME_TAG, PROMOTION, ROLLBACK, entity_id
from clinrlhf.compliance.registry import MODEL_NAME
from clinrlhf.lineage.chain import Chain
from clinrlhf.lineage.datasets import SHA256_TAG
from clinrlhf.lineage.launcher import LAUNCHED_BY, LAUNCHED_BY_ACTOR
from clinrlhf.policy.version import ModelIdentity
from clinrlhf.store.models import AuditEvent

SYSTEM = "urn:clinrlhf"
PARTICIPANT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
TRAINING_STAGES = ("sft", "reward", "ppo")
MODEL_KIND = {"sft": "supervised policy", "reward": "DP reward model", "ppo": "aligned policy"}
# The models each stage starts from: (parent stage, Provenance.entity.role).
PARENTS = {"reward": [("sft", "derivation")], "ppo": [("sft", "derivation"), ("reward", "source")]}


def _urn(*parts: str) -> str:
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, '/'.join([SYSTEM, *parts]))}"


def _instant(millis: int | None) -> str:
    moment = datetime.fromtimestamp(millis / 1000, UTC) if millis else datetime.now(UTC)
    return moment.isoformat(timespec="seconds")


def _identifier(kind: str, value: str) -> dict[str, str]:
    return {"system": f"{SYSTEM}:{kind}", "value": value}


def _coding(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


def model_device(
    run: Run, stage: str, versions: list[ModelVersion], model_card: str | None = None
) -> dict[str, Any]:
    """The model a stage trained, as an AI-Device; a registered policy carries its model versions,
    and `model_card` references its AI-ModelCard."""
    names = [{"name": f"clinrlhf {MODEL_KIND[stage]} (MLflow run {run.info.run_id})", "type": "model-name"}]
    names += [{"name": f"{v.name} v{v.version}", "type": "user-friendly-name"} for v in versions]
    device = {
        "resourceType": "Device",
        "id": _urn("model", run.info.run_id).removeprefix("urn:uuid:"),
        "identifier": [_identifier("mlflow-run", run.info.run_id)]
        + [_identifier("model-version", f"{v.name}/{v.version}") for v in versions],
        "deviceName": names,
        "type": {"text": f"machine-learning model: {MODEL_KIND[stage]}"},
        "version": [{"value": str(v.version)} for v in versions],
    }
    return as_ai_device(device, model_card=model_card)


def policy_identity(run: Run, versions: list[ModelVersion]) -> ModelIdentity:
    """The aligned policy as the service names it when it serves the latest of `versions`."""
    latest = versions[-1] if versions else None
    weights = latest.tags.get("clinrlhf.policy_sha256") if latest else None
    return ModelIdentity(
        f"sha256:{weights}" if weights else f"run:{run.info.run_id}",
        latest.name if latest else None,
        str(latest.version) if latest else None,
        run.info.run_id,
    )


def _datasets(run: Run) -> list[dict[str, Any]]:
    """Each dataset input of the run (mlflow.data), named by its full SHA-256."""
    entities: list[dict[str, Any]] = []
    for item in run.inputs.dataset_inputs if run.inputs else []:
        tags = {t.key: t.value for t in item.tags}
        sha = tags.get(SHA256_TAG, item.dataset.digest)
        entities.append(
            {
                "role": "source",
                "what": {
                    "identifier": _identifier("dataset-sha256", sha),
                    "display": f"{item.dataset.name} (de-identified; MLflow digest {item.dataset.digest})",
                },
            }
        )
    tagged = run.data.tags.get("clinrlhf.dataset_sha256")
    # The lineage tag names the training data where no input does: runs logged before datasets were,
    # and PPO, whose input is the prompts drawn from the snapshot its reward model learned from.
    if tagged and all(e["what"]["identifier"]["value"] != tagged for e in entities):
        entities.append({"role": "source", "what": {"identifier": _identifier("dataset-sha256", tagged)}})
    return entities


def _author(chain: Chain) -> dict[str, Any]:
    """Who launched the pipeline run: the verified launcher's pseudonym and display name
    (clinrlhf.lineage.launcher), else MLflow's OS user, marked unverified."""
    tags = chain.pipeline.data.tags
    user = tags.get("mlflow.user", "unknown")
    if tags.get(LAUNCHED_BY_ACTOR):
        who = {
            "identifier": _identifier("actor", tags[LAUNCHED_BY_ACTOR]),
            "display": tags.get(LAUNCHED_BY, ""),
        }
    else:
        who = {"identifier": _identifier("user", user), "display": f"unverified: {user}"}
    who["display"] = f"{who['display']}: launched the pipeline run"
    return {"type": _coding(PARTICIPANT, "author"), "who": who}


def _agents(chain: Chain, run: Run, approvers: list[tuple[str, str]]) -> list[dict[str, Any]]:
    commit = run.data.tags.get("mlflow.source.git.commit", "unknown")
    agents = [
        _author(chain),
        {
            "type": _coding(PARTICIPANT, "assembler"),
            "who": {
                "identifier": _identifier("software", f"clinrlhf {__version__} @ {commit}"),
                "display": "clinrlhf",
            },
        },
    ]
    agents += [
        {
            "type": _coding(PARTICIPANT, "verifier"),
            "who": {
                "identifier": _identifier("actor", actor),
                "display": f"{name or actor}: approved for production (compliance role)",
            },
        }
        for actor, name in approvers
    ]
    return agents


def provenance(chain: Chain, stage: str, versions: list[ModelVersion]) -> dict[str, Any]:
    run = chain.stages[stage]
    parents = [
        {
            "role": role,
            "what": {"reference": _urn("model", chain.stages[p].info.run_id), "display": MODEL_KIND[p]},
        }
        for p, role in PARENTS.get(stage, [])
        if p in chain.stages
    ]
    approvers = sorted(
        {(v.tags[ACTOR_TAG], v.tags.get(NAME_TAG, "")) for v in versions if ACTOR_TAG in v.tags}
    )
    deid = run.data.tags.get("clinrlhf.deid_config_sha256")
    resource: dict[str, Any] = {
        "resourceType": "Provenance",
        "id": _urn("provenance", run.info.run_id).removeprefix("urn:uuid:"),
        "target": [{"reference": _urn("model", run.info.run_id), "display": MODEL_KIND[stage]}],
        "occurredPeriod": {"start": _instant(run.info.start_time), "end": _instant(run.info.end_time)},
        "recorded": _instant(run.info.end_time),
        "activity": {
            "coding": [{"system": DATA_OPERATION, "code": "CREATE"}],
            "text": f"train {MODEL_KIND[stage]} (MLflow run {run.info.run_id})",
        },
        "agent": _agents(chain, run, approvers),
        "entity": _datasets(run) + parents,
    }
    if deid:  # the de-identification configuration governed what data the run could see
        resource["policy"] = [f"{SYSTEM}:deid-config-sha256:{deid}"]
    return resource


def audit_event(event: AuditEvent, devices: dict[str, str]) -> dict[str, Any]:
    """A stored audit event as FHIR; its chain position and hash ride along as entity details."""
    what: dict[str, Any] = (
        {"reference": devices[event.entity_id]}
        if event.entity_id in devices
        else {"identifier": _identifier(event.entity_type, event.entity_id)}
    )
    details = [{"type": "seq", "valueString": str(event.seq)}, {"type": "hash", "valueString": event.hash}]
    if event.entity_sha256:
        details.append({"type": "entity-sha256", "valueString": event.entity_sha256})
    return {
        "resourceType": "AuditEvent",
        "id": event.id,
        "type": {"system": f"{SYSTEM}:audit-event-type", "code": event.entity_type},
        "action": event.action,
        "recorded": event.recorded.replace(tzinfo=UTC).isoformat(),
        "outcome": event.outcome,
        "agent": [{"who": {"identifier": _identifier("actor", event.actor)}, "requestor": True}],
        "source": {"observer": {"display": "clinrlhf audit trail"}},
        "entity": [{"what": what, "name": event.entity_id, "detail": details}],
    }


def registry_events(session: Session, versions: list[ModelVersion]) -> list[AuditEvent]:
    ids = [entity_id(v.version, v.name) for v in versions]
    if not ids:
        return []
    query = (
        select(AuditEvent)
        .where(AuditEvent.entity_type.in_((APPROVAL, PROMOTION, ROLLBACK)), AuditEvent.entity_id.in_(ids))
        .order_by(AuditEvent.seq)
    )
    return list(session.scalars(query))


def provenance_bundle(
    chain: Chain,
    versions: list[ModelVersion],
    events: list[AuditEvent],
    stages: tuple[str, ...] = TRAINING_STAGES,
    model_card: str | None = None,
) -> dict[str, Any]:
    """The Bundle (type `collection`) as JSON-ready dicts, validated against FHIR R4B. `model_card`
    (Markdown) is the aligned policy's model card, exported as an AI-ModelCard DocumentReference."""
    resources: list[tuple[str, dict[str, Any]]] = []
    devices: dict[str, Any] = {}
    for stage in stages:
        run = chain.stage(stage)
        if run is None:
            continue
        mine = versions if stage == "ppo" else []
        card_url = None
        if stage == "ppo" and model_card is not None:
            identity = policy_identity(run, versions)
            card_id = str(model_card_id(identity))
            card_url = f"urn:uuid:{card_id}"
            document = model_card_document(document_id=card_id, markdown=model_card, identity=identity)
            resources.append((card_url, document))
        resources.append((_urn("model", run.info.run_id), model_device(run, stage, mine, card_url)))
        devices |= {entity_id(v.version, v.name or MODEL_NAME): _urn("model", run.info.run_id) for v in mine}
        resources.append((_urn("provenance", run.info.run_id), provenance(chain, stage, mine)))
    resources += [(f"urn:uuid:{e.id}", audit_event(e, devices)) for e in events]
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "identifier": _identifier("pipeline-run", chain.pipeline.info.run_id),
        "entry": [{"fullUrl": url, "resource": resource} for url, resource in resources],
    }
    Bundle.model_validate(bundle)  # raises pydantic.ValidationError naming the bad element
    return bundle
