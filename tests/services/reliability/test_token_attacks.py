"""Forged, stolen and misused bearer tokens against the running API, one row per attack.

The server trusts two issuers, as a hospital deployment would: its development key (`clinrlhf
token`) and an EHR that signs RS256 tokens with a key published in a JWKS, for which every token
is single-use (CDS Hooks `jti`). Each forged token is sent where a good one gets in (the CDS Hooks
feedback endpoint) and must get 401, as an OperationOutcome with a `WWW-Authenticate` challenge.

A valid token of the wrong role or scope is 403, not 401: it authenticates, but is not allowed,
as `test_role_matrix.py` states for every route. Kept here as the last rows, since the issue that
asked for these attacks listed it among them.

Covered elsewhere, not repeated: an expired token and a random HS256 secret over HTTP
(`test_api_surface.py`), a reused single-use development token (`test_token_cache.py`), and
`verify_token` itself (`tests/clinrlhf/identity/test_tokens.py`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from clinrlhf.identity import dev_signing_key, mint_token
from clinrlhf.identity.keys import public_jwk
from clinrlhf.settings import Settings

EHR = "https://ehr.hospital.example"
FEEDBACK = "/cds-services/clinrlhf-treatment/feedback"


@dataclass(frozen=True)
class Keys:
    settings: Settings
    ehr: rsa.RSAPrivateKey

    @property
    def dev(self) -> ec.EllipticCurvePrivateKey:
        key = dev_signing_key(self.settings)
        assert key is not None
        return key

    @property
    def dev_kid(self) -> str:
        return public_jwk(self.dev.public_key())["kid"]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory, policy_dir: Path) -> Keys:
    home = tmp_path_factory.mktemp("token-attacks")
    ehr = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(ehr.public_key(), as_dict=True)
    (home / "ehr-jwks.json").write_text(json.dumps({"keys": [jwk | {"kid": "ehr-1", "alg": "RS256"}]}))
    issuers = {EHR: {"jwks": str(home / "ehr-jwks.json"), "role": "cds-client"}}
    settings = Settings(home=home / "home", policy=policy_dir, jwks_issuers=json.dumps(issuers))
    return Keys(settings, ehr)


@pytest.fixture(scope="module")
def site(keys: Keys, live_server) -> Iterator[str]:
    with live_server(keys.settings) as live:
        yield live.url


def claims(**changes: Any) -> dict[str, Any]:
    """A development cds-client token's claims, as `clinrlhf token` writes them."""
    now = int(time.time())
    base = {"iss": "clinrlhf-dev", "sub": "ehr", "aud": "clinrlhf", "iat": now, "nbf": now}
    base |= {"exp": now + 300, "jti": str(uuid.uuid4()), "role": "cds-client", "scope": "system/CDSHooks.cr"}
    return {k: v for k, v in (base | changes).items() if v is not None}


def ehr_claims(**changes: Any) -> dict[str, Any]:
    return claims(iss=EHR, role=None, scope=None, **changes)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_signed(header: dict[str, Any], payload: dict[str, Any], sign: Callable[[bytes], bytes]) -> str:
    """A JWS put together by hand: PyJWT itself refuses to make the forgeries below."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    return f"{signing_input}.{b64(sign(signing_input.encode()))}"


def pem(public_key: Any) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def hs256_with(key: bytes, header: dict[str, Any], payload: dict[str, Any]) -> str:
    """Key confusion: HMAC over the token keyed with a public key, hoping the verifier uses that
    same public key as the HMAC secret."""
    return hand_signed(
        header | {"alg": "HS256"}, payload, lambda data: hmac.new(key, data, hashlib.sha256).digest()
    )


def tamper_signature(token: str) -> str:
    head, body, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[len(raw) // 2] ^= 0x01
    return f"{head}.{body}.{b64(bytes(raw))}"


def swap_payload(token: str, payload: dict[str, Any]) -> str:
    """The same header and signature over a payload of the attacker's choosing."""
    head, _, signature = token.split(".")
    return f"{head}.{b64(json.dumps(payload).encode())}.{signature}"


