"""Each clinician's reliability, learned with the reward model: how often their labels are flipped.

Clinicians disagree with the truth at different rates, and a few disagree on purpose. Treating
every label as equally right lets the noisiest raters set the reward. Instead, each rater r gets
a flip probability f_r, and a label "chosen ≻ rejected" from r is modelled as

    P(label) = (1 - f_r)·σ(Δ) + f_r·σ(-Δ),   Δ = r_chosen - r_rejected

(a Bradley–Terry model under per-annotator label noise; Raykar et al., 2010, "Learning From
Crowds", https://jmlr.org/papers/v11/raykar10a.html). A reliable rater learns f_r ≈ 0; a rater who
answers at random learns f_r ≈ 0.5 and stops moving the reward; an adversary learns f_r > 0.5, so
their labels count reversed. The rewards themselves stay rater-free: PPO uses r, never f.

Why hash buckets rather than one slot per clinician seen: under DP-SGD the model's shape must not
depend on the data (one pair more or less could add or remove a rater). A fixed table indexed by a
keyed hash of the (already pseudonymous) clinician id keeps the architecture data-independent; the
flip logits are ordinary parameters, clipped and noised with the rest, so the privacy guarantee
covers them too.
"""

from __future__ import annotations

import hashlib
import math

import torch
from torch import nn


def rater_bucket(clinician: str, buckets: int) -> int:
    """A stable bucket for a clinician pseudonym (Python's hash() is salted per process)."""
    digest = hashlib.sha256(clinician.encode()).digest()
    return int.from_bytes(digest[:8], "big") % buckets


class RaterFlipLogits(nn.Module):
    """logit(f_r) for every rater bucket, starting every rater at the same prior flip rate."""

    def __init__(self, buckets: int, initial_flip: float) -> None:
        super().__init__()
        if not 0.0 < initial_flip < 0.5:
            raise ValueError(f"initial_flip must be in (0, 0.5), got {initial_flip}")
        self.logits = nn.Embedding(buckets, 1)
        nn.init.constant_(self.logits.weight, math.log(initial_flip / (1.0 - initial_flip)))

    def forward(self, raters: torch.Tensor) -> torch.Tensor:
        """(B,) bucket ids -> (B,) flip logits."""
        return self.logits(raters).squeeze(-1)

    def flip_rates(self, clinicians: list[str]) -> dict[str, float]:
        """The learned flip probability of each named clinician."""
        ids = torch.tensor(
            [rater_bucket(c, self.logits.num_embeddings) for c in clinicians], dtype=torch.long
        )
        with torch.no_grad():
            rates = torch.sigmoid(self(ids)).tolist()
        return dict(zip(clinicians, rates, strict=True))
