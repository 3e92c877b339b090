"""How people are named where they are recorded: keyed pseudonyms, never the raw identifiers.

Every place that writes a name (the services' audit events and stored feedback, the governance
trail) derives it here, so one person has one name across the trail. Each kind of name has its own
namespace, so a clinician's pseudonym cannot be joined with the same person's actor or client one.
"""

from __future__ import annotations

from clinrlhf.identity.tokens import Principal
from privacy.deid import pseudonym


def clinician_pseudonym(key: bytes, user: str) -> str:
    """Pseudonym of a clinician. `Practitioner/123` and `123` name the same person, so a CDS context
    userId and an identity-provider `sub` map to the same pseudonym."""
    for prefix in ("Practitioner/", "PractitionerRole/"):
        user = user.removeprefix(prefix)
    return pseudonym(key, user, namespace="clinician")


def actor_pseudonym(principal: Principal, key: bytes) -> str:
    """The caller's pseudonym in the audit trail: its issuer and subject, keyed (one subject at two
    issuers is two people)."""
    return pseudonym(key, f"{principal.issuer}|{principal.sub}", namespace="actor")


def actor(principal: Principal, key: bytes) -> str:
    """How the audit trail's actor column names the caller: `<role>:<pseudonym>`."""
    return f"{principal.role or 'external'}:{actor_pseudonym(principal, key)}"


def client_pseudonym(key: bytes, principal: Principal) -> str:
    """How the store names a CDS client: a keyed hash of its issuer and subject, never either."""
    return pseudonym(key, f"{principal.issuer}|{principal.sub}", namespace="cds-client")
