"""Keyed transformations: HMAC-SHA256 pseudonyms and per-patient date shifts.

Both are deterministic under one key (the same patient always maps to the same pseudonym and shift,
across runs) and unlinkable without it.
"""

from __future__ import annotations

import hashlib
import hmac

MAX_SHIFT_DAYS = 365


def pseudonym(key: bytes, value: str, *, namespace: str = "id") -> str:
    """HMAC-SHA256 of `value`, hex encoded. The namespace keeps ids of different kinds unlinkable."""
    return hmac.new(key, f"{namespace}\x00{value}".encode(), hashlib.sha256).hexdigest()


def date_shift_days(key: bytes, patient_id: str) -> int:
    """A per-patient shift in [-365, 365] days, non-zero, derived from the key and the patient."""
    digest = hmac.new(key, f"dateshift\x00{patient_id}".encode(), hashlib.sha256).digest()
    magnitude = int.from_bytes(digest[:4], "big") % MAX_SHIFT_DAYS + 1
    return magnitude if digest[4] & 1 else -magnitude
