"""Who is on the review page: a clinician with a session cookie, or any caller with a bearer token.

Browsers log in once and then send the session cookie; tools and tests may send a bearer token on
every request instead. Only cookie-authenticated writes need a CSRF token: a browser attaches cookies
by itself, but never an Authorization header.
"""

from __future__ import annotations

import hashlib
import math
from typing import Annotated

from fastapi import Depends, Request

from clinrlhf.identity import Principal
from services.api.deps import StateDep, principal_of
from services.api.errors import APIError
from services.web.session import CSRF_HEADER, SESSION_COOKIE, WebSession, csrf_matches, session_key, unseal

# The page's actions are the FHIR review's: whoever may create a QuestionnaireResponse may review.
REVIEW_SCOPE = ("QuestionnaireResponse", "c")
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="clinrlhf"'}


def bearer_of(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def web_session(request: Request, state: StateDep) -> WebSession | None:
    return unseal(session_key(state.deid_key), request.cookies.get(SESSION_COOKIE))


def require_reviewer(principal: Principal) -> Principal:
    if not principal.can(*REVIEW_SCOPE):
        raise APIError(403, "the review page is for clinicians: this token's scopes do not allow reviews")
    return principal


def optional_reviewer(request: Request, state: StateDep) -> Principal | None:
    """The caller if they sent any credentials (checked, and 403 for the wrong role); None if none."""
    token = bearer_of(request)
    if token is not None:
        return require_reviewer(principal_of(request, state, token))
    session = web_session(request, state)
    return require_reviewer(session.principal()) if session else None


def reviewer(principal: Annotated[Principal | None, Depends(optional_reviewer)]) -> Principal:
    if principal is None:
        raise APIError(401, "log in on /review/login, or send a bearer token", headers=CHALLENGE)
    return principal


def csrf_checked(
    request: Request, state: StateDep, principal: Annotated[Principal, Depends(reviewer)]
) -> Principal:
    """The reviewer, for a write: a cookie session must also present its CSRF token."""
    if bearer_of(request) is None:
        session = web_session(request, state)
        assert session is not None  # `reviewer` found one
        if not csrf_matches(session_key(state.deid_key), session.sid, request.headers.get(CSRF_HEADER)):
            raise APIError(403, "missing or invalid CSRF token; reload the page")
    return principal


ReviewerWriting = Annotated[Principal, Depends(csrf_checked)]
MaybeReviewer = Annotated[Principal | None, Depends(optional_reviewer)]


def client_key(request: Request, state: StateDep) -> str:
    """Who counts as one client for rate limiting: the review session (its cookie, checked by its
    seal), else the bearer token, by hash (before it is verified a token names no one, and an
    unverified `sub` choosing the bucket would let anyone spend a clinician's), else the peer
    address. The address comes last because a hospital's clinicians often share one proxy."""
    session = web_session(request, state)
    if session is not None:
        return f"session:{session.sid}"
    token = bearer_of(request)
    if token is not None:
        return "token:" + hashlib.sha256(token.encode()).hexdigest()[:32]
    return f"address:{request.client.host if request.client else 'unknown'}"


async def rate_limited(request: Request, state: StateDep) -> None:
    """A dependency of every review page route, checked first: 429 once the client has used up
    its bucket (`services.web.ratelimit`). `async def`: the limiter is the event loop's alone."""
    wait = state.review_limiter.wait(client_key(request, state))
    if wait > 0:
        retry = {"Retry-After": str(max(1, math.ceil(wait)))}
        raise APIError(429, "too many requests from this client; slow down", headers=retry)
