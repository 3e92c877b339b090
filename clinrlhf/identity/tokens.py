"""Bearer tokens: minting development tokens, and verifying every token the service receives.

Verification follows the CDS Hooks 2.0 rules for client JWTs ("Trusting CDS Clients"): asymmetric
signatures only (never `none`, never HMAC), `iss` on an allow-list, `aud` naming this service,
`exp`, `iat` and `jti` required.

Replay protection (`jti` used once) applies where the CDS Hooks spec intends it: to tokens from an
external issuer acting as a `cds-client`, which sign a fresh JWT for every request, and to any
token that opts in with the claim `"jti_once": true`. Tokens minted by `clinrlhf token` are
long-lived bearer tokens: one clinician's (or one simulated EHR's) token serves many requests, so
reusing it is expected and not a replay.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from clinrlhf.identity.jwks import Issuer, JWKSCache, parse_issuers
from clinrlhf.identity.keys import DEV_ALGORITHM, DEV_ISSUER, dev_signing_key, public_jwk
from clinrlhf.identity.replay import JtiCache
from clinrlhf.identity.roles import ROLE_SCOPES, ROLES
from clinrlhf.identity.scopes import grants
from clinrlhf.settings import Settings

# Asymmetric JWS algorithms only (RFC 7518). CDS Hooks: "SHALL NOT be signed using any symmetric
# algorithm" nor `none`.
ALLOWED_ALGORITHMS = (
    "ES256",
    "ES384",
    "ES512",
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "EdDSA",
)
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "jti"]
SERVICE_CONTEXTS = ("user", "system")  # the SMART scope contexts that grant this service's routes
CLOCK_SKEW_SECONDS = 30
DEFAULT_TTL_SECONDS = 3600

_default_jwks_cache = JWKSCache()


class TokenError(Exception):
    """The token is not acceptable. The message is fixed text and never quotes the token."""


@dataclass(frozen=True)
class Principal:
    sub: str
    role: str | None
    scopes: frozenset[str]
    issuer: str
    name: str | None = None  # the token's optional `name` claim (OpenID Connect): a display name

    def can(self, resource: str, permission: str) -> bool:
        # User and system scopes only: a SMART patient scope reaches one patient's record, and every
        # route of this service (all feedback, the audit log, any card's Provenance, $deidentify)
        # spans all patients, so `patient/*.rs` must open none of them.
        return grants(self.scopes, resource, permission, contexts=SERVICE_CONTEXTS)


def mint_token(
    settings: Settings,
    role: str,
    sub: str,
    ttl: int = DEFAULT_TTL_SECONDS,
    scopes: str | None = None,
    *,
    jti_once: bool = False,
    name: str | None = None,
) -> str:
    """A development token signed with the ES256 key under ``settings.keys_dir``."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    if ttl <= 0:
        raise ValueError("ttl must be positive")
    if ttl > settings.max_token_lifetime_seconds:
        raise ValueError(
            f"ttl exceeds the longest token lifetime, {settings.max_token_lifetime_seconds} s "
            "(CLINRLHF_MAX_TOKEN_LIFETIME_SECONDS)"
        )
    key = dev_signing_key(settings)
    assert key is not None  # created on demand
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": DEV_ISSUER,
        "sub": sub,
        "aud": settings.token_audience,
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
        "jti": str(uuid.uuid4()),
        "role": role,
        "scope": scopes if scopes is not None else ROLE_SCOPES[role],
    }
    if jti_once:
        claims["jti_once"] = True
    if name:
        claims["name"] = name
    kid = public_jwk(key.public_key())["kid"]
    return jwt.encode(claims, key, algorithm=DEV_ALGORITHM, headers={"kid": kid, "typ": "JWT"})


def _dev_key(settings: Settings, alg: str) -> ec.EllipticCurvePublicKey:
    key = dev_signing_key(settings, create=False) if settings.env != "production" else None
    if key is None:
        raise TokenError("token issuer is not trusted")
    if alg != DEV_ALGORITHM:
        raise TokenError("signing algorithm does not match the issuer's key")
    return key.public_key()


def _issuer_key(issuer: Issuer, header: Mapping[str, Any], cache: JWKSCache) -> Any:
    kid, alg = header.get("kid"), header["alg"]
    for refresh in (False, True):  # an unknown kid may mean the issuer rotated keys: refetch once
        try:
            keys = cache.get(issuer.jwks, refresh=refresh)["keys"]
        except (OSError, ValueError, httpx.HTTPError):
            raise TokenError("token issuer's keys are unavailable") from None
        matches = [k for k in keys if isinstance(k, Mapping) and (kid is None or k.get("kid") == kid)]
        if len(matches) == 1:
            if matches[0].get("alg") not in (None, alg):
                raise TokenError("signing algorithm does not match the issuer's key")
            try:
                return jwt.PyJWK(dict(matches[0]), algorithm=alg).key
            except jwt.PyJWTError:
                raise TokenError("token issuer's key is unusable") from None
    raise TokenError("token signing key is unknown")


