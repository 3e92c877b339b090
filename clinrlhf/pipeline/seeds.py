"""One pipeline seed, many independent streams: each consumer's seed derived from it by name.

A hash, not `seed + k`: two pipeline seeds never hand one stage's stream to another stage or cohort
(3·seed + i style offsets collide as soon as the offsets outgrow the stride)."""

from __future__ import annotations

import hashlib

SEED_BITS = 31
"""Derived seeds fit every generator the loop seeds (random, torch, numpy's 32-bit legacy seed)."""


def derive_seed(seed: int, stream: str) -> int:
    """The seed of `stream` (e.g. "cohort.test", "ppo") in the pipeline run seeded `seed`:
    deterministic, and unrelated between streams and between pipeline seeds."""
    digest = hashlib.sha256(f"clinrlhf-seed\x00{stream}\x00{seed}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 2**SEED_BITS
