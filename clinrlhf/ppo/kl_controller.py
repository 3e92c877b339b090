"""The KL coefficient beta: fixed, or adapted to hold the policy near a target KL from the reference."""

from __future__ import annotations

ERROR_CLIP = 0.2  # Ziegler et al. (2019) clip the proportional error to +-0.2.


def adaptive_kl_coef(kl_coef: float, kl: float, target: float, n_steps: int, horizon: float) -> float:
    """One update of the proportional controller of Ziegler et al. (2019, sec. 2.2,
    https://arxiv.org/abs/1909.08593): e = clip(KL / target - 1, -0.2, 0.2) and
    beta <- beta * (1 + e * n_steps / horizon), where n_steps counts the episodes since the last update."""
    error = min(max(kl / target - 1.0, -ERROR_CLIP), ERROR_CLIP)
    return kl_coef * (1.0 + error * n_steps / horizon)


class AdaptiveKLController:
    """Raises beta while the measured KL is above target and lowers it while below."""

    def __init__(self, init_kl_coef: float, target: float, horizon: float) -> None:
        if target <= 0 or horizon <= 0:
            raise ValueError("the KL target and horizon must be positive")
        self.value, self.target, self.horizon = init_kl_coef, target, horizon

    def update(self, kl: float, n_steps: int) -> float:
        self.value = adaptive_kl_coef(self.value, kl, self.target, n_steps, self.horizon)
        return self.value

    def state_dict(self) -> dict[str, float]:
        return {"value": self.value, "target": self.target, "horizon": self.horizon}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.value, self.target, self.horizon = state["value"], state["target"], state["horizon"]


class FixedKLController:
    """A constant beta, as in Stiennon et al. (2020)."""

    def __init__(self, kl_coef: float) -> None:
        self.value = kl_coef

    def update(self, kl: float, n_steps: int) -> float:
        return self.value

    def state_dict(self) -> dict[str, float]:
        return {"value": self.value}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.value = state["value"]


KLController = AdaptiveKLController | FixedKLController