def _decode(token: str, key: Any, alg: str, iss: str, audiences: list[str]) -> dict[str, Any]:
    try:
        return jwt.decode(
            token,
            key,
            algorithms=[alg],
            audience=audiences,
            issuer=iss,
            leeway=CLOCK_SKEW_SECONDS,
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("token has expired") from None
    except jwt.InvalidAudienceError:
        raise TokenError("token audience is not this service") from None
    except jwt.MissingRequiredClaimError:
        raise TokenError("token lacks a required claim (exp, iat, iss, aud, jti)") from None
    except (jwt.PyJWTError, ValueError, TypeError):
        raise TokenError("token signature or claims are invalid") from None


def _check_times(claims: Mapping[str, Any], max_lifetime: int) -> None:
    """Time claims are JSON numbers (RFC 7519 NumericDate; PyJWT would turn the string
    "9999999999" into a number), and `exp - iat` is at most `max_lifetime`: a stolen token with a
    100-year `exp` would otherwise never stop working."""
    for name in ("exp", "iat", "nbf"):
        value = claims.get(name)
        if name in claims and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise TokenError("token time claims must be numbers (exp, iat, nbf)")
    if claims["exp"] - claims["iat"] > max_lifetime:
        raise TokenError("token lifetime (exp - iat) exceeds the longest this service accepts")


def _scopes(claims: Mapping[str, Any], role: str | None, issuer: Issuer | None) -> frozenset[str]:
    if issuer is not None and issuer.role is not None:
        return frozenset(ROLE_SCOPES[issuer.role].split())  # the configuration, not the token, decides
    raw = claims.get("scope", claims.get("scp"))
    if isinstance(raw, str):
        return frozenset(raw.split())
    if isinstance(raw, list):
        return frozenset(s for s in raw if isinstance(s, str))
    return frozenset(ROLE_SCOPES[role].split()) if role else frozenset()


def verify_token(
    settings: Settings,
    token: str,
    jti_cache: JtiCache,
    *,
    audiences: Collection[str] = (),
    jwks_cache: JWKSCache | None = None,
) -> Principal:
    """Verify a bearer token and return who holds it; raise TokenError otherwise.

    `audiences` adds accepted `aud` values to ``settings.token_audience``: CDS Hooks clients put the
    URL of the endpoint they call there.
    """
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except (jwt.PyJWTError, ValueError, TypeError):
        raise TokenError("token is malformed") from None
    alg, iss = header.get("alg"), unverified.get("iss")
    if alg not in ALLOWED_ALGORITHMS:
        raise TokenError("token signing algorithm is not accepted (asymmetric algorithms only)")
    if not isinstance(iss, str):
        raise TokenError("token issuer is not trusted")
    issuer = parse_issuers(settings.jwks_issuers).get(iss)
    if iss == DEV_ISSUER and issuer is None:
        key = _dev_key(settings, alg)
    elif issuer is not None:
        key = _issuer_key(issuer, header, jwks_cache or _default_jwks_cache)
    else:
        raise TokenError("token issuer is not trusted")
    claims = _decode(token, key, alg, iss, [settings.token_audience, *audiences])
    _check_times(claims, settings.max_token_lifetime_seconds)
    role = issuer.role if issuer is not None and issuer.role else claims.get("role")
    role = role if role in ROLES else None
    once = claims.get("jti_once") is True or (issuer is not None and role == "cds-client")
    if once and not jti_cache.first_use(iss, str(claims["jti"]), float(claims["exp"])):
        raise TokenError("token has already been used (jti replay)")
    return Principal(
        sub=str(claims.get("sub") or iss),
        role=role,
        scopes=_scopes(claims, role, issuer),
        issuer=iss,
        name=display_name(claims.get("name")),
    )


MAX_NAME_LENGTH = 120


def display_name(raw: Any) -> str | None:
    """The `name` claim as one printable line of at most MAX_NAME_LENGTH characters, or None: it is
    shown in reports and MLflow, so control characters (a forged line break) are dropped."""
    if not isinstance(raw, str):
        return None
    name = " ".join("".join(ch if ch.isprintable() else " " for ch in raw).split())[:MAX_NAME_LENGTH]
    return name or None
