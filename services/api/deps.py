"""Typed dependencies: settings, a database session, the caller, and scope checks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from clinrlhf.identity import JtiCache, Principal, TokenError, verify_token
from clinrlhf.settings import Settings
from clinrlhf.world.world import World
from privacy.deid import pseudonym
from services.api.errors import APIError
from services.recommend import PolicyHolder


@dataclass
class AppState:
    """Everything a request may need, built once by `create_app`."""

    settings: Settings
    sessions: sessionmaker[Session]
    jti_cache: JtiCache
    policies: PolicyHolder
    world: World
    deid_key: bytes


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.clinrlhf
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def get_settings(state: StateDep) -> Settings:
    return state.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_session(state: StateDep) -> Iterator[Session]:
    with state.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]

_bearer = HTTPBearer(
    auto_error=False, description="A JWT from `clinrlhf token` or a trusted identity provider"
)
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="clinrlhf"'}


def current_principal(
    request: Request,
    state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise APIError(401, "a bearer token is required", headers=_CHALLENGE)
    # CDS Hooks clients put the URL of the endpoint they call in `aud`.
    endpoint = str(request.url.replace(query=None, fragment=None))
    try:
        return verify_token(state.settings, credentials.credentials, state.jti_cache, audiences=[endpoint])
    except TokenError as err:
        challenge = {"WWW-Authenticate": 'Bearer realm="clinrlhf", error="invalid_token"'}
        raise APIError(401, str(err), headers=challenge) from None


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_scope(resource: str, permission: str) -> Callable[[Principal], Principal]:
    """A dependency that lets the caller through only with a scope granting `permission` on `resource`."""

    def check(principal: CurrentPrincipal) -> Principal:
        if not principal.can(resource, permission):
            raise APIError(403, f"this token's scopes do not allow {resource}.{permission}")
        return principal

    return check


def clinician_pseudonym(key: bytes, user: str) -> str:
    """Pseudonym of a clinician. `Practitioner/123` and `123` name the same person, so a CDS context
    userId and an identity-provider `sub` map to the same pseudonym."""
    for prefix in ("Practitioner/", "PractitionerRole/"):
        user = user.removeprefix(prefix)
    return pseudonym(key, user, namespace="clinician")


def actor(principal: Principal, key: bytes) -> str:
    """How the audit trail names the caller: role and pseudonym, never the raw subject."""
    return f"{principal.role or 'external'}:{pseudonym(key, f'{principal.issuer}|{principal.sub}', namespace='actor')}"
