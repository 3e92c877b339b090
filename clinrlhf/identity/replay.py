"""Replay protection: remember each token id (`jti`) until its token expires.

CDS Hooks requires every request's JWT to carry a fresh `jti` "used to protect against replay
attacks". `JtiCache` is the seam: this in-process implementation serves one worker (tests, scripts);
the service uses `clinrlhf.store.replay.DatabaseJtiCache`, which every worker and replica shares.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class JtiCache(Protocol):
    def first_use(self, issuer: str, jti: str, expires_at: float) -> bool:
        """Record the token id; True the first time it is seen before `expires_at`, False after."""
        ...

    def seen(self, issuer: str, jti: str) -> bool:
        """Whether the id is recorded and its token has not expired; records nothing."""
        ...


class MemoryJtiCache:
    """A thread-safe in-memory `JtiCache` that forgets ids once their token has expired."""

    def __init__(self, max_entries: int = 1_000_000) -> None:
        self._seen: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        self._max = max_entries

    def first_use(self, issuer: str, jti: str, expires_at: float) -> bool:
        now = time.time()
        with self._lock:
            if len(self._seen) >= self._max:
                self._purge(now)
                if len(self._seen) >= self._max:
                    return False  # full of live ids: refuse new tokens rather than forget old ones
            known = self._seen.get((issuer, jti))
            if known is not None and known > now:
                return False
            self._seen[(issuer, jti)] = expires_at
            return True

    def seen(self, issuer: str, jti: str) -> bool:
        with self._lock:
            known = self._seen.get((issuer, jti))
        return known is not None and known > time.time()

    def _purge(self, now: float) -> None:
        self._seen = {k: exp for k, exp in self._seen.items() if exp > now}

    def __len__(self) -> int:
        return len(self._seen)
