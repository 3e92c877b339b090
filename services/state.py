"""The service's state and its typed dependencies: settings, a database session, the caller, and
scope checks. Every router package (`services/api/routes`, `services/cds`, `services/fhir`,
`services/web`) takes them from here, below itself; `services/api/app.py` builds the state.

The cheap ones are `async def`: FastAPI runs a plain `def` dependency in the thread pool, and a
thread hop per dependency cost more than the work of a small request (profiled on the feedback
endpoint: 7 hops, about 1.8 ms of 6 ms). Work that blocks (database I/O, fetching an issuer's
keys) stays off the event loop. `authenticate` and `ensure_scope` are the checks themselves, for a
route that folds its dependencies into one (see the CDS Hooks feedback route).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from clinrlhf.identity import JtiCache, Principal, TokenError, verify_token
from clinrlhf.settings import Settings
from clinrlhf.store.feedback import FeedbackCounts, FeedbackJob, feedback_writer
from clinrlhf.store.group_commit import GroupCommit
from clinrlhf.store.rate_limit import DatabaseRateLimiter
from clinrlhf.world.world import World
from services.cds.fetch import FHIRFetcher
from services.errors import APIError
from services.recommend import PolicyHolder
from services.token_cache import VerifiedTokens, reusable
from services.web.ratelimit import ReviewLimiter, SharedRateLimiter


@dataclass
class AppState:
    """Everything a request may need, built once by `create_app`."""

    settings: Settings
    sessions: sessionmaker[Session]
    jti_cache: JtiCache
    policies: PolicyHolder
    world: World
    deid_key: bytes
    verified_tokens: VerifiedTokens = field(default_factory=VerifiedTokens)
    # The review page's per-client limit, counted in the store: shared by every worker and replica.
    review_limiter: ReviewLimiter = field(init=False)
    # Feedback posts are written in batches by one writer per event loop (group commit).
    feedback_writer: GroupCommit[FeedbackJob, FeedbackCounts] = field(init=False)
    # Missing prefetch, from allow-listed FHIR servers only, bounded in time and in number.
    fhir_fetcher: FHIRFetcher = field(init=False)

    def __post_init__(self) -> None:
        buckets = DatabaseRateLimiter(
            self.sessions,
            self.settings.review_rate_per_second,
            self.settings.review_rate_burst,
            key=self.deid_key,  # clients are stored as keyed hashes (pseudonyms), never as given
        )
        self.review_limiter = SharedRateLimiter(buckets)
        self.feedback_writer = feedback_writer(self.sessions.kw["bind"])  # the sessions' engine
        self.fhir_fetcher = FHIRFetcher(self.settings)


async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.clinrlhf
    return state


StateDep = Annotated[AppState, Depends(get_state)]


async def get_settings(state: StateDep) -> Settings:
    return state.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_session(state: StateDep) -> AsyncIterator[Session]:
    """A session for the request. Making one does no I/O; closing one that still holds a
    transaction rolls it back, which is I/O, so that close runs in the thread pool."""
    session = state.sessions()
    try:
        yield session
    finally:
        if session.in_transaction():
            await run_in_threadpool(session.close)
        else:
            session.close()


SessionDep = Annotated[Session, Depends(get_session)]

_bearer = HTTPBearer(
    auto_error=False, description="A JWT from `clinrlhf token` or a trusted identity provider"
)
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="clinrlhf"'}


def audiences_for(request: Request, settings: Settings) -> list[str]:
    """`aud` values accepted besides `CLINRLHF_TOKEN_AUDIENCE`. CDS Hooks clients put the URL of
    the endpoint they call in `aud`: that URL is the configured public base URL plus the path,
    never the request's Host header, which the caller chooses (a token minted for another
    deployment would pass if it named that deployment's host)."""
    if not settings.public_base_url:
        return []
    return [settings.public_base_url.rstrip("/") + request.url.path]


def principal_of(request: Request, state: AppState, token: str) -> Principal:
    """Who holds `token`, verified for this request; APIError 401 otherwise. May block (an
    issuer's keys may need fetching): call it from a thread, as `current_principal` does."""
    audiences = audiences_for(request, state.settings)
    known = state.verified_tokens.get(token, audiences)
    if known is not None:
        return known
    try:
        principal = verify_token(state.settings, token, state.jti_cache, audiences=audiences)
    except TokenError as err:
        challenge = {"WWW-Authenticate": 'Bearer realm="clinrlhf", error="invalid_token"'}
        raise APIError(401, str(err), headers=challenge) from None
    claims = jwt.decode(token, options={"verify_signature": False})  # verified just above
    if reusable(principal, claims):
        state.verified_tokens.put(token, audiences, principal, float(claims["exp"]))
    return principal


async def authenticate(
    request: Request, state: AppState, credentials: HTTPAuthorizationCredentials | None
) -> Principal:
    """Who the bearer token in `credentials` names; APIError 401 otherwise."""
    if credentials is None:
        raise APIError(401, "a bearer token is required", headers=_CHALLENGE)
    audiences = audiences_for(request, state.settings)
    known = state.verified_tokens.get(credentials.credentials, audiences)
    if known is not None:  # the common case, answered without leaving the event loop
        return known
    return await run_in_threadpool(principal_of, request, state, credentials.credentials)


Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def current_principal(request: Request, state: StateDep, credentials: Bearer) -> Principal:
    return await authenticate(request, state, credentials)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def ensure_scope(principal: Principal, resource: str, permission: str) -> Principal:
    """`principal`, if a scope of theirs grants `permission` on `resource`; APIError 403 otherwise."""
    if not principal.can(resource, permission):
        raise APIError(403, f"this token's scopes do not allow {resource}.{permission}")
    return principal


def require_scope(resource: str, permission: str) -> Callable[[Principal], Coroutine[Any, Any, Principal]]:
    """A dependency that lets the caller through only with a scope granting `permission` on `resource`."""

    async def check(principal: CurrentPrincipal) -> Principal:
        return ensure_scope(principal, resource, permission)

    return check
