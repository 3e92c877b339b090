"""Bearer tokens: development tokens round-trip, and verification follows the CDS Hooks JWT rules."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from clinrlhf.identity import (
    ROLE_SCOPES,
    JWKSCache,
    MemoryJtiCache,
    TokenError,
    dev_jwks,
    dev_signing_key,
    mint_token,
    verify_token,
)
from clinrlhf.settings import MissingSecretError, Settings

EHR = "https://ehr.hospital.example"
IDP = "https://idp.hospital.example"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path)


def claims(**extra: object) -> dict:
    now = int(time.time())
    return {
        "iss": EHR,
        "sub": "ehr-client",
        "aud": "clinrlhf",
        "iat": now,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
    } | extra


def jwk_of(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, kid: str, alg: str) -> dict:
    algorithm = (
        jwt.algorithms.RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) else jwt.algorithms.ECAlgorithm
    )
    return algorithm.to_jwk(key.public_key(), as_dict=True) | {"kid": kid, "alg": alg, "use": "sig"}


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def external(tmp_path: Path, rsa_key) -> Settings:
    """Production settings trusting an EHR (fixed role cds-client) and an IdP, both by JWKS file."""
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk_of(rsa_key, "k1", "RS384")]}))
    issuers = {EHR: {"jwks": str(path), "role": "cds-client"}, IDP: str(path)}
    return Settings(home=tmp_path, env="production", jwks_issuers=json.dumps(issuers))


def sign(key, alg: str, kid: str = "k1", **extra: object) -> str:
    return jwt.encode(claims(**extra), key, algorithm=alg, headers={"kid": kid})


def test_a_minted_token_verifies_with_its_role_and_scopes(settings: Settings) -> None:
    token = mint_token(settings, role="clinician", sub="dr-1", ttl=60)
    principal = verify_token(settings, token, MemoryJtiCache())
    assert (principal.sub, principal.role, principal.issuer) == ("dr-1", "clinician", "clinrlhf-dev")
    assert principal.scopes == frozenset(ROLE_SCOPES["clinician"].split())
    assert principal.can("QuestionnaireResponse", "c") and not principal.can("CDSHooks", "c")
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "ES256" and header["kid"] == dev_jwks(settings)["keys"][0]["kid"]


def test_development_tokens_can_be_reused(settings: Settings) -> None:
    cache = MemoryJtiCache()
    token = mint_token(settings, role="cds-client", sub="simulated-ehr")
    for _ in range(3):  # one simulated EHR token serves thousands of requests
        assert verify_token(settings, token, cache).role == "cds-client"


def test_a_token_that_opts_in_is_single_use(settings: Settings) -> None:
    cache = MemoryJtiCache()
    token = mint_token(settings, role="clinician", sub="dr-2", jti_once=True)
    verify_token(settings, token, cache)
    with pytest.raises(TokenError, match="already been used"):
        verify_token(settings, token, cache)


@pytest.mark.parametrize("alg", ["none", "HS256", "HS512"])
def test_unsigned_and_symmetric_tokens_are_refused(settings: Settings, alg: str) -> None:
    mint_token(settings, role="clinician", sub="x")  # the dev key exists
    key = None if alg == "none" else "shared-secret" * 8
    token = jwt.encode(claims(iss="clinrlhf-dev", role="compliance"), key, algorithm=alg)
    with pytest.raises(TokenError, match="algorithm"):
        verify_token(settings, token, MemoryJtiCache())


def test_wrong_audience_expiry_issuer_or_signature_are_refused(settings: Settings) -> None:
    key = dev_signing_key(settings)
    cases = {
        "audience": jwt.encode(claims(iss="clinrlhf-dev", aud="someone-else"), key, algorithm="ES256"),
        "expired": jwt.encode(claims(iss="clinrlhf-dev", exp=int(time.time()) - 120), key, algorithm="ES256"),
        "not trusted": jwt.encode(claims(iss="https://evil.example"), key, algorithm="ES256"),
        "signature": jwt.encode(
            claims(iss="clinrlhf-dev"), ec.generate_private_key(ec.SECP256R1()), algorithm="ES256"
        ),
        "required claim": jwt.encode(
            {k: v for k, v in claims(iss="clinrlhf-dev").items() if k != "jti"}, key, algorithm="ES256"
        ),
    }
    for expected, token in cases.items():
        with pytest.raises(TokenError, match=expected):
            verify_token(settings, token, MemoryJtiCache())


def test_the_endpoint_url_is_an_accepted_audience(settings: Settings) -> None:
    token = jwt.encode(
        claims(iss="clinrlhf-dev", aud="https://cds.example/cds-services/x", role="cds-client"),
        dev_signing_key(settings),
        algorithm="ES256",
    )
    assert verify_token(
        settings, token, MemoryJtiCache(), audiences=["https://cds.example/cds-services/x"]
    ).role


def test_production_refuses_development_tokens(tmp_path: Path) -> None:
    dev = Settings(home=tmp_path)
    token = mint_token(dev, role="compliance", sub="c")
    production = Settings(home=tmp_path, env="production")
    with pytest.raises(TokenError, match="not trusted"):
        verify_token(production, token, MemoryJtiCache())
    with pytest.raises(MissingSecretError):
        mint_token(production, role="compliance", sub="c")


def test_an_ehr_issuer_gets_its_configured_role_and_each_jti_works_once(external: Settings, rsa_key) -> None:
    cache = MemoryJtiCache()
    token = sign(rsa_key, "RS384", role="compliance")  # the configuration, not the token, sets the role
    principal = verify_token(external, token, cache)
    assert (
        principal.role == "cds-client"
        and principal.can("CDSHooks", "c")
        and not principal.can("AuditEvent", "r")
    )
    with pytest.raises(TokenError, match="already been used"):
        verify_token(external, token, cache)
    assert verify_token(external, sign(rsa_key, "RS384"), cache).sub == "ehr-client"  # a fresh jti passes


def test_an_identity_provider_token_is_reusable_and_scoped_by_its_claims(external: Settings, rsa_key) -> None:
    cache = MemoryJtiCache()
    token = sign(rsa_key, "RS384", iss=IDP, sub="dr-9", scope="user/QuestionnaireResponse.c launch/patient")
    for _ in range(2):
        principal = verify_token(external, token, cache)
    assert principal.role is None and principal.can("QuestionnaireResponse", "c")
    role_only = verify_token(external, sign(rsa_key, "RS384", iss=IDP, role="ml-engineer"), cache)
    assert role_only.can("Feedback", "r") and not role_only.can("QuestionnaireResponse", "c")


@pytest.mark.parametrize(
    ("resource", "permission"),
    [
        ("Feedback", "r"),
        ("AuditEvent", "s"),
        ("Provenance", "r"),
        ("Provenance", "s"),
        ("Deidentify", "c"),
        ("CDSHooks", "c"),
        ("QuestionnaireResponse", "c"),
    ],
)
def test_patient_scopes_grant_none_of_the_services_routes(
    external: Settings, rsa_key, resource: str, permission: str
) -> None:
    """SMART patient scopes reach one patient's record; every route here (all feedback, the audit log,
    any card's Provenance, $deidentify) spans all patients, so `patient/*.cruds` opens none of them."""
    scope = "launch/patient patient/*.cruds patient/*.* patient/Provenance.rs patient/Feedback.rs"
    principal = verify_token(
        external, sign(rsa_key, "RS384", iss=IDP, sub="app", scope=scope), MemoryJtiCache()
    )
    assert not principal.can(resource, permission)
    user = verify_token(
        external, sign(rsa_key, "RS384", iss=IDP, scope=f"user/{resource}.{permission}"), MemoryJtiCache()
    )
    assert user.can(resource, permission)


