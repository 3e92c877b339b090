"""CDS Hooks 2.0: discovery, the `patient-view` service, and its feedback endpoint."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from clinrlhf.identity import Principal
from clinrlhf.store import InvalidInputError, NotFoundError, UnreadableRecordError
from services.api.body import body_schema, json_body
from services.api.deps import CurrentPrincipal, SessionDep, StateDep, require_scope
from services.api.errors import APIError
from services.cds.discovery import HOOK, SERVICE_ID, discovery
from services.cds.prefetch import PrefetchError
from services.cds.schemas import CDSRequest, CDSResponse, Discovery, FeedbackRequest, FeedbackResult
from services.cds.service import patient_view, record_feedback_items
from services.recommend import PolicyUnavailableError

router = APIRouter(prefix="/cds-services", tags=["CDS Hooks"])
CDSCaller = Annotated[Principal, Depends(require_scope("CDSHooks", "c"))]


async def known_service(service_id: str) -> str:
    """Checked after the token and before the body: an unknown service is 404 whatever was sent."""
    if service_id != SERVICE_ID:
        raise APIError(404, "no such CDS service")
    return service_id


ServiceId = Annotated[str, Depends(known_service)]


@router.get("", response_model=Discovery, response_model_exclude_none=True, summary="CDS Hooks discovery")
def discover(_principal: CurrentPrincipal) -> Discovery:
    return discovery()


@router.post(
    "/{service_id}",
    response_model=CDSResponse,
    response_model_exclude_none=True,
    summary="Call the patient-view service",
    openapi_extra=body_schema(CDSRequest),
    responses={412: {"description": "prefetch missing"}, 503: {"description": "no policy yet"}},
)
def call_service(
    principal: CDSCaller,
    _service: ServiceId,
    body: Annotated[CDSRequest, Depends(json_body(CDSRequest))],
    request: Request,
    state: StateDep,
    session: SessionDep,
) -> CDSResponse:
    if body.hook != HOOK:
        raise APIError(422, f"this service answers the {HOOK} hook only", code="not-supported")
    try:
        return patient_view(state, session, body, principal, str(request.url_for("model_card")))
    except PrefetchError as err:
        raise APIError(err.status, str(err)) from None
    except UnreadableRecordError as err:
        raise APIError(422, str(err), code="invalid") from None
    except PolicyUnavailableError:
        raise APIError(503, "no policy is being served yet; train one with `clinrlhf quickstart`") from None


@router.post(
    "/{service_id}/feedback",
    response_model=FeedbackResult,
    summary="CDS Hooks feedback",
    openapi_extra=body_schema(FeedbackRequest),
)
async def feedback(
    principal: CDSCaller,
    _service: ServiceId,
    body: Annotated[FeedbackRequest, Depends(json_body(FeedbackRequest))],
    state: StateDep,
) -> Response:
    try:
        result = await record_feedback_items(state, body.feedback, principal)
    except NotFoundError:
        raise APIError(404, "feedback names a card this service did not issue") from None
    except InvalidInputError as err:
        raise APIError(422, str(err), code="invalid") from None
    # The result is ours and already valid: answer without re-validating it as the response model.
    return JSONResponse(result.model_dump())
