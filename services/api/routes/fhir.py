"""FHIR R4: the CapabilityStatement, the review Questionnaire, and clinicians' QuestionnaireResponses."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session

from clinrlhf.identity import Principal, actor, clinician_pseudonym
from clinrlhf.store import InvalidInputError, NotFoundError, record_audit, record_review
from clinrlhf.store.audit import Action
from clinrlhf.store.errors import AlreadyReviewedError, ReviewsFullError
from clinrlhf.store.models import Review
from services.body import body_schema, read_json
from services.errors import APIError
from services.fhir.capability import capability_statement
from services.fhir.questionnaire import QUESTIONNAIRE_ID, review_questionnaire
from services.fhir.review import ReviewFormatError, parse_review, render_review
from services.responses import FHIR_JSON, FHIRResponse
from services.state import (
    AppState,
    CurrentPrincipal,
    SessionDep,
    StateDep,
    require_scope,
)
from services.urls import public_url

router = APIRouter(prefix="/fhir", tags=["FHIR"], default_response_class=FHIRResponse)
_RESOURCE = {"content": {FHIR_JSON: {"schema": {"type": "object"}}}}


@router.get("/metadata", summary="CapabilityStatement", responses={200: _RESOURCE})
def metadata(request: Request, _principal: CurrentPrincipal) -> FHIRResponse:
    return FHIRResponse(capability_statement(public_url(request, "metadata").removesuffix("/metadata")))


@router.get(
    "/Questionnaire/{questionnaire_id}", summary="The review Questionnaire", responses={200: _RESOURCE}
)
def questionnaire(questionnaire_id: str, state: StateDep, _principal: CurrentPrincipal) -> FHIRResponse:
    if questionnaire_id != QUESTIONNAIRE_ID:
        raise APIError(404, "no such Questionnaire")
    return FHIRResponse(review_questionnaire(state.world))


async def review_body(request: Request) -> Any:
    return await read_json(request)


@router.post(
    "/QuestionnaireResponse",
    status_code=201,
    summary="Submit a clinician review",
    responses={
        201: _RESOURCE,
        200: {"description": "the same review was already stored"},
        409: {"description": "the clinician reviewed this case already, or it has its k reviews"},
    },
    openapi_extra=body_schema(None, FHIR_JSON),
)
def create_review(
    request: Request,
    principal: Annotated[Principal, Depends(require_scope("QuestionnaireResponse", "c"))],
    body: Annotated[Any, Depends(review_body)],
    state: StateDep,
    session: SessionDep,
) -> FHIRResponse:
    try:
        entry = parse_review(body, state.world)
    except ReviewFormatError as err:
        raise APIError(422, str(err), code="invalid") from None
    clinician = clinician_pseudonym(state.deid_key, principal.sub)
    try:
        with session.begin():
            review, created = record_review(
                session, entry, clinician=clinician, overlap=state.settings.review_overlap
            )
            if created:
                _audit(session, state, principal, "C", review.id)
    except NotFoundError:
        raise APIError(404, "the review names a card this service did not issue") from None
    except InvalidInputError as err:
        raise APIError(422, str(err), code="invalid") from None
    except AlreadyReviewedError:
        raise APIError(409, "this clinician has already reviewed this case", code="duplicate") from None
    except ReviewsFullError:
        raise APIError(409, "this case already has all the reviews it takes", code="conflict") from None
    location = public_url(request, "read_review", review_id=review.id)
    return FHIRResponse(
        render_review(review, state.world),
        status_code=201 if created else 200,
        headers={"Location": location},
    )


@router.get("/QuestionnaireResponse/{review_id}", summary="Read a stored review", responses={200: _RESOURCE})
def read_review(
    review_id: str,
    principal: Annotated[Principal, Depends(require_scope("QuestionnaireResponse", "r"))],
    state: StateDep,
    session: SessionDep,
) -> FHIRResponse:
    with session.begin():  # a read of feedback is audited, and commits with its audit event
        review = session.get(Review, review_id)
        if review is None:
            raise APIError(404, "no such QuestionnaireResponse")
        _audit(session, state, principal, "R", review.id)
    return FHIRResponse(render_review(review, state.world))


def _audit(session: Session, state: AppState, principal: Principal, action: Action, review_id: str) -> None:
    """The audit event for `principal`'s `action` on one stored review, in the caller's transaction."""
    record_audit(
        session,
        actor=actor(principal, state.deid_key),
        action=action,
        entity_type="QuestionnaireResponse",
        entity_id=review_id,
    )
