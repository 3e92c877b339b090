"""Trusted external issuers and their JSON Web Key Sets (`CLINRLHF_JWKS_ISSUERS`).

The setting is a JSON object keyed by issuer (`iss`). Each value is either the location of the
issuer's JWKS (a file path or an http(s) URL), or an object that also fixes the issuer's role:

    {"https://idp.hospital.example": "https://idp.hospital.example/.well-known/jwks.json",
     "https://ehr.hospital.example": {"jwks": "/etc/clinrlhf/ehr-jwks.json", "role": "cds-client"}}

Key sets are only ever taken from this configuration; a token's own `jku` header is ignored, so a
token cannot point the service at keys of its choosing.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from clinrlhf.identity.roles import ROLES

JWKS_TTL_SECONDS = 300.0
MIN_REFRESH_SECONDS = (
    30.0  # an unknown `kid` refetches at most this often, so junk tokens cannot flood the IdP
)
HTTP_TIMEOUT_SECONDS = 5.0


class IssuerConfigError(ValueError):
    """CLINRLHF_JWKS_ISSUERS is malformed."""


@dataclass(frozen=True)
class Issuer:
    name: str
    jwks: str  # path or http(s) URL
    role: str | None = None  # fixed role for every token of this issuer, e.g. an EHR's "cds-client"


def parse_issuers(raw: str | None) -> dict[str, Issuer]:
    if not raw:
        return {}
    try:
        config = json.loads(raw)
    except json.JSONDecodeError:
        raise IssuerConfigError("CLINRLHF_JWKS_ISSUERS is not valid JSON") from None
    if not isinstance(config, Mapping):
        raise IssuerConfigError("CLINRLHF_JWKS_ISSUERS must be a JSON object {issuer: jwks}")
    issuers = {}
    for name, value in config.items():
        spec = {"jwks": value} if isinstance(value, str) else value
        if not isinstance(spec, Mapping) or not isinstance(spec.get("jwks"), str):
            raise IssuerConfigError(f"issuer {name!r} needs a JWKS path or URL")
        role = spec.get("role")
        if role is not None and role not in ROLES:
            raise IssuerConfigError(f"issuer {name!r} has an unknown role")
        issuers[name] = Issuer(name=name, jwks=spec["jwks"], role=role)
    return issuers


class JWKSCache:
    """Fetches key sets from paths or URLs, caching each for `ttl` seconds."""

    def __init__(self, ttl: float = JWKS_TTL_SECONDS, client: httpx.Client | None = None) -> None:
        self.ttl = ttl
        self._client = client
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def get(self, location: str, *, refresh: bool = False) -> dict[str, Any]:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(location)
        if (
            cached
            and (now - cached[0] < self.ttl)
            and not (refresh and now - cached[0] >= MIN_REFRESH_SECONDS)
        ):
            return cached[1]
        jwks = self._fetch(location)
        with self._lock:
            self._cache[location] = (now, jwks)
        return jwks

    def _fetch(self, location: str) -> dict[str, Any]:
        if location.startswith(("https://", "http://")):
            client = self._client or httpx.Client(timeout=HTTP_TIMEOUT_SECONDS)
            try:
                response = client.get(location, headers={"Accept": "application/json"})
                response.raise_for_status()
                data = response.json()
            finally:
                if self._client is None:
                    client.close()
        else:
            data = json.loads(Path(location).read_text())
        if not isinstance(data, Mapping) or not isinstance(data.get("keys"), list):
            raise ValueError("not a JWK Set")
        return dict(data)
