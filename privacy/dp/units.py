"""User-level DP-SGD: the privacy unit is a person (a clinician, a patient), not one row.

The standard recipe (McMahan et al., 2018, https://arxiv.org/abs/1710.06963, "DP-FedSGD"; Amin et
al., 2019, https://arxiv.org/abs/1905.03871 for bounding contributions), in three pure steps:

1. *Bound contributions*: keep at most k rows of each unit, chosen by a seeded draw that depends on
   the unit's own rows only, so adding or removing one unit leaves every other unit's rows as they
   were (the neighbouring datasets stay neighbours after bounding).
2. *Sample units*: each step takes every unit independently with probability q (Poisson sampling
   over units) and all of the kept rows of each unit taken.
3. *Clip per unit*: the sum of a unit's row gradients is clipped to norm C as one sample, so one
   unit moves the noisy sum by at most C whatever its number of rows.

The accounting is then exactly that of ordinary DP-SGD with n = number of units and rate q: the
Poisson-subsampled Gaussian mechanism does not care what a "sample" is, only that each one's
contribution is bounded by C and that each is sampled independently.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Sequence

import torch


def bound_contributions(units: Sequence[str], max_per_unit: int, seed: int) -> list[int]:
    """Indices of the rows kept (ascending) when each unit keeps at most `max_per_unit` of its rows.

    A unit with more rows keeps a uniform random subset, drawn from a generator seeded by (seed,
    unit) alone: the choice for one unit never depends on which other units are present.
    """
    if max_per_unit < 1:
        raise ValueError(f"max_per_unit must be at least 1, got {max_per_unit}")
    rows: dict[str, list[int]] = {}
    for index, unit in enumerate(units):
        rows.setdefault(unit, []).append(index)
    kept: list[int] = []
    for unit, indices in rows.items():
        if len(indices) > max_per_unit:
            indices = sorted(_unit_rng(unit, seed).sample(indices, max_per_unit))
        kept.extend(indices)
    return sorted(kept)


def _unit_rng(unit: str, seed: int) -> random.Random:
    digest = hashlib.sha256(f"{seed}\x00{unit}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def unit_sample_rate(n_units: int, units_per_batch: int) -> float:
    """q = 1 / ceil(n / b): b expected units per batch, and one epoch is 1/q steps, as Opacus'
    DPDataLoader does for rows (so a data loader over units gets exactly this rate)."""
    if n_units < 1 or units_per_batch < 1:
        raise ValueError(f"need at least one unit and one unit per batch, got {n_units}, {units_per_batch}")
    return 1.0 / math.ceil(n_units / units_per_batch)


def sum_by_unit(
    per_row: torch.Tensor, owner: torch.Tensor, n_units: int, out: torch.Tensor | None = None
) -> torch.Tensor:
    """(R, ...) per-row tensors -> (n_units, ...) sums, row r adding into unit owner[r]; added into
    `out` in place when given (sums carried over passes), so no second buffer is allocated."""
    if out is None:
        out = torch.zeros((n_units, *per_row.shape[1:]), dtype=per_row.dtype, device=per_row.device)
    return out.index_add_(0, owner.to(per_row.device), per_row)
