"""Who is on the review page: a clinician with a session cookie, or any caller with a bearer token.

Browsers log in once and then send the session cookie; tools and tests may send a bearer token on
every request instead. Only cookie-authenticated writes need a CSRF token: a browser attaches cookies
by itself, but never an Authorization header.
"""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import Depends, Request

from clinrlhf.identity import Principal
from services.errors import APIError
from services.state import AppState, StateDep, audiences_for, principal_of
from services.web.session import (
    CSRF_HEADER,
    REVOKED_SESSIONS,
    SESSION_COOKIE,
    WebSession,
    csrf_matches,
    session_key,
    unseal,
)

# The page's actions are the FHIR review's: whoever may create a QuestionnaireResponse may review.
REVIEW_SCOPE = ("QuestionnaireResponse", "c")
# The agreement admin view shows every clinician's agreement with the others: for whoever may read
# the audit trail (the compliance role), as on /compliance. A clinician's scopes do not allow it.
AGREEMENT_SCOPE = ("AuditEvent", "r")
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="clinrlhf"'}


def bearer_of(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def session_key_of(state: AppState) -> bytes:
    return session_key(state.deid_key, state.settings.env)


def web_session(request: Request, state: StateDep) -> WebSession | None:
    """The session whose cookie's seal holds. Not checked against logouts (no I/O, for the event
    loop): `signed_in_session` is, and is what lets a caller in."""
    return unseal(session_key_of(state), request.cookies.get(SESSION_COOKIE))


def signed_in_session(request: Request, state: AppState) -> WebSession | None:
    """`web_session`, unless it was ended by logging out. Does I/O: call it from a thread."""
    session = web_session(request, state)
    if session is None or state.jti_cache.seen(REVOKED_SESSIONS, session.sid):
        return None
    return session


def can_review(principal: Principal) -> bool:
    return principal.can(*REVIEW_SCOPE)


def can_see_agreement(principal: Principal) -> bool:
    return principal.can(*AGREEMENT_SCOPE)


def require_reviewer(principal: Principal) -> Principal:
    if not can_review(principal):
        raise APIError(403, "the review page is for clinicians: this token's scopes do not allow reviews")
    return principal


def require_page_user(principal: Principal) -> Principal:
    """Who may log in: a reviewer, or someone who may see the agreement admin view."""
    if not (can_review(principal) or can_see_agreement(principal)):
        raise APIError(
            403,
            "the review page is for clinicians, and its agreement view for compliance officers: "
            "this token's scopes allow neither",
        )
    return principal


def optional_caller(request: Request, state: StateDep) -> Principal | None:
    """Whoever sent credentials (a bearer token, checked; else a session cookie), or None. A plain
    `def`, run in the thread pool: checking a token may fetch an issuer's keys."""
    token = bearer_of(request)
    if token is not None:
        return principal_of(request, state, token)
    session = signed_in_session(request, state)
    return session.principal() if session else None


async def optional_agreement_reader(
    principal: Annotated[Principal | None, Depends(optional_caller)],
) -> Principal | None:
    """The caller if they may see the agreement admin view; 403 for other credentials; None if none."""
    if principal is not None and not can_see_agreement(principal):
        raise APIError(
            403, "the agreement view is for compliance officers: this token's scopes do not allow it"
        )
    return principal


async def optional_reviewer(
    principal: Annotated[Principal | None, Depends(optional_caller)],
) -> Principal | None:
    """The caller if they sent any credentials (checked, and 403 for the wrong role); None if none."""
    return require_reviewer(principal) if principal is not None else None


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
        if not csrf_matches(session_key_of(state), session.sid, request.headers.get(CSRF_HEADER)):
            raise APIError(403, "missing or invalid CSRF token; reload the page")
    return principal


ReviewerWriting = Annotated[Principal, Depends(csrf_checked)]
MaybeReviewer = Annotated[Principal | None, Depends(optional_reviewer)]
MaybeAgreementReader = Annotated[Principal | None, Depends(optional_agreement_reader)]


def client_key(request: Request, state: StateDep) -> str:
    """Who counts as one client for rate limiting: the review session (its cookie, checked by its
    seal), else the holder of a bearer token the service has already verified (its cache of verified
    tokens; no check happens here), else the peer address (a configured proxy's forwarded one,
    `services.api.app`). An unverified token names no one: keyed by it, every request with fresh
    junk would get a full bucket of its own (and a `rate_buckets` row)."""
    session = web_session(request, state)
    if session is not None:
        return f"session:{session.sid}"
    token = bearer_of(request)
    known = state.verified_tokens.get(token, audiences_for(request, state.settings)) if token else None
    if known is not None:
        return f"caller:{known.issuer}|{known.sub}"
    return f"address:{request.client.host if request.client else 'unknown'}"


async def rate_limited(request: Request, state: StateDep) -> None:
    """A dependency of every review page route, checked first: 429 once the client has used up
    its bucket (`services.web.ratelimit`). `async def`: the limiter's database work runs in the
    thread pool, its in-process fallback on the event loop alone."""
    wait = await state.review_limiter.check(client_key(request, state))
    if wait > 0:
        retry = {"Retry-After": str(max(1, math.ceil(wait)))}
        raise APIError(429, "too many requests from this client; slow down", headers=retry)
