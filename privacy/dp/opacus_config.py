"""The DP-SGD settings every Opacus-trained model shares (reward model, DPO): one dataclass, so the
same knob has the same name everywhere and old flat configs can be moved under it in one place."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from privacy.dp.accounting import ACCOUNTANTS, Accountant

NOISE_TAG = "clinrlhf.dp_noise"
"""MLflow tag every DP run carries: its NoiseSource. `clinrlhf promote` refuses any but "secure"."""

NoiseSource = Literal["secure", "reproducible"]
"""Where a run's noise and Poisson sampling come from (the MLflow tag `clinrlhf.dp_noise`):
"secure", a generator seeded from the OS's CSPRNG and never recorded; "reproducible", one seeded
from the public seed (debugging only: not a DP release)."""

# The flat names these settings had before they were grouped (RewardConfig, DPOConfig), and where
# each lives now; `nest_legacy_dp` moves them so JSON configs written for the old layout still load.
_LEGACY: dict[str, str] = {
    "dp": "enabled",
    "target_epsilon": "target_epsilon",
    "target_delta": "target_delta",
    "delta": "target_delta",
    "max_grad_norm": "max_grad_norm",
    "accountant": "accountant",
    "secure_rng": "secure_mode",
}


@dataclass(frozen=True)
class DPConfig:
    enabled: bool = True
    """False trains without clipping or noise: a non-private baseline, never for real data."""
    target_epsilon: float = 8.0
    """Privacy budget the noise is calibrated to spend over the whole run."""
    target_delta: float | None = None
    """δ; None means 1/(10·n) for n privacy units: strictly below 1/n, so releasing one unit's data
    in the clear is never (ε, δ)-DP. 1/n is the loosest value CONTRACT accepts."""
    max_grad_norm: float = 1.0
    """Clipping norm C of each privacy unit's gradient (the sensitivity of each noisy sum)."""
    accountant: Accountant = "prv"
    """Privacy accountant: "prv" (tight, reported as dp.epsilon) or "rdp"."""
    reproducible_noise: bool = False
    """Debugging only: not a DP release. Seeds the noise and the Poisson sampling from the public
    `seed`, so a run can be replayed bit for bit, and so can anyone holding its logged params. Such
    a run is tagged `clinrlhf.dp_noise=reproducible`, named "not a DP release" in the report, and
    refused by `clinrlhf promote`. Off (the default), the noise and sampling generator is seeded
    from the OS's CSPRNG and the seed is never logged or stored."""
    secure_mode: bool = False
    """Opacus' secure_mode: draw every noise and sampling bit from torchcsprng itself (not only the
    seed) and sum several Gaussians against floating-point attacks. Needs the torchcsprng package,
    which has no build for the torch used here."""

    def __post_init__(self) -> None:
        if self.accountant not in ACCOUNTANTS:
            raise ValueError(f"accountant must be one of {ACCOUNTANTS}, got {self.accountant!r}")
        if self.target_epsilon <= 0 or self.max_grad_norm <= 0:
            raise ValueError("target_epsilon and max_grad_norm must be positive")
        if self.target_delta is not None and not 0 < self.target_delta < 1:
            raise ValueError(f"target_delta must be in (0, 1), got {self.target_delta}")
        if self.reproducible_noise and self.secure_mode:
            raise ValueError("reproducible_noise and secure_mode contradict each other: choose one")

    @property
    def noise(self) -> NoiseSource:
        return "reproducible" if self.reproducible_noise else "secure"

    def delta_for(self, n: int) -> float:
        """The δ used for n privacy units."""
        return self.target_delta if self.target_delta is not None else 1.0 / (10 * max(n, 1))


def nest_legacy_dp(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """JSON overrides of a config that contains a DPConfig as `dp`, with the flat names of the old
    layout (`target_epsilon`, `delta`, `dp: false`, ...) moved under `dp`. Giving one setting both
    ways is refused by name."""
    out = {k: v for k, v in overrides.items() if k not in _LEGACY or (k == "dp" and isinstance(v, dict))}
    nested: dict[str, Any] = dict(out.get("dp", {}))
    for old, new in _LEGACY.items():
        if old in overrides and not (old == "dp" and isinstance(overrides[old], dict)):
            if new in nested:
                raise ValueError(f"{old} (old layout) and dp.{new} both given; keep dp.{new}")
            nested[new] = overrides[old]
    if nested:
        out["dp"] = nested
    return out
