"""Verified bearer tokens, remembered until they expire.

A development token (`clinrlhf token`) serves many requests: a clinician's session, an EHR's
integration. Verifying its ES256 signature, re-reading the signing key and decoding its claims on
every request is most of the cost of a small request. A token that passed verification is kept, with
the audiences it was checked against, until its `exp`; a one-time token (`jti_once`, replay-protected)
is never kept, or a replay would be served from here. Tokens from external issuers are not kept
either: their one-time rules are decided per issuer, and CDS clients sign a fresh one per request.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Collection, Mapping
from typing import Any

from clinrlhf.identity import DEV_ISSUER, Principal

_Key = tuple[str, tuple[str, ...]]


def reusable(principal: Principal, claims: Mapping[str, Any]) -> bool:
    return principal.issuer == DEV_ISSUER and claims.get("jti_once") is not True


class VerifiedTokens:
    """A bounded LRU map (token, audiences) -> (principal, expiry), safe across threads."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._entries: OrderedDict[_Key, tuple[Principal, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, token: str, audiences: Collection[str], now: float | None = None) -> Principal | None:
        key = (token, tuple(audiences))
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            if found[1] <= (time.time() if now is None else now):
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return found[0]

    def put(self, token: str, audiences: Collection[str], principal: Principal, expires: float) -> None:
        with self._lock:
            self._entries[(token, tuple(audiences))] = (principal, expires)
            self._entries.move_to_end((token, tuple(audiences)))
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
