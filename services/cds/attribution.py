"""Who a CDS client may speak for. CDS Hooks lets the EHR assert its user (`context.userId`), so
feedback is credited to whoever the client names; a deployment restricts which practitioners each
client may name (`CLINRLHF_CDS_CLIENT_PRACTITIONERS`), and the store records which client asserted
each user, pseudonymised like the user (`clinrlhf.identity.client_pseudonym`).

Unset, every client may name anyone in development, and no client may name anyone in production
(a deployment must say whom each EHR speaks for before feedback is credited to a practitioner).
"""

from __future__ import annotations

import json
from fnmatch import fnmatchcase
from functools import cache

from clinrlhf.identity import Principal
from clinrlhf.settings import Settings


class AttributionError(PermissionError):
    """The client may not speak for the user it named. Fixed text: it never quotes the user."""


@cache
def _grants(raw: str) -> dict[str, tuple[str, ...]]:
    return {client: tuple(patterns) for client, patterns in json.loads(raw).items()}


def may_speak_for(settings: Settings, client: str, user: str) -> bool:
    """Whether the CDS client whose token's `sub` is `client` may assert `user` as its user.
    Patterns are shell globs matched against the userId as sent (`Practitioner/ward-a-*`)."""
    if settings.cds_client_practitioners is None:
        return settings.env == "development"
    patterns = _grants(settings.cds_client_practitioners).get(client, ())
    return any(fnmatchcase(user, pattern) for pattern in patterns)


def check_user(settings: Settings, principal: Principal, user: str | None) -> None:
    """Raises AttributionError unless the caller may assert `user` (no user asserts nothing)."""
    if user is not None and not may_speak_for(settings, principal.sub, user):
        raise AttributionError("this CDS client may not speak for the user it named in context.userId")
