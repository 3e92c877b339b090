"""The development signing key: an ES256 (P-256) key pair kept in ``$CLINRLHF_HOME/keys``.

`clinrlhf token` signs with it and `clinrlhf serve` verifies with it, so both work under the same
home with no set-up. It is generated on first use in development only; production never generates
one, and verifies tokens from its identity providers' JWKS instead.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from clinrlhf.settings import MissingSecretError, Settings

DEV_ISSUER = "clinrlhf-dev"
DEV_ALGORITHM = "ES256"
_KEY_FILE = "token_signing_es256.pem"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_jwk(key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    """The public key as a JWK (RFC 7517), with its RFC 7638 thumbprint as `kid`."""
    numbers = key.public_numbers()
    size = (key.curve.key_size + 7) // 8
    jwk = {
        "crv": "P-256",
        "kty": "EC",
        "x": _b64(numbers.x.to_bytes(size, "big")),
        "y": _b64(numbers.y.to_bytes(size, "big")),
    }
    # RFC 7638: SHA-256 over the required members, lexicographically ordered, no whitespace.
    thumbprint = _b64(
        hashlib.sha256(json.dumps(jwk, sort_keys=True, separators=(",", ":")).encode()).digest()
    )
    return jwk | {"kid": thumbprint, "alg": DEV_ALGORITHM, "use": "sig"}


def _generate(path: Path) -> None:
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".key-")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        os.link(tmp, path)  # atomic, and fails if another process created the key first
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)


@lru_cache(maxsize=8)
def _load(path: str, _mtime_ns: int) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("the development signing key is not an EC key")
    return key


def dev_signing_key(settings: Settings, *, create: bool = True) -> ec.EllipticCurvePrivateKey | None:
    """The development key pair, generated on first use in development. None when absent and
    `create` is False. In production there is no development key: MissingSecretError."""
    if settings.env == "production":
        raise MissingSecretError("development tokens are disabled in production; use the identity provider")
    path = settings.keys_dir / _KEY_FILE
    if not path.exists():
        if not create:
            return None
        _generate(path)
    return _load(str(path), path.stat().st_mtime_ns)


def dev_jwks(settings: Settings) -> dict[str, Any]:
    """The JWK Set holding the development public key (empty in production)."""
    if settings.env == "production":
        return {"keys": []}
    key = dev_signing_key(settings)
    return {"keys": [public_jwk(key.public_key())]} if key else {"keys": []}
