"""Privacy units for reward training: which pairs belong to one judgment, clinician or patient.

With the "pair" unit every encoded row is its own DP sample. With "judgment" (one clinician's
judgment of one card: every pair one review yields, whatever its kinds), "clinician" or "patient",
the rows of one unit form one sample (privacy.dp.units): they are bounded in number, sampled
together, and the sum of their gradients is clipped as one. This module only groups rows; the
mechanism lives in clinrlhf.reward.trainer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from clinrlhf.reward.pairs import PreferencePair
from privacy.dp import PrivacyUnit, bound_contributions


def unit_of(pair: PreferencePair, unit: PrivacyUnit) -> str:
    """The key of the unit a pair belongs to under `unit` (for "pair", none: an error)."""
    if unit == "judgment":
        # A pair made without a card (not from a Judgment) is all that is known of its judgment.
        detail = (pair.card,) if pair.card else (pair.patient, pair.prompt, pair.chosen, pair.rejected)
        return repr((pair.clinician, *detail))
    if unit == "clinician":
        return pair.clinician
    if unit == "patient":
        return pair.patient
    raise ValueError(
        f"a pair is its own unit under {unit!r}; 'judgment', 'clinician' and 'patient' group pairs"
    )


def bound_pairs(
    pairs: Sequence[PreferencePair], unit: PrivacyUnit, max_per_unit: int, seed: int
) -> list[PreferencePair]:
    """The pairs kept when each judgment, clinician or patient contributes at most `max_per_unit` (input
    order kept; a seeded draw per unit picks which). Under "pair" every pair is kept."""
    if unit == "pair":
        return list(pairs)
    kept = bound_contributions([unit_of(p, unit) for p in pairs], max_per_unit, seed)
    return [pairs[i] for i in kept]


def count_units(pairs: Sequence[PreferencePair], unit: PrivacyUnit) -> int:
    """n, the number of privacy units in the data: it sets δ = 1/(10·n) and the sample rate."""
    return len(pairs) if unit == "pair" else len({unit_of(p, unit) for p in pairs})


@dataclass(frozen=True)
class UnitRows:
    """The encoded rows of each unit; unit i is the i-th pseudonym in sorted order, so the index
    does not depend on the order the pairs came in."""

    rows: tuple[torch.Tensor, ...]
    """rows[i]: indices (into the encoded pairs) of unit i's rows, ascending."""

    @classmethod
    def of(cls, pairs: Sequence[PreferencePair], unit: PrivacyUnit) -> UnitRows:
        grouped: dict[str, list[int]] = {}
        for index, pair in enumerate(pairs):
            grouped.setdefault(unit_of(pair, unit), []).append(index)
        return cls(tuple(torch.tensor(grouped[name], dtype=torch.long) for name in sorted(grouped)))

    def __len__(self) -> int:
        return len(self.rows)

    def gather(self, unit_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """For a batch of unit ids: (R,) the rows of every unit taken, and (R,) the position in
        `unit_ids` of the unit that owns each row (what per-unit gradient sums are indexed by)."""
        chosen = [self.rows[int(u)] for u in unit_ids]
        if not chosen:
            empty = torch.zeros(0, dtype=torch.long)
            return empty, empty
        owner = torch.repeat_interleave(torch.arange(len(chosen)), torch.tensor([len(r) for r in chosen]))
        return torch.cat(chosen), owner
