"""SMART scope matching, as pure functions.

SMART App Launch 2.0 (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html):
`patient|user|system / <ResourceType or *> . <permissions>`, where v2 permissions are a subset of
`cruds` in that order and v1 permissions are `read`, `write` or `*` (still accepted: v1 `read` is
v2 `rs`). Tokens (clinrlhf.identity.tokens) and the FHIR access tokens CDS Hooks 3.0 clients pass
in `fhirAuthorization.scope` (services.cds.authorization) are read alike.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable

_SCOPE = re.compile(r"^(patient|user|system)/([A-Za-z]+|\*)\.(c?r?u?d?s?|read|write|\*)$")
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}


def parse_scope(scope: str) -> tuple[str, str, frozenset[str]] | None:
    """(context, resource, permissions) of a resource scope; None for other scopes (openid, launch)."""
    match = _SCOPE.match(scope)
    if not match or not match.group(3):
        return None
    context, resource, perms = match.groups()
    return context, resource, frozenset(_V1.get(perms, perms))


def grants(
    scopes: Iterable[str],
    resource: str,
    permission: str,
    contexts: Collection[str] = ("patient", "user", "system"),
) -> bool:
    """Whether any scope of one of `contexts` lets its holder do `permission` (one of c r u d s) on
    `resource`. A v2 scope narrowed by search parameters (`patient/Observation.rs?category=...`)
    grants only part of the resource, so it never counts as granting all of it."""
    for scope in scopes:
        parsed = parse_scope(scope)
        if parsed and parsed[0] in contexts and parsed[1] in (resource, "*") and permission in parsed[2]:
            return True
    return False
