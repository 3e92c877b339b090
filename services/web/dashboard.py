"""The compliance officer's dashboard, /compliance: runs, the privacy ledger, versions with their
approvals and production status, the audit trail's verification and the quarantine, with the
governance actions (approve, promote, roll back, quarantine, release) on the page.

Officers log in as on the review page (the same session cookie) or send a bearer token. Every action
calls the library function the CLI calls (`clinrlhf.compliance.approval.approve`, `promotion.promote`
and `rollback`, `governance.decide_quarantine`), so the rules, the audit events and the governance
records are the CLI's; the route only translates. A cookie session's writes need its CSRF token.
Browsers get errors as pages (`services.web.page_errors`); the page's script shows an action's
refusal inline, from the OperationOutcome's diagnostics.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi import Path as PathParam
from mlflow.tracking import MlflowClient
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response

from clinrlhf.compliance.approval import approve
from clinrlhf.compliance.criteria import AcceptanceCriteria
from clinrlhf.compliance.governance import RECORDS_FILE, GovernanceRefused, decide_quarantine
from clinrlhf.compliance.promotion import promote, rollback
from clinrlhf.compliance.registry import VersionNotFound
from clinrlhf.identity import Principal, actor
from clinrlhf.store import record_audit, transaction
from clinrlhf.store.quarantine import REASONS_FILE, QuarantineError
from services.body import json_body
from services.state import AppState, StateDep
from services.urls import public_url
from services.web.auth import (
    CHALLENGE,
    bearer_of,
    can_see_agreement,
    optional_caller,
    rate_limited,
    session_key_of,
    web_session,
)
from services.web.dashboard_view import dashboard
from services.web.page_errors import PageError
from services.web.routes import TEMPLATES
from services.web.session import CSRF_HEADER, csrf_matches, csrf_token

PREFIX = "/compliance"
router = APIRouter(prefix=PREFIX, include_in_schema=False, dependencies=[Depends(rate_limited)])
Version = Annotated[str, PathParam(pattern=r"^[1-9][0-9]{0,8}$", description="a registered version")]


def officer(principal: Annotated[Principal | None, Depends(optional_caller)]) -> Principal:
    """Whoever may read the audit trail (the compliance role's scope), by session or bearer token."""
    if principal is None:
        raise PageError(401, "log in on /review/login, or send a bearer token", headers=CHALLENGE)
    if not can_see_agreement(principal):
        raise PageError(
            403, "the compliance pages are for compliance officers: this account's scopes do not allow them"
        )
    return principal


def officer_writing(
    request: Request, state: StateDep, principal: Annotated[Principal, Depends(officer)]
) -> Principal:
    """The officer, for an action: a cookie session must also present its CSRF token."""
    if bearer_of(request) is None:
        session = web_session(request, state)
        if session is None or not csrf_matches(
            session_key_of(state), session.sid, request.headers.get(CSRF_HEADER)
        ):
            raise PageError(403, "missing or invalid CSRF token; reload the page")
    return principal


Officer = Annotated[Principal, Depends(officer)]
OfficerWriting = Annotated[Principal, Depends(officer_writing)]


class Override(BaseModel):
    model_config = ConfigDict(extra="forbid")
    override_reason: str | None = Field(default=None, max_length=4000)


class NoBody(BaseModel):
    model_config = ConfigDict(extra="forbid")


class QuarantineDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    clinician: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    reason: str = Field(min_length=1, max_length=2000)
    release: bool = False


def _client(state: AppState) -> MlflowClient:
    uri = state.settings.mlflow_tracking_uri
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _refused(err: Exception) -> PageError:
    if isinstance(err, VersionNotFound):
        return PageError(404, "no registered version with that number")
    return PageError(409, str(err).splitlines()[0])


@router.get("", name="compliance_dashboard")
def compliance_dashboard(request: Request, state: StateDep, principal: Officer) -> Response:
    """The dashboard. A plain `def`: verifying the audit trail runs in the thread pool."""
    view = dashboard(state.settings, state.sessions, datetime.now(UTC))
    with transaction(state.sessions) as session:  # it shows governance and privacy spent: audited
        record_audit(
            session,
            actor=actor(principal, state.deid_key),
            action="R",
            entity_type="Dashboard",
            entity_id="compliance",
        )
    session_ = web_session(request, state) if bearer_of(request) is None else None
    context = {
        "view": view,
        "csrf": csrf_token(session_key_of(state), session_.sid) if session_ else "",
        "agreement_url": public_url(request, "agreement_page"),
        "script": "dashboard.js",
    }
    response = TEMPLATES.TemplateResponse(request, "compliance.html", context)
    response.headers["Cache-Control"] = "no-store"  # it names approvers and privacy spent
    return response


def _done(message: str) -> JSONResponse:
    return JSONResponse({"done": message}, headers={"Cache-Control": "no-store"})


@router.post("/versions/{version}/approve", name="dashboard_approve")
def approve_version(
    version: Version,
    state: StateDep,
    principal: OfficerWriting,
    body: Annotated[Override, Depends(json_body(Override))],
) -> Response:
    settings = state.settings
    try:
        done = approve(
            _client(state),
            state.sessions,
            version,
            principal,
            state.deid_key,
            criteria=AcceptanceCriteria(),
            override=body.override_reason,
            records=settings.resolved_home / RECORDS_FILE,
        )
    except (GovernanceRefused, VersionNotFound) as err:
        raise _refused(err) from None
    overridden = " overriding the failed criteria" if done.override_reason else ""
    return _done(f"version {done.version} approved by {done.name or done.actor}{overridden}")


@router.post("/versions/{version}/promote", name="dashboard_promote")
def promote_version(
    version: Version,
    state: StateDep,
    principal: OfficerWriting,
    body: Annotated[Override, Depends(json_body(Override))],
) -> Response:
    settings = state.settings
    try:
        done = promote(
            _client(state),
            state.sessions,
            settings,
            version,
            AcceptanceCriteria(),
            principal,
            override=body.override_reason,
            records=settings.resolved_home / RECORDS_FILE,
        )
    except (GovernanceRefused, VersionNotFound) as err:
        raise _refused(err) from None
    return _done(f"version {done.version} is in production")


@router.post("/rollback", name="dashboard_rollback")
def roll_back(
    state: StateDep, principal: OfficerWriting, _body: Annotated[NoBody, Depends(json_body(NoBody))]
) -> Response:
    settings = state.settings
    try:
        done = rollback(
            _client(state), state.sessions, settings, principal, records=settings.resolved_home / RECORDS_FILE
        )
    except (GovernanceRefused, VersionNotFound) as err:
        raise _refused(err) from None
    return _done(f"rolled back: version {done.version} is in production again")


@router.post("/quarantine", name="dashboard_quarantine")
def quarantine_decision(
    state: StateDep,
    principal: OfficerWriting,
    body: Annotated[QuarantineDecision, Depends(json_body(QuarantineDecision))],
) -> Response:
    try:
        with transaction(state.sessions) as session:
            decide_quarantine(
                session,
                principal,
                state.deid_key,
                body.clinician,
                release=body.release,
                reason=body.reason,
                reasons=state.settings.resolved_home / REASONS_FILE,
            )
    except (GovernanceRefused, QuarantineError) as err:
        raise _refused(err) from None
    return _done(f"{body.clinician} {'released' if body.release else 'quarantined'}")
