"""The one place that reads the environment.

Everything else receives a :class:`Settings` (or the values it needs) as an argument, so tests can
build isolated configurations without touching ``os.environ``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger(__name__)
# Shortest explicit secret accepted in production: 32 characters (128 bits as hex, the least an HMAC
# key for pseudonyms should have; deploy/compose/.env.example asks for 64 hex characters).
MIN_SECRET_CHARS = 32
_WARNED: set[Path] = set()


class MissingSecretError(RuntimeError):
    """A secret is absent, or unusable, in production, where no default may stand in for it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLINRLHF_", extra="ignore")

    home: Path = Field(default=Path(".clinrlhf"), description="Folder holding all local state.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; SQLite under home by default."
    )
    env: Literal["development", "production"] = Field(
        default="development",
        description="In production no secret is ever generated: each must be supplied explicitly.",
    )
    deid_key: SecretStr | None = Field(default=None, description="HMAC key for pseudonyms and date shifts.")
    audit_key: SecretStr | None = Field(
        default=None,
        description="HMAC key of the audit trail's chain; keep it outside the database and the home.",
    )
    audit_anchor: Path | None = Field(
        default=None,
        description="File where `clinrlhf audit verify` remembers the heads it saw (the witness); put it "
        "where the database's writers cannot rewrite it. home/audit/witness.json by default.",
    )
    max_body_bytes: int = Field(default=1_000_000, description="Largest request body the API accepts.")
    jwks_issuers: str | None = Field(
        default=None,
        description="JSON object {issuer: jwks_url_or_path} of trusted identity providers (production).",
    )
    policy: Path | None = Field(
        default=None, description="Policy directory to serve; latest aligned if unset."
    )
    token_audience: str = Field(default="clinrlhf", description="`aud` every bearer token must carry.")
    token: SecretStr | None = Field(
        default=None,
        description="The caller's own bearer token for CLI commands that record who acted (governance "
        "commands, training), when `--token` is not given.",
    )
    public_base_url: str | None = Field(
        default=None,
        description="The service's public URL (https://host[:port]). CDS clients may put this URL plus the "
        "endpoint's path in `aud`; it also names the service in redirects. Never read from a request.",
    )
    max_token_lifetime_seconds: int = Field(
        default=24 * 3600, ge=60, description="Longest `exp - iat` a bearer token may have."
    )
    fhir_servers: str | None = Field(
        default=None,
        description='JSON object {cds_client_id: ["https://ehr.example/fhir", ...]}: the only FHIR '
        "servers missing prefetch is fetched from, per client (the token's `sub`). None: no fetching.",
    )
    cds_client_practitioners: str | None = Field(
        default=None,
        description='JSON object {cds_client_id: ["Practitioner/ward-a-*", ...]}: the practitioners (a '
        "context.userId, glob patterns allowed) each CDS client (the token's `sub`) may speak for; any "
        "other userId is refused with 403. None: unrestricted in development, no client may assert a "
        "userId in production.",
    )
    fhir_fetch_deadline_seconds: float = Field(
        default=10.0, gt=0, description="Overall deadline of one request's FHIR fetches, all pages."
    )
    fhir_fetches_in_flight: int = Field(
        default=4, ge=1, description="FHIR fetches one process runs at once; past that, 503 at once."
    )
    max_header_bytes: int = Field(
        default=32_768, ge=1024, description="Largest request line plus headers `clinrlhf serve` accepts."
    )
    trusted_proxies: str | None = Field(
        default=None,
        description="Comma-separated addresses of TLS-terminating proxies whose X-Forwarded-Proto/-For "
        "are believed. None: forwarded headers are ignored.",
    )
    # 24: three retrains at the pipeline's default ε = 8 each compose to about 21 under the filter.
    privacy_budget_epsilon: float = Field(
        default=24.0,
        gt=0,
        description="Most ε this deployment's DP runs may spend on one privacy unit, over every snapshot "
        "and retrain (a Rényi filter at CLINRLHF_PRIVACY_DELTA); a run that would pass it is refused "
        "before its first step.",
    )
    privacy_delta: float = Field(
        default=1e-6,
        gt=0,
        lt=1,
        description="The deployment's δ, fixed in the privacy ledger by its first run (a later value is "
        "refused); a run on n privacy units is refused when δ > 1/n.",
    )
    review_overlap: int = Field(
        default=3, ge=1, description="How many clinicians review each case on the review page (k)."
    )
    # A reviewer makes a request every few seconds (a page load is two: the page, then its submit);
    # the limit is for runaway scripts. Counted per client, shared by every worker and replica.
    review_rate_per_second: float = Field(
        default=2.0,
        description="Requests a second one client may make to the review page on average, past its burst.",
    )
    review_rate_burst: int = Field(
        default=60, description="Requests one client may make to the review page at once (at least 1)."
    )

    @field_validator("cds_client_practitioners")
    @classmethod
    def _practitioner_grants(cls, value: str | None) -> str | None:
        if value is not None:
            grants = json.loads(value)
            if not isinstance(grants, dict) or not all(
                isinstance(v, list) and all(isinstance(p, str) for p in v) for v in grants.values()
            ):
                raise ValueError(
                    "CLINRLHF_CDS_CLIENT_PRACTITIONERS must be a JSON object mapping each client id to a "
                    "list of practitioner references or glob patterns"
                )
        return value

    @field_validator("review_rate_per_second")
    @classmethod
    def _positive_rate(cls, value: float) -> float:
        if not (math.isfinite(value) and value > 0):
            raise ValueError(
                f"CLINRLHF_REVIEW_RATE_PER_SECOND must be a positive, finite number of requests a "
                f"second (got {value})"
            )
        return value

    @field_validator("review_rate_burst")
    @classmethod
    def _positive_burst(cls, value: int) -> int:
        if value < 1:
            raise ValueError(f"CLINRLHF_REVIEW_RATE_BURST must be at least 1 request (got {value})")
        return value

    @cached_property
    def resolved_home(self) -> Path:
        home = self.home.expanduser().resolve()
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        home.chmod(0o700)  # the database, keys, MLflow's store, logs and reports: the owner's only
        return home

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.resolved_home / 'clinrlhf.db'}"

    @property
    def mlflow_tracking_uri(self) -> str:
        # MLFLOW_TRACKING_URI is MLflow's own variable, so it keeps its own name.
        return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{self.resolved_home / 'mlflow.db'}"

    @property
    def mlflow_artifact_location(self) -> str:
        return (self.resolved_home / "mlartifacts").as_uri()

    @property
    def keys_dir(self) -> Path:
        path = self.resolved_home / "keys"
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return path

    def secret(self, name: str, explicit: SecretStr | None = None, nbytes: int = 32) -> bytes:
        """Return a secret, generating it into ``home/keys`` on first use in development only.

        In production the secret must be explicit and at least MIN_SECRET_CHARS long; a key file
        in ``home/keys`` was generated by a development run and is refused, not used silently."""
        variable = f"CLINRLHF_{name.upper()}"
        if explicit is not None:
            value = explicit.get_secret_value()
            if self.env == "production" and (len(value) < MIN_SECRET_CHARS or "CHANGE_ME" in value):
                raise MissingSecretError(
                    f"{variable} is too weak for production: use at least {MIN_SECRET_CHARS} random "
                    "characters (e.g. `openssl rand -hex 32`)"
                )
            return value.encode()
        path = self.keys_dir / f"{name}.key"
        if self.env == "production":
            found = " (the key file in home/keys was generated in development and is not used)"
            raise MissingSecretError(
                f"secret {name!r} must be configured in production ({variable})"
                + (found if path.exists() else "")
            )
        if not path.exists():
            path.touch(mode=0o600)
            path.write_bytes(secrets.token_hex(nbytes).encode())
        if path not in _WARNED:  # once per key and process, not once per use
            _WARNED.add(path)
            log.warning("%s: using the key generated for development in %s; set %s", name, path, variable)
        return path.read_bytes()

    @property
    def deid_secret(self) -> bytes:
        return self.secret("deid_key", self.deid_key)

    @property
    def audit_secret(self) -> bytes:
        return self.secret("audit_key", self.audit_key)

    @property
    def audit_anchor_path(self) -> Path:
        return self.audit_anchor or self.resolved_home / "audit" / "witness.json"


def load_settings(**overrides: object) -> Settings:
    """Read the environment once; keyword overrides win (used by the CLI and tests)."""
    return Settings(**overrides)  # type: ignore[arg-type]
