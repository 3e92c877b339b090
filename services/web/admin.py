"""The review page's admin view, /review/admin/agreement: how far the clinicians agree, live.

Agreement is computed from the judgments in the store at request time (services.web.agreement_view),
by case type and by clinician, and shown by pseudonym only. It is for compliance officers (the
scope that reads the audit trail, as on /compliance); a clinician is refused, since the page ranks
every clinician against the others. Access is checked as on the review page: a browser without a
session is sent to log in, other callers get OperationOutcomes (401 without credentials, 403 for
the wrong scopes).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from clinrlhf.identity import actor
from clinrlhf.store import consistent_read, export_judgments, record_audit, transaction
from services.state import StateDep
from services.urls import public_url
from services.web.agreement_view import agreement_view
from services.web.auth import (
    MaybeAgreementReader,
    can_review,
    rate_limited,
    session_key_of,
    web_session,
)
from services.web.routes import PREFIX, TEMPLATES, login_first
from services.web.session import csrf_token

router = APIRouter(prefix=PREFIX, include_in_schema=False, dependencies=[Depends(rate_limited)])


@router.get("/admin/agreement", name="agreement_page")
def agreement_page(request: Request, state: StateDep, principal: MaybeAgreementReader) -> Response:
    """Agreement by case type and by clinician, or word that too few cases overlap yet."""
    if principal is None:
        return login_first(request)
    with consistent_read(state.sessions) as session:  # reads never hold SQLite's write lock
        judgments = export_judgments(session, state.world)
    with transaction(state.sessions) as session:  # a read of every judgment: audited
        record_audit(
            session,
            actor=actor(principal, state.deid_key),
            action="R",
            entity_type="Feedback",
            entity_id="agreement-view",
        )
    session_ = web_session(request, state)
    context = {
        "agreement": agreement_view(judgments),
        "csrf": csrf_token(session_key_of(state), session_.sid) if session_ else "",
        "review_url": public_url(request, "review_page") if can_review(principal) else None,
        "script": None,  # the page needs none beyond common.js (its log-out button)
    }
    response = TEMPLATES.TemplateResponse(request, "admin_agreement.html", context)
    response.headers["Cache-Control"] = "no-store"  # it ranks clinicians; nobody else is to cache it
    return response