def es256(key: ec.EllipticCurvePrivateKey, kid: str, **changes: Any) -> str:
    return jwt.encode(claims(**changes), key, algorithm="ES256", headers={"kid": kid})


def ehr_token(keys: Keys, **changes: Any) -> str:
    return jwt.encode(ehr_claims(**changes), keys.ehr, algorithm="RS256", headers={"kid": "ehr-1"})


Attack = Callable[[Keys], str]
ATTACKS: dict[str, tuple[Attack, str]] = {
    # name: (how to make the token, what the 401's diagnostics say)
    "alg none": (
        lambda k: hand_signed({"alg": "none", "typ": "JWT"}, claims(), lambda _data: b""),
        "algorithm",
    ),
    "HS256 keyed with the EHR's RSA public key": (
        lambda k: hs256_with(pem(k.ehr.public_key()), {"kid": "ehr-1"}, ehr_claims()),
        "algorithm",
    ),
    "HS256 keyed with the development public key": (
        lambda k: hs256_with(pem(k.dev.public_key()), {"kid": k.dev_kid}, claims()),
        "algorithm",
    ),
    "wrong audience": (lambda k: es256(k.dev, k.dev_kid, aud="https://other-service.example"), "audience"),
    "unknown issuer": (lambda k: es256(k.dev, k.dev_kid, iss="https://evil.example"), "not trusted"),
    "replayed jti": (lambda k: ehr_token(k, jti="used-once"), "replay"),
    "tampered signature": (lambda k: tamper_signature(es256(k.dev, k.dev_kid)), "signature"),
    "payload swapped under a valid signature": (
        lambda k: swap_payload(mint_token(k.settings, role="clinician", sub="dr-1"), claims(sub="dr-1")),
        "signature",
    ),
    "signed by a key the issuer never had": (
        lambda k: es256(ec.generate_private_key(ec.SECP256R1()), k.dev_kid),
        "signature",
    ),
    "EHR token signed by another RSA key": (
        lambda k: jwt.encode(
            ehr_claims(),
            rsa.generate_private_key(public_exponent=65537, key_size=2048),
            algorithm="RS256",
            headers={"kid": "ehr-1"},
        ),
        "signature",
    ),
    "no jti": (lambda k: es256(k.dev, k.dev_kid, jti=None), "required claim"),
    "not valid yet": (lambda k: es256(k.dev, k.dev_kid, nbf=int(time.time()) + 3600), "invalid"),
}


def post_feedback(site: str, token: str) -> httpx.Response:
    # The body is never read: the token is checked first.
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return httpx.post(f"{site}{FEEDBACK}", content=b"{}", headers=headers, timeout=30)


def test_the_genuine_tokens_get_in(site: str, keys: Keys) -> None:
    """The baseline every attack departs from: past authentication, to the body's 422."""
    assert post_feedback(site, es256(keys.dev, keys.dev_kid)).status_code == 422
    assert post_feedback(site, ehr_token(keys)).status_code == 422


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_each_attack_is_401(site: str, keys: Keys, attack: str) -> None:
    make, diagnostic = ATTACKS[attack]
    token = make(keys)
    if attack == "replayed jti":  # its first use is genuine
        assert post_feedback(site, token).status_code == 422
    response = post_feedback(site, token)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith('Bearer realm="clinrlhf", error="invalid_token"')
    issue = response.json()["issue"][0]
    assert (response.json()["resourceType"], issue["code"]) == ("OperationOutcome", "login")
    assert diagnostic in issue["diagnostics"]


@pytest.mark.parametrize(
    "scope",
    [None, "system/CDSHooks.r", "system/Feedback.cruds", "openid fhirUser"],
    ids=["clinician role", "read-only scope", "another resource", "no resource scope"],
)
def test_a_valid_token_without_the_right_role_or_scope_is_403(
    site: str, keys: Keys, scope: str | None
) -> None:
    token = mint_token(keys.settings, role="clinician", sub="dr-1", scopes=scope)
    response = post_feedback(site, token)
    assert response.status_code == 403, response.text
    assert response.json()["issue"][0]["code"] == "forbidden"
