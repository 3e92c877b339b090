"""FHIR R4 reads of the AI transparency resources each card points to: the card's Provenance, the
Device of the model version that drafted it, and that model's card as a DocumentReference.

A Provenance is derived from the stored card and its device (`model_devices`), so it is the card's
own record and holds no patient: its targets are the drafted MedicationRequests, by suggestion id.
Its id is the card's. The model card is the one the compliance report prints
(clinrlhf.compliance.modelcard), rendered from MLflow on request; its id is derived from the
training run (clinrlhf.compliance.ai_transparency.model_card_id), as the lineage export names it.

Reading a Provenance needs `Provenance.r`, searching one by its target (the IG's way from a
labelled resource to its Provenance) `Provenance.s`: the CDS client that received the card and
compliance officers hold both. Both are audited like other reads of feedback data; a Device and its model card describe
the model only, and any valid token reads them, as it reads /model-card.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sqlalchemy import select

from clinrlhf.compliance.ai_transparency import (
    ai_device,
    ai_provenance,
    model_card_document,
    model_card_markdown,
    model_card_title,
)
from clinrlhf.identity import Principal, actor, client_pseudonym
from clinrlhf.lineage.chain import RunNotFound, load_chain
from clinrlhf.policy.version import ModelIdentity
from clinrlhf.store import record_audit
from clinrlhf.store.models import Card, ModelDevice, Suggestion
from services.cds.transparency import SUGGESTION_SYSTEM
from services.errors import APIError
from services.responses import FHIR_JSON, FHIRResponse
from services.state import CurrentPrincipal, SessionDep, StateDep, require_scope
from services.urls import public_url

router = APIRouter(prefix="/fhir", tags=["FHIR"], default_response_class=FHIRResponse)
_RESOURCE = {"content": {FHIR_JSON: {"schema": {"type": "object"}}}}
# Ids are the store's UUIDs: anything else is unknown without a query (FHIR ids allow [A-Za-z0-9-.]).
ResourceId = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9\-.]{1,64}$")]


def identity_of(device: ModelDevice) -> ModelIdentity:
    return ModelIdentity(device.model_version, device.registry_name, device.registry_version, device.run_id)


def _model_card_ref(device: ModelDevice) -> str | None:
    # The model card is rendered from the training run; without a known run there is none to point to.
    return f"DocumentReference/{device.model_card_id}" if device.model_card_id else None


def device_resource(device: ModelDevice) -> dict[str, Any]:
    return ai_device(
        identity_of(device),
        description="treatment-recommendation policy (causal transformer aligned by KL-constrained PPO)",
        model_card=_model_card_ref(device),
        device_id=device.id,
    )


def visible_to(card: Card, principal: Principal, key: bytes) -> bool:
    """Whether `principal` may see the card's Provenance. A CDS client (it calls the service) sees the
    cards issued to it only, as only it may send their feedback (clinrlhf.store.feedback_entry): a
    card id another EHR learned must not tell it when the card was made and by which model. Callers
    that are no CDS client (compliance) see every card; cards stored before `client` was kept, too."""
    if card.client is None or not principal.can("CDSHooks", "c"):
        return True
    return card.client == client_pseudonym(key, principal)


def provenance_resource(card: Card, device: ModelDevice) -> dict[str, Any]:
    targets = [
        {
            "reference": f"MedicationRequest/{s.id}",
            "identifier": {"system": SUGGESTION_SYSTEM, "value": s.id},
            "display": "drafted prescription (CDS Hooks suggestion)",
        }
        for s in card.suggestions
        if s.drug is not None  # the suggestions the card showed (services.cds.cards.build_card)
    ]
    return ai_provenance(
        provenance_id=card.id,
        targets=targets,
        recorded=card.created_at,
        device=f"Device/{device.id}",
        model_card=_model_card_ref(device),
        activity=f"drafted the suggestions of CDS card {card.id}",
    )


@router.get("/Provenance/{provenance_id}", summary="The AI Provenance of a card", responses={200: _RESOURCE})
def read_provenance(
    provenance_id: ResourceId,
    principal: Annotated[Principal, Depends(require_scope("Provenance", "r"))],
    state: StateDep,
    session: SessionDep,
) -> FHIRResponse:
    with session.begin():  # audited, like every read of what the service stored about a case
        card = session.get(Card, provenance_id)
        card = card if card is not None and visible_to(card, principal, state.deid_key) else None
        device = session.get(ModelDevice, card.device_id) if card and card.device_id else None
        if card is None or device is None:
            raise APIError(404, "no such Provenance")
        resource = provenance_resource(card, device)
        record_audit(
            session,
            actor=actor(principal, state.deid_key),
            action="R",
            entity_type="Provenance",
            entity_id=card.id,
        )
    return FHIRResponse(resource)


@router.get(
    "/Provenance",
    summary="Search AI Provenance by the drafted resource (target=MedicationRequest/{id})",
    responses={200: _RESOURCE},
)
def search_provenance(
    target: Annotated[str, Query(pattern=r"^MedicationRequest/[A-Za-z0-9\-.]{1,64}$")],
    request: Request,
    principal: Annotated[Principal, Depends(require_scope("Provenance", "s"))],
    state: StateDep,
    session: SessionDep,
) -> FHIRResponse:
    """The IG's way from a labelled resource to its Provenance; a draft's id is its suggestion's."""
    suggestion_id = target.split("/", 1)[1]
    with session.begin():
        suggestion = session.get(Suggestion, suggestion_id)
        card = suggestion.card if suggestion is not None and suggestion.drug is not None else None
        card = card if card is not None and visible_to(card, principal, state.deid_key) else None
        device = session.get(ModelDevice, card.device_id) if card and card.device_id else None
        found = [provenance_resource(card, device)] if card and device else []
        for resource in found:
            record_audit(
                session,
                actor=actor(principal, state.deid_key),
                action="R",
                entity_type="Provenance",
                entity_id=resource["id"],
            )
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(found),
        "entry": [
            {
                "fullUrl": public_url(request, "read_provenance", provenance_id=r["id"]),
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in found
        ],
    }
    return FHIRResponse(bundle)


