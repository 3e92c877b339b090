"""What a DP training run guarantees, stated once, in numbers and in words."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PrivacyUnit = Literal["judgment", "pair", "clinician", "patient"]
PRIVACY_UNITS: tuple[PrivacyUnit, ...] = ("judgment", "pair", "clinician", "patient")

_UNIT_WORDS = {
    "judgment": "one clinician's judgment of one card (every preference pair that one review yields)",
    "pair": "one preference pair (one clinician's judgment that one response beats another for one case)",
    "clinician": "all the judgments of one clinician",
    "patient": "all the judgments about one patient",
}


@dataclass(frozen=True)
class PrivacyGuarantee:
    epsilon: float
    """Privacy loss bound; smaller is more private."""
    delta: float
    """Additive slack of the guarantee (informally, the chance that the epsilon bound fails)."""
    unit: PrivacyUnit
    """What is protected: the neighbouring datasets differ by adding or removing one of these."""
    accountant: str
    """How epsilon was computed ("prv" or "rdp")."""
    noise_multiplier: float
    """Gaussian noise standard deviation, in units of the clipping norm."""
    sample_rate: float
    """Poisson sampling probability of each unit in each step."""
    steps: int
    """Noisy gradient steps taken."""
    max_pairs_per_unit: int | None = None
    """Contribution bound of a clinician or patient unit: at most this many of the unit's pairs were
    used (None for the pair unit, where each unit is one pair)."""

    def describe(self) -> str:
        text = (
            f"The trained model is ({self.epsilon:.2f}, {self.delta:.2g})-differentially private with respect "
            f"to adding or removing {_UNIT_WORDS[self.unit]}: DP-SGD with Poisson sampling "
            f"(rate {self.sample_rate:.4g}), per-{self.unit} gradient clipping and Gaussian noise "
            f"(multiplier {self.noise_multiplier:.3g}) over {self.steps} steps, accounted with the "
            f"{self.accountant.upper()} accountant. It holds for everything derived from the model "
            "alone, but not for data used outside its training: held-out evaluation sets, and the "
            "prompts a policy is aligned on, which PPO reads in the clear (de-identified, not DP)."
        )
        if self.max_pairs_per_unit is not None:
            text += (
                f" Each {self.unit}'s contribution was bounded before training: at most "
                f"{self.max_pairs_per_unit} of their pairs were used, and the sum of their gradients "
                "was clipped as one sample."
            )
        if self.unit == "pair":
            # Group privacy (Dwork & Roth, 2014, Theorem 2.2 and its (ε, δ) form): k units cost about k·ε.
            text += (
                " A judgment that yields k pairs, or a patient or clinician behind k pairs, is protected "
                "only as a group: roughly (k·ε)-DP."
            )
        return text
