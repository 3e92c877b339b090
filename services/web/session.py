"""The review page's session: a signed cookie holding who logged in, and CSRF tokens tied to it.

A clinician logs in once with a bearer token; the cookie that replaces it is sealed with HMAC-SHA256
under a key derived from the service's de-identification key, so the service keeps no session table
and needs no secret of its own. The cookie carries only the caller's identity and scopes, never the
bearer token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import asdict, dataclass

from clinrlhf.identity import Principal

SESSION_COOKIE = "clinrlhf_review"
LOGIN_COOKIE = "clinrlhf_login"  # the login form's double-submit CSRF token
CSRF_HEADER = "X-CSRF-Token"
# Sessions ended by logging out, remembered until they would have expired, in the service's store of
# used token ids (`AppState.jti_cache`), which every worker and replica shares: a sealed cookie is
# otherwise valid until its `expires`, whoever kept a copy.
REVOKED_SESSIONS = "clinrlhf:review-session-revoked"
SESSION_SECONDS = 8 * 3600  # one working shift; never longer than the token that opened it


def session_key(deid_key: bytes, env: str) -> bytes:
    """A key for this purpose only (HMAC as a KDF, RFC 5869's extract step): a leaked session key
    reveals nothing about pseudonyms, and the pseudonym key never signs cookies. The environment is
    part of the label, so a development session is worthless in production even under one key."""
    return hmac.new(deid_key, f"clinrlhf review-session v2 {env}".encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, label: bytes, data: bytes) -> str:
    return _b64(hmac.new(key, label + b"\x00" + data, hashlib.sha256).digest())


@dataclass(frozen=True)
class WebSession:
    sid: str  # random per login; CSRF tokens are bound to it
    sub: str
    issuer: str
    role: str | None
    scopes: tuple[str, ...]
    expires: int  # Unix time
    # The token's display name (its `name` claim), for the governance records of the compliance
    # dashboard's actions; optional, so a cookie sealed before it existed still opens.
    name: str | None = None

    @classmethod
    def open(cls, principal: Principal, token_expires: int, now: float | None = None) -> WebSession:
        now = time.time() if now is None else now
        return cls(
            sid=secrets.token_urlsafe(16),
            sub=principal.sub,
            issuer=principal.issuer,
            role=principal.role,
            scopes=tuple(sorted(principal.scopes)),
            expires=min(int(now) + SESSION_SECONDS, token_expires),
            name=principal.name,
        )

    def principal(self) -> Principal:
        return Principal(
            sub=self.sub, role=self.role, scopes=frozenset(self.scopes), issuer=self.issuer, name=self.name
        )


def seal(key: bytes, session: WebSession) -> str:
    payload = _b64(json.dumps(asdict(session), sort_keys=True, separators=(",", ":")).encode())
    return f"{payload}.{_mac(key, b'session', payload.encode())}"


def unseal(key: bytes, cookie: str | None, now: float | None = None) -> WebSession | None:
    """The session in a cookie whose seal holds and that has not expired; None otherwise."""
    if not cookie or cookie.count(".") != 1:
        return None
    payload, mac = cookie.split(".")
    if not hmac.compare_digest(mac, _mac(key, b"session", payload.encode())):
        return None
    try:
        raw = json.loads(_unb64(payload))
        session = WebSession(**{**raw, "scopes": tuple(raw["scopes"])})
    except (ValueError, TypeError, KeyError):
        return None
    return session if session.expires > (time.time() if now is None else now) else None


def csrf_token(key: bytes, sid: str) -> str:
    """The CSRF token of one session (a signed token, OWASP's "HMAC based token pattern")."""
    return _mac(key, b"csrf", sid.encode())


def csrf_matches(key: bytes, sid: str, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(presented, csrf_token(key, sid))


def login_nonce() -> str:
    return secrets.token_urlsafe(24)