@router.get("/Device/{device_id}", summary="The model version that drafted cards", responses={200: _RESOURCE})
def read_device(device_id: ResourceId, _principal: CurrentPrincipal, session: SessionDep) -> FHIRResponse:
    device = session.get(ModelDevice, device_id)
    if device is None:
        raise APIError(404, "no such Device")
    return FHIRResponse(device_resource(device))


@router.get(
    "/DocumentReference/{document_id}",
    summary="A model's model card (AI Model-Card)",
    responses={200: _RESOURCE},
)
def read_model_card(
    document_id: ResourceId, _principal: CurrentPrincipal, state: StateDep, session: SessionDep
) -> FHIRResponse:
    from clinrlhf.compliance.evidence import gather  # heavy (MLflow, plots); model cards are rare reads
    from clinrlhf.compliance.modelcard import model_card

    device = session.scalars(select(ModelDevice).where(ModelDevice.model_card_id == document_id)).first()
    if device is None or not device.run_id:
        raise APIError(404, "no such DocumentReference")
    identity = identity_of(device)
    uri = state.settings.mlflow_tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    try:
        evidence = gather(client, load_chain(client, device.run_id), uri)
    except RunNotFound:
        raise APIError(404, "the model's training run is not in this service's MLflow store") from None
    except MlflowException:
        raise APIError(503, "the MLflow store cannot be read now") from None
    markdown = model_card_markdown(model_card_title(identity), model_card(evidence))
    return FHIRResponse(
        model_card_document(
            document_id=document_id, markdown=markdown, identity=identity, created=device.created_at
        )
    )
