"""CDS Hooks 3.0 (and 2.0 clients): discovery, the `patient-view` service, and its feedback endpoint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from clinrlhf.identity import Principal
from clinrlhf.store import InvalidInputError, NotFoundError, UnreadableRecordError
from clinrlhf.store.errors import WrongClientError
from services.body import body_schema, json_body
from services.cds.attribution import AttributionError
from services.cds.discovery import HOOK, SERVICE_ID, discovery
from services.cds.invariants import Violation, feedback_violations, request_violations
from services.cds.prefetch import PrefetchError
from services.cds.schemas import CDSRequest, CDSResponse, Discovery, FeedbackRequest, FeedbackResult
from services.cds.service import patient_view, record_feedback_items
from services.errors import APIError
from services.recommend import PolicyUnavailableError
from services.state import (
    AppState,
    Bearer,
    CurrentPrincipal,
    SessionDep,
    StateDep,
    authenticate,
    ensure_scope,
    get_state,
    require_scope,
)
from services.urls import public_url

router = APIRouter(prefix="/cds-services", tags=["CDS Hooks"])
CDSCaller = Annotated[Principal, Depends(require_scope("CDSHooks", "c"))]


def check_service(service_id: str) -> str:
    """Checked after the token and before the body: an unknown service is 404 whatever was sent."""
    if service_id != SERVICE_ID:
        raise APIError(404, "no such CDS service")
    return service_id


async def known_service(service_id: str) -> str:
    return check_service(service_id)


ServiceId = Annotated[str, Depends(known_service)]


def refuse_violations(violations: list[Violation]) -> None:
    """400 naming every broken rule (`services.cds.invariants`); warnings pass."""
    errors = [v for v in violations if v.severity == "error"]
    if errors:
        code = "required" if all(v.kind == "required" for v in errors) else "invariant"
        raise APIError(400, "; ".join(str(v) for v in errors[:5]), code=code)


def check_feedback(data: object) -> None:
    refuse_violations(feedback_violations(data))


def check_request(data: object) -> None:
    refuse_violations(request_violations(data))


_feedback_body = json_body(FeedbackRequest, check=check_feedback)


@dataclass(frozen=True)
class FeedbackCall:
    """A feedback request that passed every check: its caller, its body, and the app's state."""

    principal: Principal
    body: FeedbackRequest
    state: AppState


async def feedback_call(request: Request, service_id: str, credentials: Bearer) -> FeedbackCall:
    """The feedback route's checks, in the order every route keeps: the token (401), its scope
    (403), the service (404), then the body (400, 422). One dependency instead of six: this is the
    hottest route (an EHR reports the outcome of every card), and resolving FastAPI dependencies
    was about a third of its cost."""
    state = await get_state(request)
    principal = ensure_scope(await authenticate(request, state, credentials), "CDSHooks", "c")
    check_service(service_id)
    return FeedbackCall(principal, await _feedback_body(request), state)


@router.get("", response_model=Discovery, response_model_exclude_none=True, summary="CDS Hooks discovery")
def discover(_principal: CurrentPrincipal) -> Discovery:
    return discovery()


@router.post(
    "/{service_id}",
    response_model=CDSResponse,
    response_model_exclude_none=True,
    summary="Call the patient-view service",
    openapi_extra=body_schema(CDSRequest),
    responses={
        400: {"description": "breaks a CDS Hooks 3.0 request rule (cds-r-1), named"},
        412: {"description": "prefetch missing, and not to be fetched with the scopes granted"},
        503: {"description": "no policy yet"},
    },
)
def call_service(
    principal: CDSCaller,
    _service: ServiceId,
    body: Annotated[CDSRequest, Depends(json_body(CDSRequest, check=check_request))],
    request: Request,
    state: StateDep,
    session: SessionDep,
) -> CDSResponse:
    if body.hook != HOOK:
        raise APIError(422, f"this service answers the {HOOK} hook only", code="not-supported")
    try:
        fhir_base = public_url(request, "metadata").removesuffix("/metadata")
        return patient_view(state, session, body, principal, public_url(request, "model_card"), fhir_base)
    except AttributionError as err:
        raise APIError(403, str(err), code="forbidden") from None
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
    responses={400: {"description": "breaks a CDS Hooks 3.0 feedback rule (cds-fb-1..3), named"}},
)
async def feedback(call: Annotated[FeedbackCall, Depends(feedback_call)]) -> Response:
    try:
        result = await record_feedback_items(call.state, call.body.feedback, call.principal)
    except NotFoundError:
        raise APIError(404, "feedback names a card this service did not issue") from None
    except WrongClientError as err:
        raise APIError(403, str(err), code="forbidden") from None
    except InvalidInputError as err:
        raise APIError(422, str(err), code="invalid") from None
    # The result is ours and already valid: answer without re-validating it as the response model.
    return JSONResponse(result.model_dump())
