"""Everything a DPO run needs, with defaults sized for the tiny policy on 2 CPU cores."""

from __future__ import annotations

from dataclasses import dataclass

from privacy.dp import Accountant


@dataclass(frozen=True)
class DPOConfig:
    beta: float = 0.1
    """Strength of the implicit KL penalty toward the reference (Rafailov et al., 2023, eq. 7):
    small β lets the policy move far from the SFT policy, large β keeps it close."""
    epochs: int = 2
    """Passes over the preference pairs."""
    batch_size: int = 64
    """Pairs per optimizer step (the expected Poisson batch under DP)."""
    learning_rate: float = 1e-3
    """AdamW step size."""
    seed: int = 0
    """Seeds shuffling, Poisson sampling and DP noise."""
    dp: bool = False
    """Train with DP-SGD (Opacus), one preference pair = one sample."""
    target_epsilon: float = 8.0
    """ε the noise is calibrated to reach after all epochs (DP only)."""
    delta: float | None = None
    """δ of the guarantee; None means 1/(10 n) for n pairs, comfortably below 1/n."""
    max_grad_norm: float = 1.0
    """Per-pair gradient clipping norm C (DP only)."""
    accountant: Accountant = "prv"
    """Privacy accountant, as for the reward model (privacy.dp.accounting)."""

    def delta_for(self, pairs: int) -> float:
        return self.delta if self.delta is not None else 1.0 / (10.0 * max(pairs, 1))
