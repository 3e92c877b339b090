"""Everything a DPO run needs, with defaults sized for the tiny policy on 2 CPU cores."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from privacy.dp.opacus_config import DPConfig, nest_legacy_dp


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
    """Public seed: initialisation and data order. Never the DP noise or Poisson sampling (a
    CSPRNG-seeded generator), unless `dp.reproducible_noise` (debugging only: not a DP release)."""
    dp: DPConfig = field(default_factory=lambda: DPConfig(enabled=False))
    """DP-SGD through Opacus, one preference pair = one sample (off by default here): the same
    settings as the reward model's (privacy.dp.opacus_config)."""

    def delta_for(self, pairs: int) -> float:
        return self.dp.delta_for(pairs)

    @staticmethod
    def upgrade_settings(overrides: Mapping[str, Any]) -> dict[str, Any]:
        """JSON overrides in the old flat layout (`dp: true`, `delta`, ...) moved under `dp`."""
        return nest_legacy_dp(overrides)
