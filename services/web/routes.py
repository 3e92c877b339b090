"""The review page's routes, under /review: log in, the queue, submit, log out.

HTML for browsers; the page's script posts JSON, so every write passes the same body limits and
media-type checks as the API, and every error is an OperationOutcome.
"""

from __future__ import annotations

import hmac
import time
from pathlib import Path
from typing import Annotated, Any

import jwt
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from clinrlhf.identity import actor, clinician_pseudonym
from clinrlhf.store import consistent_read
from clinrlhf.store.review_queue import next_card, progress
from services.body import json_body
from services.errors import APIError
from services.fhir.review import render_review
from services.responses import FHIRResponse
from services.state import AppState, StateDep, principal_of
from services.urls import public_url
from services.web.auth import (
    CHALLENGE,
    MaybeReviewer,
    ReviewerWriting,
    can_review,
    can_see_agreement,
    rate_limited,
    require_page_user,
    session_key_of,
    web_session,
)
from services.web.context import ModelView, case_view, model_view
from services.web.production import production_model
from services.web.session import (
    CSRF_HEADER,
    LOGIN_COOKIE,
    REVOKED_SESSIONS,
    SESSION_COOKIE,
    WebSession,
    csrf_matches,
    csrf_token,
    login_nonce,
    seal,
)
from services.web.submit import PageReview, store_page_review

HERE = Path(__file__).parent
TEMPLATES = Jinja2Templates(directory=HERE / "templates")
PREFIX = "/review"
# Router dependencies run before each route's own: a client over its rate costs no token check.
router = APIRouter(prefix=PREFIX, include_in_schema=False, dependencies=[Depends(rate_limited)])


def static_files() -> StaticFiles:
    return StaticFiles(directory=HERE / "static")


def _private(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"  # de-identified, but still nobody else's to cache
    return response


# The session cookie is sent to the whole site: the compliance dashboard (/compliance) shares the
# review page's login. It is SameSite=Strict, and every cookie-authenticated write checks its CSRF
# token; the API proper reads bearer tokens only.
SESSION_PATH = "/"


def _set_cookie(
    response: Response, request: Request, name: str, value: str, max_age: int, path: str = PREFIX
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def login_first(request: Request) -> Response:
    """For a caller not logged in: a browser is sent to log in; other clients get a 401 outcome."""
    if wants_html(request):
        return RedirectResponse(public_url(request, "login_page"), status_code=303)
    raise APIError(401, "log in on /review/login, or send a bearer token", headers=CHALLENGE)


@router.get("/login", name="login_page")
def login_page(request: Request) -> Response:
    nonce = login_nonce()
    response = TEMPLATES.TemplateResponse(request, "login.html", {"csrf": nonce, "script": "login.js"})
    _set_cookie(response, request, LOGIN_COOKIE, nonce, max_age=3600)
    return _private(response)


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str | None = Field(default=None, max_length=16_384)


def _token_expiry(token: str) -> int:
    # Read only after verify_token accepted the token, which requires `exp`.
    return int(jwt.decode(token, options={"verify_signature": False})["exp"])


@router.post("/session", name="log_in")
def log_in(request: Request, state: StateDep, body: Annotated[Login, Depends(json_body(Login))]) -> Response:
    """Exchange a clinician's bearer token for a session cookie (or a compliance officer's, who is
    sent on to the compliance dashboard). The login form's CSRF token is a double-submit nonce: a cookie
    set with the form, echoed in a header."""
    nonce, echoed = request.cookies.get(LOGIN_COOKIE), request.headers.get(CSRF_HEADER)
    if not nonce or not echoed or not hmac.compare_digest(nonce, echoed):
        raise APIError(403, "missing or invalid CSRF token; reload the login page")
    if not body.token or not body.token.strip():
        raise APIError(401, "paste a bearer token with the clinician role")
    token = body.token.strip()
    principal = require_page_user(principal_of(request, state, token))
    session = WebSession.open(principal, _token_expiry(token))
    landing = "review_page" if can_review(principal) else "compliance_dashboard"
    response = JSONResponse({"next": public_url(request, landing)})
    _set_cookie(
        response,
        request,
        SESSION_COOKIE,
        seal(session_key_of(state), session),
        max_age=max(1, session.expires - int(time.time())),
        path=SESSION_PATH,
    )
    response.delete_cookie(LOGIN_COOKIE, path=PREFIX, httponly=True, samesite="strict")
    return _private(response)


@router.post("/logout", name="log_out", status_code=204)
def log_out(request: Request, state: StateDep) -> Response:
    session = web_session(request, state)
    if session and not csrf_matches(session_key_of(state), session.sid, request.headers.get(CSRF_HEADER)):
        raise APIError(403, "missing or invalid CSRF token; reload the page")
    if session:  # ended here for every copy of the cookie, not only the one the browser deletes
        state.jti_cache.first_use(REVOKED_SESSIONS, session.sid, float(session.expires))
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path=SESSION_PATH, httponly=True, samesite="strict")
    return response


def _model(state: AppState, version: str) -> ModelView:
    production = production_model(state.settings.resolved_home)
    current, label = production if production else (None, None)
    return model_view(version, production=current, production_label=label)


def _page(request: Request, state: AppState, clinician: str) -> dict[str, Any]:
    overlap = state.settings.review_overlap
    with consistent_read(state.sessions) as session:  # reads never hold SQLite's write lock
        card = next_card(session, clinician, overlap)
        view = case_view(state.world, card, clinician, _model(state, card.model_version)) if card else None
        done = progress(session, clinician, overlap)
    session_ = web_session(request, state)
    csrf = csrf_token(session_key_of(state), session_.sid) if session_ else ""
    drugs = sorted(state.world.drugs.values(), key=lambda d: d.key)
    return {"view": view, "progress": done, "csrf": csrf, "drugs": drugs, "script": "review.js"}


@router.get("", name="review_page")
def review_page(request: Request, state: StateDep, principal: MaybeReviewer) -> Response:
    """The next case in the clinician's queue, or word that the queue is empty."""
    if principal is None:
        return login_first(request)
    clinician = clinician_pseudonym(state.deid_key, principal.sub)
    page = _page(request, state, clinician)
    # The agreement view is linked only for those who may open it, never for a clinician alone.
    page["agreement_url"] = public_url(request, "agreement_page") if can_see_agreement(principal) else None
    return _private(TEMPLATES.TemplateResponse(request, "review.html", page))


@router.post("/submit", name="submit_review", status_code=201)
def submit_review(
    request: Request,
    principal: ReviewerWriting,
    form: Annotated[PageReview, Depends(json_body(PageReview))],
    state: StateDep,
) -> Response:
    """Store the review (201), or find the very same one stored already (200)."""
    with state.sessions() as session:
        review, created = store_page_review(
            session,
            form,
            world=state.world,
            clinician=clinician_pseudonym(state.deid_key, principal.sub),
            actor=actor(principal, state.deid_key),
            overlap=state.settings.review_overlap,
        )
    location = public_url(request, "read_review", review_id=review.id)
    response = FHIRResponse(
        render_review(review, state.world),
        status_code=201 if created else 200,
        headers={"Location": location},
    )
    return _private(response)