def test_unknown_kid_or_mismatched_algorithm_is_refused(external: Settings, rsa_key) -> None:
    with pytest.raises(TokenError, match="unknown"):
        verify_token(external, sign(rsa_key, "RS384", kid="k2"), MemoryJtiCache())
    with pytest.raises(TokenError, match="does not match"):
        verify_token(external, sign(rsa_key, "RS256"), MemoryJtiCache())


class _JWKSHandler(BaseHTTPRequestHandler):
    jwks: dict = {}
    hits = 0

    def do_GET(self) -> None:  # noqa: N802 -- http.server's naming
        type(self).hits += 1
        body = json.dumps(type(self).jwks).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def jwks_url() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _JWKSHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    server.shutdown()


def test_jwks_over_http_is_fetched_once_and_cached(tmp_path: Path, jwks_url: str) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    _JWKSHandler.jwks, _JWKSHandler.hits = {"keys": [jwk_of(key, "e1", "ES384")]}, 0
    settings = Settings(home=tmp_path, env="production", jwks_issuers=json.dumps({IDP: jwks_url}))
    cache = JWKSCache()
    for _ in range(3):
        token = jwt.encode(claims(iss=IDP, role="clinician"), key, algorithm="ES384", headers={"kid": "e1"})
        assert verify_token(settings, token, MemoryJtiCache(), jwks_cache=cache).role == "clinician"
    assert _JWKSHandler.hits == 1
