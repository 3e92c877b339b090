"""Verified tokens are remembered until they expire, but a one-time token is never served twice."""

from __future__ import annotations

import httpx

from clinrlhf.identity import DEV_ISSUER, Principal, mint_token
from clinrlhf.settings import Settings
from services.token_cache import VerifiedTokens, reusable

DOCTOR = Principal(sub="dr", role="clinician", scopes=frozenset({"openid"}), issuer=DEV_ISSUER)


def test_a_remembered_token_is_forgotten_when_it_expires() -> None:
    cache = VerifiedTokens()
    cache.put("t", ["aud"], DOCTOR, expires=100.0)
    assert cache.get("t", ["aud"], now=99.0) == DOCTOR
    assert cache.get("t", ["other-aud"], now=99.0) is None  # checked against other audiences
    assert cache.get("t", ["aud"], now=100.0) is None


def test_the_cache_is_bounded() -> None:
    cache = VerifiedTokens(size=2)
    for token in ("a", "b", "c"):
        cache.put(token, [], DOCTOR, expires=1e12)
    assert cache.get("a", []) is None and cache.get("c", []) == DOCTOR


def test_only_reusable_development_tokens_are_kept() -> None:
    assert reusable(DOCTOR, {"jti": "x"})
    assert not reusable(DOCTOR, {"jti": "x", "jti_once": True})
    external = Principal(sub="ehr", role="cds-client", scopes=frozenset(), issuer="https://idp.example")
    assert not reusable(external, {"jti": "x"})


def test_a_one_time_token_is_refused_the_second_time(client: httpx.Client, api_settings: Settings) -> None:
    once = mint_token(api_settings, role="clinician", sub="dr-once", jti_once=True)
    headers = {"Authorization": f"Bearer {once}"}
    assert client.get("/fhir/metadata", headers=headers).status_code == 200
    again = client.get("/fhir/metadata", headers=headers)
    assert again.status_code == 401 and "replay" in again.json()["issue"][0]["diagnostics"]
    reused = {"Authorization": f"Bearer {mint_token(api_settings, role='clinician', sub='dr-many')}"}
    assert [client.get("/fhir/metadata", headers=reused).status_code for _ in range(3)] == [200] * 3
