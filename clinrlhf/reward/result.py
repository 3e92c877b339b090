"""What reward training returns, and the params and metrics it logs (CONTRACT, MLflow section)."""

from __future__ import annotations

from dataclasses import dataclass, field

from clinrlhf.reward.config import RewardConfig
from clinrlhf.reward.model import ScalarHeadModel
from privacy.dp import PrivacyGuarantee, PrivacyUnit

CONTRACT_PARAMS = (
    "dp.noise_multiplier",
    "dp.sample_rate",
    "dp.steps",
    "dp.delta",
    "dp.max_grad_norm",
    "dp.accountant",
    "dp.privacy_unit",
)


@dataclass
class RewardResult:
    model: ScalarHeadModel
    """The trained reward model, in eval mode, with Opacus' hooks and per-sample state removed."""
    epsilon: float
    """ε spent, from config.accountant (PRV by default); inf without DP."""
    delta: float
    epsilon_rdp: float
    """ε from the RDP accountant over the same mechanism, for comparison (looser); inf without DP."""
    noise_multiplier: float
    """0.0 without DP."""
    sample_rate: float
    steps: int
    history: list[dict] = field(default_factory=list)
    """One record per optimizer step: step, epoch, batch_size (pairs), units (clinicians or patients
    sampled; pairs under the pair unit), loss, accuracy, noise_multiplier, sample_rate."""
    params: dict[str, str] = field(default_factory=dict)
    """The params logged: CONTRACT's dp.* names (with DP) plus reward.* settings."""
    metrics: dict[str, float] = field(default_factory=dict)
    """The final metrics logged: dp.epsilon, dp.epsilon_rdp (with DP), reward.train_loss, reward.train_accuracy."""
    privacy_unit: PrivacyUnit = "pair"
    accountant: str = "prv"
    rater_flip_rates: dict[str, float] = field(default_factory=dict)
    """Each clinician's learned label-flip probability (clinrlhf.reward.raters); empty when off.
    Trained parameters like the rewards, so covered by the same guarantee."""
    rater_accuracies: dict[str, float] = field(default_factory=dict)
    """Each clinician's Dawid–Skene accuracy, clamped, that the loss read their pairs through
    (RewardConfig.rater_weighting); empty under "none". Computed before training, in the clear: the
    guarantee holds given them."""
    units: int = 0
    """n: the privacy units trained on (pairs, clinicians or patients); δ defaults to 1/(10·n)."""
    max_pairs_per_unit: int | None = None
    """The contribution bound of a clinician or patient unit; None under the pair unit."""

    @property
    def guarantee(self) -> PrivacyGuarantee | None:
        """The (ε, δ) statement, or None for a non-private run."""
        if self.noise_multiplier <= 0:
            return None
        return PrivacyGuarantee(
            self.epsilon,
            self.delta,
            self.privacy_unit,
            self.accountant,
            self.noise_multiplier,
            self.sample_rate,
            self.steps,
            self.max_pairs_per_unit,
        )


def run_params(
    config: RewardConfig,
    supplied: int,
    used: int,
    units: int | None,
    delta: float,
    noise: float,
    rate: float,
    steps: int,
) -> dict[str, str]:
    """`supplied` pairs came in, `used` were kept after bounding each unit's contributions, from
    `units` clinicians or patients (None under the pair unit)."""
    params = {
        "reward.pairs": str(supplied),
        "reward.pairs_used": str(used),
        "reward.epochs": str(config.epochs),
        "reward.batch_size": str(config.batch_size),
        "reward.learning_rate": str(config.learning_rate),
        "reward.max_grad_norm": str(config.dp.max_grad_norm),
        "reward.use_margin": str(config.use_margin),
        "reward.center_rewards_coef": str(config.center_rewards_coef),
        "reward.seed": str(config.seed or 0),
        "reward.trainable_blocks": str(config.trainable_blocks),
        "reward.rater_buckets": str(config.rater_buckets),
        "reward.rater_weighting": config.rater_weighting,
        "reward.ema_decay": str(config.ema_decay),
        "dp.enabled": str(config.dp.enabled),
    }
    if not config.dp.enabled:
        return params
    # repr keeps every digit, so epsilon recomputed from the logged params equals the logged epsilon.
    return (
        params
        | {
            "dp.noise_multiplier": repr(noise),
            "dp.sample_rate": repr(rate),
            "dp.steps": str(steps),
            "dp.delta": repr(delta),
            "dp.max_grad_norm": repr(config.dp.max_grad_norm),
            "dp.accountant": config.dp.accountant,
            "dp.privacy_unit": config.privacy_unit,
            "dp.grad_sample_mode": config.grad_sample_mode,
            "dp.reproducible_noise": str(config.dp.reproducible_noise),
            "dp.secure_mode": str(config.dp.secure_mode),
            "dp.target_epsilon": repr(config.dp.target_epsilon),
        }
        | _unit_params(config, units)
    )


def _unit_params(config: RewardConfig, units: int | None) -> dict[str, str]:
    """What a user-level guarantee rests on besides (σ, q, T): how many units, and the bound."""
    if units is None:
        return {}
    return {
        "dp.units": str(units),
        "dp.max_pairs_per_unit": str(config.max_pairs_per_unit),
        "dp.units_per_batch": str(config.units_per_batch),
    }


def run_metrics(
    history: list[dict], epochs: int, epsilon: float | None, epsilon_rdp: float
) -> dict[str, float]:
    """Last-epoch training loss and accuracy (weighted by batch size), and ε when DP was on."""
    last = [h for h in history if h["epoch"] == epochs - 1 and h["batch_size"] > 0]
    seen = sum(h["batch_size"] for h in last) or 1
    metrics = {
        "reward.train_loss": sum(h["loss"] * h["batch_size"] for h in last) / seen,
        "reward.train_accuracy": sum(h["accuracy"] * h["batch_size"] for h in last) / seen,
    }
    if epsilon is not None:
        metrics |= {"dp.epsilon": epsilon, "dp.epsilon_rdp": epsilon_rdp}
    return metrics
