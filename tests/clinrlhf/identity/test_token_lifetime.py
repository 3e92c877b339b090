"""A bearer token may live at most `CLINRLHF_MAX_TOKEN_LIFETIME_SECONDS` (`exp - iat`), and its time
claims must be JSON numbers: a 100-year token, or one whose `exp` is the string "9999999999"
(which a lenient decoder turns into a number), is refused."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import jwt
import pytest

from clinrlhf.identity import MemoryJtiCache, TokenError, dev_signing_key, mint_token, verify_token
from clinrlhf.identity.keys import DEV_ISSUER, public_jwk
from clinrlhf.settings import Settings

CENTURY = 100 * 365 * 24 * 3600


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path, max_token_lifetime_seconds=24 * 3600)


def dev_token(settings: Settings, **overrides: object) -> str:
    key = dev_signing_key(settings)
    assert key is not None
    now = int(time.time())
    claims = {
        "iss": DEV_ISSUER,
        "sub": "dr-1",
        "aud": settings.token_audience,
        "iat": now,
        "exp": now + 3600,
        "jti": str(uuid.uuid4()),
        "role": "clinician",
    } | overrides
    kid = public_jwk(key.public_key())["kid"]
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": kid})


def test_a_token_within_the_lifetime_is_accepted(settings: Settings) -> None:
    principal = verify_token(settings, dev_token(settings), MemoryJtiCache())
    assert principal.sub == "dr-1"


@pytest.mark.parametrize(
    "overrides",
    [
        {"exp": int(time.time()) + CENTURY},
        {"exp": str(int(time.time()) + 3600)},
        {"iat": str(int(time.time()))},
        {"nbf": str(int(time.time()))},
        {"exp": True},
    ],
    ids=["100-year exp", "string exp", "string iat", "string nbf", "boolean exp"],
)
def test_long_lived_or_non_numeric_time_claims_are_refused(settings: Settings, overrides: dict) -> None:
    with pytest.raises(TokenError):
        verify_token(settings, dev_token(settings, **overrides), MemoryJtiCache())


def test_minting_cannot_exceed_the_lifetime(settings: Settings) -> None:
    with pytest.raises(ValueError, match="lifetime"):
        mint_token(settings, "clinician", "dr-1", ttl=CENTURY)
