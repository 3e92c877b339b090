"""Who is calling: roles and SMART scopes, development signing keys, bearer-token verification, and
the pseudonyms that name a caller, a clinician or a CDS client where they are recorded."""

from clinrlhf.identity.jwks import IssuerConfigError, JWKSCache, parse_issuers
from clinrlhf.identity.keys import DEV_ISSUER, dev_jwks, dev_signing_key
from clinrlhf.identity.pseudonyms import actor, actor_pseudonym, client_pseudonym, clinician_pseudonym
from clinrlhf.identity.replay import JtiCache, MemoryJtiCache
from clinrlhf.identity.roles import ROLE_SCOPES, ROLES, Role
from clinrlhf.identity.scopes import grants, parse_scope
from clinrlhf.identity.tokens import Principal, TokenError, mint_token, verify_token

__all__ = [
    "DEV_ISSUER",
    "ROLES",
    "ROLE_SCOPES",
    "IssuerConfigError",
    "JWKSCache",
    "JtiCache",
    "MemoryJtiCache",
    "Principal",
    "Role",
    "TokenError",
    "actor",
    "actor_pseudonym",
    "client_pseudonym",
    "clinician_pseudonym",
    "dev_jwks",
    "dev_signing_key",
    "grants",
    "mint_token",
    "parse_issuers",
    "parse_scope",
    "verify_token",
]
